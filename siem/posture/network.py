"""East-west and egress: VPC flow logs and Route 53 Resolver query logs on every VPC.

Flow logs show which host talked to which, on which port; resolver query logs show which host looked
up which domain (the C2 or exfiltration name). Both are off by default, per VPC.
"""

from __future__ import annotations

from collections.abc import Iterator

from siem.posture.context import Context, pages
from siem.posture.model import Check, Outcome, failed, not_applicable, passed

_ATTACHED = ("ACTIVE", "CREATING")


def _vpcs(ctx: Context, region: str) -> list[str]:
    return [v["VpcId"] for v in pages(ctx.client("ec2", region), "describe_vpcs", "Vpcs")]


def flow_logs(ctx: Context, region: str) -> Iterator[Outcome]:
    vpcs = _vpcs(ctx, region)
    if not vpcs:
        yield not_applicable(region, "no VPCs", region)
        return
    by_vpc: dict[str, list[dict]] = {}
    for log in pages(ctx.client("ec2", region), "describe_flow_logs", "FlowLogs"):
        by_vpc.setdefault(log.get("ResourceId", ""), []).append(log)
    for vpc in vpcs:
        active = [f for f in by_vpc.get(vpc, []) if f.get("FlowLogStatus") == "ACTIVE"]
        complete = [f for f in active if f.get("TrafficType") == "ALL"]
        if complete:
            dest = complete[0].get("LogDestination") or complete[0].get("LogGroupName") or "?"
            yield passed(vpc, f"flow log {complete[0]['FlowLogId']} (ALL traffic) to {dest}", region)
        elif active:
            kinds = ", ".join(sorted({f.get("TrafficType", "?") for f in active}))
            yield failed(vpc, f"flow logs record only {kinds} traffic", region)
        else:
            yield failed(vpc, "no active flow log", region)


def resolver_query_logging(ctx: Context, region: str) -> Iterator[Outcome]:
    vpcs = _vpcs(ctx, region)
    if not vpcs:
        yield not_applicable(region, "no VPCs", region)
        return
    client = ctx.client("route53resolver", region)
    associations = pages(client, "list_resolver_query_log_config_associations", "ResolverQueryLogConfigAssociations")
    attached = {a["ResourceId"]: a for a in associations if a.get("Status") in _ATTACHED}
    for vpc in vpcs:
        if vpc in attached:
            yield passed(vpc, f"query log config {attached[vpc]['ResolverQueryLogConfigId']} associated", region)
        else:
            yield failed(vpc, "no Route 53 Resolver query log config associated", region)


CHECKS = (
    Check(
        "vpc.flow_logs",
        "VPC flow logs on every VPC (ALL traffic)",
        "high",
        "region",
        "Flow logs are the record of east-west and egress traffic: which instance talked to which address and "
        "port, accepted or rejected. Without them lateral movement leaves no network trace.",
        "aws ec2 create-flow-logs --resource-type VPC --resource-ids VPC_ID --traffic-type ALL "
        "--log-destination-type s3 --log-destination arn:aws:s3:::BUCKET/vpcflow/",
        flow_logs,
    ),
    Check(
        "route53.resolver_query_logging",
        "Route 53 Resolver query logging associated with every VPC",
        "medium",
        "region",
        "DNS query logs show which host resolved which name: the first trace of malware calling home or data "
        "leaving through DNS.",
        "aws route53resolver create-resolver-query-log-config --name dns --destination-arn arn:aws:s3:::BUCKET && "
        "aws route53resolver associate-resolver-query-log-config --resolver-query-log-config-id ID "
        "--resource-id VPC_ID",
        resolver_query_logging,
    ),
)
