"""WAF logging on every web ACL: without it, COUNT-mode rules are blind and blocks leave no trace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from siem.posture.context import Context
from siem.posture.model import Check, Outcome, error_code, failed, guard, not_applicable, passed


def _web_acls(client: Any, scope: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"Scope": scope, "Limit": 100}
    while True:  # wafv2 has no paginators
        page = client.list_web_acls(**kwargs)
        yield from page.get("WebACLs", [])
        if not page.get("NextMarker") or not page.get("WebACLs"):
            return
        kwargs["NextMarker"] = page["NextMarker"]


def logging_configured(ctx: Context, region: str) -> Iterator[Outcome]:
    client = ctx.client("wafv2", region)
    # CloudFront web ACLs are global and live in us-east-1: checked when that region is scanned.
    scopes = ["REGIONAL", "CLOUDFRONT"] if region == "us-east-1" else ["REGIONAL"]
    found = 0
    for scope in scopes:
        for acl in _web_acls(client, scope):
            found += 1
            name = f"{scope.lower()} web ACL {acl['Name']}"

            def look(acl: dict[str, Any] = acl, name: str = name) -> Outcome:
                try:
                    config = client.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
                except Exception as exc:
                    if error_code(exc) != "WAFNonexistentItemException":
                        raise
                    return failed(name, "no logging configuration", region)
                return passed(name, f"logs to {', '.join(config.get('LogDestinationConfigs', []))}", region)

            yield guard(name, look, region)
    if not found:
        yield not_applicable(region, "no WAF web ACLs", region)


CHECKS = (
    Check(
        "waf.logging",
        "WAF logging configured on every web ACL",
        "high",
        "region",
        "WAF logs show which rule matched which request from which IP; tuning rules in COUNT mode before "
        "blocking is impossible without them.",
        "aws wafv2 put-logging-configuration --logging-configuration "
        "ResourceArn=WEB_ACL_ARN,LogDestinationConfigs=arn:aws:s3:::aws-waf-logs-NAME "
        "(S3 bucket names must start with aws-waf-logs-; a CloudWatch Logs group works too)",
        logging_configured,
    ),
)
