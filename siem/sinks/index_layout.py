"""Which OpenSearch index an event goes to: one index per dataset family and time period.

Names are ``<prefix>-events-<family>-<yyyy>`` (``year``, the default) or ``...-<yyyy.mm>`` (``month``),
and ``<prefix>-events-<family>-outliers`` for a timestamp outside [1990, 2100) or none at all. Every
name matches ``<prefix>-events-*``, the pattern the detection engines, the pivot and the templates use.

Why this layout (docs/architecture.md says more):

* The index is a pure function of the event (its dataset and @timestamp) and of the configuration,
  never of the clock or of how much is already indexed, so a re-load sends each deterministic
  document id to the index that already holds it and overwrites it. Size-based rollover (or an
  ISM/data-stream write alias) would send the re-load to whichever index is current: a duplicate.
* One index per *family* (ALB/CLB/NLB are one family, syslog/auth/auditd another) and per year keeps
  the shard count near families x years retained, instead of datasets x months; the bundled samples
  (1986-2026) make 47 indices instead of 87. A family whose yearly shard would grow past a few tens of
  GB is switched to monthly indices by configuration, which is a deployment's choice: volume depends
  on the estate, not on the log type.
* Odd timestamps (epoch zero, year 1900 or 9999 from a broken clock or parser) share one outliers
  index per family rather than opening an index per odd year. The bounds are fixed dates, not "now
  plus a day": a window that moves with the clock would send a re-load of a future-stamped event, once
  its time has come, to a second index (a duplicate). A clock a few days or years ahead opens that
  period's index early, which real events fill later.
* Retention is deleting whole indices of old periods: no ISM plugin, no delete-by-query.
"""

from __future__ import annotations

from typing import Any

PERIODS = ("year", "month")
# dataset -> family. A dataset not listed (a new log type, a container's own records) goes to OTHER;
# tests/test_index_layout.py requires every registered log type to be listed, so none lands there unseen.
FAMILIES: dict[str, str] = {
    "aws.alb": "aws.elb",
    "aws.elb": "aws.elb",
    "aws.clb": "aws.elb",
    "aws.nlb": "aws.elb",
    "aws.waf": "aws.waf",
    "aws.cloudtrail": "aws.cloudtrail",
    "aws.vpcflow": "aws.vpcflow",
    "aws.route53_resolver": "aws.dns",
    "aws.network_firewall": "aws.network_firewall",
    "kubernetes.audit": "kubernetes",
    "linux.syslog": "linux",
    "linux.auth": "linux",
    "linux.auditd": "linux",
    "nginx.access": "web",
    "nginx.error": "web",
    "apache.access": "web",
    "apache.error": "web",
    "fluentd": "app",
    "aws.cloudwatch_logs": "app",
    "kubernetes.container": "app",  # applications' own logs: their volume, not the audit trail's
}
OTHER = "app"
FAMILY_NAMES: tuple[str, ...] = tuple(sorted(set(FAMILIES.values()) | {OTHER}))
# ISO 8601 UTC timestamps compare as text: anything before 1990 or from 2100 on is an outlier.
SANE_FROM = "1990"
SANE_UNTIL = "2100"
OUTLIERS = "outliers"
SHARD_LIMIT_MARKER = "maximum shards open"


def family_of(dataset: str) -> str:
    return FAMILIES.get(dataset, OTHER)


class IndexLayout:
    """Index names for one prefix; ``monthly`` lists the families that get monthly indices whatever
    ``period`` (the default for every other family) says."""

    def __init__(self, prefix: str, period: str = "year", monthly: tuple[str, ...] | list[str] = ()) -> None:
        if period not in PERIODS:
            raise ValueError(f"index period {period!r}: expected one of {', '.join(PERIODS)}")
        unknown = sorted(set(monthly) - set(FAMILY_NAMES))
        if unknown:
            raise ValueError(f"unknown index family {unknown}; known: {', '.join(FAMILY_NAMES)}")
        self.prefix = prefix
        self.pattern = f"{prefix}-events-*"
        self._monthly = frozenset(FAMILY_NAMES if period == "month" else monthly)

    def index_for(self, dataset: str, ts: Any) -> str:
        """The index of one event from its dataset and @timestamp: cheap (a dict lookup, two
        comparisons, one f-string) on the hot path."""
        family = FAMILIES.get(dataset, OTHER)
        if (
            not isinstance(ts, str)
            or not SANE_FROM <= ts < SANE_UNTIL
            or len(ts) < 7
            or ts[4] != "-"
            or not (ts[:4].isdigit() and ts[5:7].isdigit())
        ):
            return f"{self.prefix}-events-{family}-{OUTLIERS}"
        if family in self._monthly:
            return f"{self.prefix}-events-{family}-{ts[:4]}.{ts[5:7]}"
        return f"{self.prefix}-events-{family}-{ts[:4]}"


def shard_limit_message(index: str, reason: str) -> str | None:
    """One line naming the setting and the remedy when the node refused to create an index because
    the cluster is at ``cluster.max_shards_per_node``; None for any other error."""
    if SHARD_LIMIT_MARKER not in reason:
        return None
    detail = reason.removeprefix("Validation Failed: 1: ").rstrip(";")
    return (
        f"cannot create index {index}: the cluster is at its shard limit ({detail}). Delete indices you no "
        "longer need (retention is deleting whole indices of old periods), raise cluster.max_shards_per_node "
        "(PUT _cluster/settings), or add data nodes; then run the load again (it overwrites, never duplicates)"
    )
