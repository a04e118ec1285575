"""Run every check over its targets (the account, each region, each log bucket) and collect findings.

Checks run concurrently (a real account has many regions and each call is a network round trip);
the findings come back in a stable order. Whatever goes wrong inside one check — AccessDenied, a
service not offered in a region, a throttled call that exhausted its retries — becomes an ``error``
finding for that check and target, and every other check still runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from siem.posture import buckets, cloudtrail, delete_alert, eks, iam_keys, load_balancers, logs_retention, network, waf
from siem.posture.context import Context
from siem.posture.model import SEVERITY_RANK, Check, Finding, Outcome, Status, describe_error, not_applicable

ALL_CHECKS: tuple[Check, ...] = (
    *buckets.CHECKS,
    *delete_alert.CHECKS,
    *cloudtrail.CHECKS,
    *load_balancers.CHECKS,
    *waf.CHECKS,
    *eks.CHECKS,
    *network.CHECKS,
    *logs_retention.CHECKS,
    *iam_keys.CHECKS,
)
WORKERS = 8


def _finding(check: Check, outcome: Outcome, region: str) -> Finding:
    return Finding(
        check=check.id,
        title=check.title,
        severity=check.severity,
        status=outcome.status,
        region=outcome.region or region,
        resource=outcome.resource,
        detail=outcome.detail,
        why=check.why,
        fix=check.fix,
    )


def _collect(check: Check, ctx: Context, target: str | None, region: str, resource: str) -> list[Finding]:
    """The check's findings on one target; an exception keeps what was found and adds an error finding."""
    found: list[Finding] = []
    try:
        found.extend(_finding(check, outcome, region) for outcome in check.run(ctx, target))
    except Exception as exc:
        found.append(_finding(check, Outcome(Status.ERROR, resource, describe_error(exc)), region))
    return found


def _run_one(check: Check, ctx: Context, target: str | None) -> list[Finding]:
    if check.scope == "region":
        return _collect(check, ctx, target, target or "", target or "")
    if check.scope == "account":
        return _collect(check, ctx, None, "global", f"account {ctx.account_id}")
    try:
        names = ctx.log_buckets()
    except Exception as exc:
        return [_finding(check, Outcome(Status.ERROR, "log buckets", describe_error(exc)), "global")]
    if not names:
        outcome = not_applicable("log buckets", "no log bucket: none given with --bucket and no trail delivers to S3")
        return [_finding(check, outcome, "global")]
    findings = []
    for name in names:
        try:
            region = ctx.bucket_region(name)
        except Exception as exc:
            findings.append(_finding(check, Outcome(Status.ERROR, name, describe_error(exc)), "global"))
            continue
        findings.extend(_collect(check, ctx, name, region, name))
    return findings


def _targets(check: Check, ctx: Context) -> Iterable[str | None]:
    return ctx.regions if check.scope == "region" else [None]


def run(ctx: Context, checks: Sequence[Check] = ALL_CHECKS) -> list[Finding]:
    jobs = [(check, target) for check in checks for target in _targets(check, ctx)]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="posture") as pool:
        results = pool.map(lambda job: _run_one(job[0], ctx, job[1]), jobs)
        findings = [f for batch in results for f in batch]
    order = {check.id: i for i, check in enumerate(checks)}
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], order[f.check], f.region, f.resource))
