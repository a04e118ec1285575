"""Access logs on every load balancer: the only record of each request's client IP, path and status."""

from __future__ import annotations

from collections.abc import Iterator

from siem.posture.context import Context, pages
from siem.posture.model import Check, Outcome, failed, guard, not_applicable, passed


def _verdict(ctx: Context, name: str, enabled: bool, bucket: str | None, region: str) -> Outcome:
    if not enabled:
        return failed(name, "access logs are off", region)
    buckets = ctx.log_buckets()
    if buckets and bucket not in buckets:
        return failed(name, f"access logs go to s3://{bucket}, not a log bucket ({', '.join(buckets)})", region)
    return passed(name, f"access logs to s3://{bucket}", region)


def access_logs(ctx: Context, region: str) -> Iterator[Outcome]:
    elbv2 = ctx.client("elbv2", region)
    found = 0
    for lb in pages(elbv2, "describe_load_balancers", "LoadBalancers"):
        found += 1
        name = f"{lb.get('Type', 'application')} {lb['LoadBalancerName']}"
        if lb.get("Type") == "gateway":
            yield not_applicable(name, "Gateway Load Balancers have no access logs", region)
            continue

        def look(lb: dict = lb, name: str = name) -> Outcome:
            attrs = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
            values = {a["Key"]: a.get("Value") for a in attrs}
            enabled = values.get("access_logs.s3.enabled") == "true"
            return _verdict(ctx, name, enabled, values.get("access_logs.s3.bucket") or None, region)

        yield guard(name, look, region)
    elb = ctx.client("elb", region)
    for lb in pages(elb, "describe_load_balancers", "LoadBalancerDescriptions"):
        found += 1
        name = f"classic {lb['LoadBalancerName']}"

        def look_classic(lb: dict = lb, name: str = name) -> Outcome:
            attrs = elb.describe_load_balancer_attributes(LoadBalancerName=lb["LoadBalancerName"])
            log = attrs["LoadBalancerAttributes"].get("AccessLog") or {}
            return _verdict(ctx, name, bool(log.get("Enabled")), log.get("S3BucketName") or None, region)

        yield guard(name, look_classic, region)
    if not found:
        yield not_applicable(region, "no load balancers", region)


CHECKS = (
    Check(
        "elb.access_logs",
        "Load balancer access logs enabled, to the log bucket",
        "high",
        "region",
        "ALB/CLB/NLB access logs are off by default, yet they hold the client IP, request, status and timing of "
        "every request: which request, from which IP. (NLBs write them for TLS listeners.)",
        "aws elbv2 modify-load-balancer-attributes --load-balancer-arn ARN --attributes "
        "Key=access_logs.s3.enabled,Value=true Key=access_logs.s3.bucket,Value=BUCKET "
        "(classic: aws elb modify-load-balancer-attributes ... AccessLog={Enabled=true,S3BucketName=BUCKET})",
        access_logs,
    ),
)
