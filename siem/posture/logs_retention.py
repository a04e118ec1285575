"""CloudWatch Logs retention: a group that expires before the incident is found keeps nothing.

Incidents are often found months late; the minimum (``--min-retention-days``, default 365) is the
shortest look-back an investigation should be able to count on. Never-expire passes.
"""

from __future__ import annotations

from collections.abc import Iterator

from siem.posture.context import Context, pages
from siem.posture.model import Check, Outcome, failed, not_applicable, passed


def retention(ctx: Context, region: str) -> Iterator[Outcome]:
    groups = pages(ctx.client("logs", region), "describe_log_groups", "logGroups")
    if not groups:
        yield not_applicable(region, "no CloudWatch Logs groups", region)
    for group in groups:
        name, days = group["logGroupName"], group.get("retentionInDays")
        if days is None:
            yield passed(name, "never expires", region)
        elif days < ctx.min_retention_days:
            yield failed(name, f"retention {days} days < minimum {ctx.min_retention_days}", region)
        else:
            yield passed(name, f"retention {days} days", region)


CHECKS = (
    Check(
        "logs.retention",
        "CloudWatch Logs retention not shorter than the minimum",
        "medium",
        "region",
        "Every year responders find the log they need was already rotated away; intrusions are often discovered "
        "months after they start.",
        "aws logs put-retention-policy --log-group-name GROUP --retention-in-days 400 (or export the group to S3 "
        "and keep it there)",
        retention,
    ),
)
