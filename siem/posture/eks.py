"""EKS control-plane logs: the Kubernetes audit log records every kubectl exec, create and delete.

EKS writes them only to CloudWatch Logs (``/aws/eks/<cluster>/cluster``), which is expensive to keep;
a path to S3 (a subscription filter, typically to Firehose, or recurring export tasks) keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from siem.posture.context import Context, pages
from siem.posture.model import Check, Outcome, error_code, failed, guard, not_applicable, passed

REQUIRED_TYPES = ("audit", "authenticator")
RECENT_EXPORT_MS = 48 * 3600 * 1000  # an export task this recent shows exports are recurring


def _clusters(ctx: Context, region: str) -> list[str]:
    return pages(ctx.client("eks", region), "list_clusters", "clusters")


def control_plane_logging(ctx: Context, region: str) -> Iterator[Outcome]:
    eks = ctx.client("eks", region)
    clusters = _clusters(ctx, region)
    if not clusters:
        yield not_applicable(region, "no EKS clusters", region)
    for name in clusters:

        def look(name: str = name) -> Outcome:
            logging = eks.describe_cluster(name=name)["cluster"].get("logging", {})
            enabled = {t for entry in logging.get("clusterLogging", []) if entry.get("enabled") for t in entry["types"]}
            missing = [t for t in REQUIRED_TYPES if t not in enabled]
            if missing:
                return failed(f"cluster {name}", f"control-plane log types off: {', '.join(missing)}", region)
            return passed(f"cluster {name}", f"enabled: {', '.join(sorted(enabled))}", region)

        yield guard(f"cluster {name}", look, region)


def _firehose_buckets(ctx: Context, region: str, stream_arn: str) -> list[str]:
    name = stream_arn.rsplit("/", 1)[-1]
    stream = ctx.client("firehose", region).describe_delivery_stream(DeliveryStreamName=name)
    buckets = []
    for dest in stream["DeliveryStreamDescription"].get("Destinations", []):
        s3 = dest.get("ExtendedS3DestinationDescription") or dest.get("S3DestinationDescription")
        if s3 and s3.get("BucketARN"):
            buckets.append(s3["BucketARN"].removeprefix("arn:aws:s3:::"))
    return buckets


def _export_tasks(ctx: Context, region: str) -> list[dict[str, Any]]:
    return ctx.shared(
        f"export-tasks:{region}", lambda: pages(ctx.client("logs", region), "describe_export_tasks", "exportTasks")
    )


def _path_to_s3(ctx: Context, region: str, name: str) -> Outcome:
    resource, group = f"cluster {name}", f"/aws/eks/{name}/cluster"
    logs = ctx.client("logs", region)
    try:
        filters = logs.describe_subscription_filters(logGroupName=group).get("subscriptionFilters", [])
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return failed(resource, f"log group {group} does not exist (control-plane logging never enabled)", region)
    for sub in filters:
        dest = sub.get("destinationArn", "")
        if ":firehose:" in dest:
            buckets = _firehose_buckets(ctx, region, dest)
            if buckets:
                return passed(resource, f"subscription {sub['filterName']} → Firehose → s3://{buckets[0]}", region)
        else:
            return passed(
                resource, f"subscription {sub['filterName']} → {dest} (onward path to S3 not verified)", region
            )
    now_ms = int(time.time() * 1000)
    recent = [
        t
        for t in _export_tasks(ctx, region)
        if t.get("logGroupName") == group
        and t.get("status", {}).get("code") in ("COMPLETED", "RUNNING", "PENDING")
        and t.get("to", 0) >= now_ms - RECENT_EXPORT_MS
    ]
    if recent:
        return passed(resource, f"export tasks to s3://{recent[0].get('destination')} within the last 48 h", region)
    return failed(resource, f"{group}: no subscription filter to S3 and no export task in the last 48 h", region)


def audit_logs_to_s3(ctx: Context, region: str) -> Iterator[Outcome]:
    clusters = _clusters(ctx, region)
    if not clusters:
        yield not_applicable(region, "no EKS clusters", region)
    for name in clusters:
        yield guard(f"cluster {name}", lambda name=name: _path_to_s3(ctx, region, name), region)


CHECKS = (
    Check(
        "eks.control_plane_logging",
        "EKS audit and authenticator logs enabled",
        "high",
        "region",
        "The API server audit log records every action on Kubernetes resources (kubectl exec, secrets read), and "
        "the authenticator log maps them to IAM identities; pod and node logs vanish when they are replaced.",
        "aws eks update-cluster-config --name CLUSTER --logging "
        '\'{"clusterLogging":[{"types":["api","audit","authenticator"],"enabled":true}]}\'',
        control_plane_logging,
    ),
    Check(
        "eks.audit_logs_to_s3",
        "EKS control-plane logs reach S3",
        "medium",
        "region",
        "CloudWatch Logs storage costs more than S3, so groups get short retention; a copy in the log bucket keeps "
        "the audit log for as long as the other logs.",
        "aws logs put-subscription-filter --log-group-name /aws/eks/CLUSTER/cluster --filter-name to-s3 "
        "--filter-pattern '' --destination-arn FIREHOSE_STREAM_ARN --role-arn ROLE_ARN (Firehose delivering to S3)",
        audit_logs_to_s3,
    ),
)
