"""AWS WAF (v2) web ACL traffic logs: one JSON object per line, however they are delivered (S3
layout AWSLogs/<account>/WAFLogs/<region>/<web-acl>/YYYY/MM/DD/HH/mm/...log.gz, a Firehose stream
named aws-waf-logs-*, or a CloudWatch Logs export).

Log fields: https://docs.aws.amazon.com/waf/latest/developerguide/logging-fields.html
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.formats.base import BadRecord, JsonLinesFormat, ParseOptions, Record, RecordError, first_json_object
from siem.normalize import ObjectContext, valid_ip

# WAF writes its keys in a fixed order, so a record cut by the sniffing buffer still starts like this.
_HEAD = re.compile(rb'\s*\{\s*"timestamp"\s*:\s*\d+\s*,\s*"formatVersion"\s*:\s*\d+\s*,\s*"webaclId"\s*:')
_HOST = re.compile(r"^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$")
_MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# Terminating action → (event.type entry, event.outcome) for the HTTP request the record describes.
_ACTIONS = {
    "ALLOW": ("allowed", "success"),
    "BLOCK": ("denied", "failure"),
    "CAPTCHA": ("denied", "failure"),  # as a terminating action: a puzzle was served instead of the resource
    "CHALLENGE": ("denied", "failure"),
}
_NOT_A_RULE = "Default_Action"


def _text(value: Any) -> str | None:
    """A usable string: WAF writes '-' or '' (and sometimes null) for 'no value'."""
    if isinstance(value, str) and value and value != "-":
        return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _timestamp(value: Any) -> str:
    ms = _int(value)
    if ms is None and isinstance(value, float) and value == value:
        ms = int(value)
    if ms is None or not 0 <= ms <= _MAX_EPOCH_MS:
        raise RecordError(f"timestamp {str(value)[:40]!r} is not epoch milliseconds")
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _clean(value: Any) -> Any:
    """Drop nulls, '-' and empty containers: WAF writes them for every field a rule did not use."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _clean(item)
            if item is not None:
                out[key] = item
        return out or None
    if isinstance(value, list):
        items = [c for c in (_clean(item) for item in value) if c is not None]
        return items or None
    if value is None or value == "" or value == "-":
        return None
    return value


def _rule_id(value: Any, key: str = "ruleId") -> str | None:
    return _text(value.get(key)) if isinstance(value, dict) else None


def _matched_rule_ids(raw: dict[str, Any], terminating: str | None) -> list[str]:
    """Every rule that matched, terminating or not, inside rule groups or not: one term query finds
    a rule whatever mode (BLOCK, COUNT, excluded-as-count, rate limit) it matched in."""
    ids: list[str] = []

    def add(rule: str | None) -> None:
        if rule and rule != _NOT_A_RULE and rule not in ids:
            ids.append(rule)

    def add_listed(container: dict[str, Any], key: str, id_key: str = "ruleId") -> None:
        rules = container.get(key)
        if isinstance(rules, list):
            for rule in rules:
                add(_rule_id(rule, id_key))

    add(terminating)
    add_listed(raw, "nonTerminatingMatchingRules")
    groups = raw.get("ruleGroupList")
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict):
                add(_rule_id(group.get("terminatingRule")))
                add_listed(group, "nonTerminatingMatchingRules")
                add_listed(group, "excludedRules")
    add_listed(raw, "rateBasedRuleList", "rateBasedRuleName")
    return ids


def _headers(request: dict[str, Any], doc: dict[str, Any], url: dict[str, Any]) -> list[dict[str, str]]:
    """Headers as a list of {name, value}: a header-name-keyed object would add one mapped field
    per header name an attacker cares to invent."""
    headers = request.get("headers")
    kept: list[dict[str, str]] = []
    if not isinstance(headers, list):
        return kept
    for header in headers:
        if not isinstance(header, dict):
            continue
        name = header.get("name")
        if not isinstance(name, str) or not name:
            continue
        value = header.get("value")
        if value is not None and not isinstance(value, str):
            value = str(value)
        entry = {"name": name}
        if value:
            entry["value"] = value
        kept.append(entry)
        if not value:
            continue
        lower = name.lower()
        if lower == "user-agent":
            doc.setdefault("user_agent", {"original": value})
        elif lower == "host":
            match = _HOST.match(value.strip())
            if match and match[1]:
                url.setdefault("domain", match[1].strip("[]"))
                if match[2]:
                    url.setdefault("port", int(match[2]))
        elif lower == "referer":
            doc["http"]["request"].setdefault("referrer", value)
        elif lower == "x-forwarded-for":
            related = doc.setdefault("related", {}).setdefault("ip", [])
            for hop in value.split(","):
                ip = valid_ip(hop.strip())
                if ip and ip not in related:
                    related.append(ip)
    return kept


def _web_acl(value: Any, doc: dict[str, Any], waf: dict[str, Any]) -> None:
    """arn:aws:wafv2:<region>:<account>:<scope>/webacl/<name>/<id> → cloud.* and the web ACL's name."""
    arn = _text(value)
    if arn is None:
        return
    waf["arn"] = arn
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        waf["id"] = arn  # WAF Classic logs a bare web ACL ID
        return
    _, _, service, region, account, resource = parts
    waf["id"] = resource
    segments = resource.split("/")
    if len(segments) >= 3 and segments[1] == "webacl":
        waf["web_acl_name"] = segments[2]
    cloud: dict[str, Any] = {"provider": "aws"}
    if region:
        cloud["region"] = region
    if account:
        cloud["account"] = {"id": account}
    if service:
        cloud["service"] = {"name": service}
    doc["cloud"] = cloud


def waf_to_ecs(raw: dict[str, Any]) -> dict[str, Any]:
    """One WAF log record as an ECS document."""
    request = raw.get("httpRequest")
    if not isinstance(request, dict):
        raise RecordError("not a WAF log record: httpRequest is missing or not an object")
    doc: dict[str, Any] = {"@timestamp": _timestamp(raw.get("timestamp"))}
    event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
    waf: dict[str, Any] = {}
    http_request: dict[str, Any] = {}
    http: dict[str, Any] = {"request": http_request}
    doc["http"] = http

    action = _text(raw.get("action"))
    if action:
        event["action"] = waf["action"] = action
        known = _ACTIONS.get(action)
        if known:
            event["type"].append(known[0])
            event["outcome"] = known[1]
    doc["event"] = event

    client = _text(request.get("clientIp"))
    if client:
        ip = valid_ip(client)
        source: dict[str, Any] = {"ip": ip, "address": ip} if ip else {"address": client}
        country = _text(request.get("country"))
        if country:
            source["geo"] = {"country_iso_code": country}
        doc["source"] = source

    url: dict[str, Any] = {}
    headers = _headers(request, doc, url)
    if headers:
        waf["request"] = {"headers": headers}
    host = _text(request.get("host"))
    if host:
        url["domain"] = host
    path = _text(request.get("uri"))
    query = _text(request.get("args"))
    if path:
        url["path"] = path
    if query:
        url["query"] = query
    if path or query:
        url["original"] = (path or "") + (f"?{query}" if query else "")
    for key in ("scheme", "fragment"):
        value = _text(request.get(key))
        if value:
            url[key] = value
    if url:
        doc["url"] = url

    method = _text(request.get("httpMethod"))
    if method:
        http_request["method"] = method
    request_id = _text(request.get("requestId"))
    if request_id:
        http_request["id"] = request_id
    version = _text(request.get("httpVersion"))
    if version:
        protocol, _, number = version.partition("/")
        if number:
            http["version"] = number
        doc["network"] = {
            "protocol": protocol.lower(),
            "transport": "udp" if number.startswith("3") else "tcp",
        }
    body_size = _int(raw.get("requestBodySize"))
    if body_size is not None:
        http_request["body"] = {"bytes": body_size}
    inspected = _int(raw.get("requestBodySizeInspectedByWAF"))
    if inspected is not None:
        waf["request_body_size_inspected_by_waf"] = inspected
    status = _int(raw.get("responseCodeSent"))
    if status is not None:
        http["response"] = {"status_code": status}
        waf["response_code_sent"] = status
    if not http_request:
        del http["request"]
    if not http:
        del doc["http"]

    terminating = _text(raw.get("terminatingRuleId"))
    rule: dict[str, Any] = {}
    if terminating:
        rule["id"] = rule["name"] = waf["terminating_rule_id"] = terminating
    rule_type = _text(raw.get("terminatingRuleType"))
    if rule_type:
        rule["ruleset"] = waf["terminating_rule_type"] = rule_type
    if rule:
        doc["rule"] = rule
    matched = _matched_rule_ids(raw, terminating)
    if matched:
        waf["matched_rule_ids"] = matched

    for source_key, target in (
        ("terminatingRuleMatchDetails", "terminating_rule_match_details"),
        ("nonTerminatingMatchingRules", "non_terminating_matching_rules"),
        ("ruleGroupList", "rule_group_list"),
        ("rateBasedRuleList", "rate_based_rule_list"),
        ("requestHeadersInserted", "request_headers_inserted"),
        ("captchaResponse", "captcha_response"),
        ("challengeResponse", "challenge_response"),
        ("oversizeFields", "oversize_fields"),
    ):
        value = raw.get(source_key)
        if value is not None:
            value = _clean(value)
            if value is not None:
                waf[target] = value

    labels = raw.get("labels")
    if isinstance(labels, list):
        names = [label["name"] for label in labels if isinstance(label, dict) and _text(label.get("name"))]
        if names:
            waf["labels"] = names

    source_info = {k: v for k, v in (("name", raw.get("httpSourceName")), ("id", raw.get("httpSourceId"))) if _text(v)}
    if source_info:
        waf["source"] = source_info
    version_number = _int(raw.get("formatVersion"))
    if version_number is not None:
        waf["format_version"] = version_number
    ja3 = _text(raw.get("ja3Fingerprint"))
    if ja3:
        doc["tls"] = {"client": {"ja3": ja3}}
    ja4 = _text(raw.get("ja4Fingerprint"))
    if ja4:
        waf["ja4_fingerprint"] = ja4

    _web_acl(raw.get("webaclId"), doc, waf)
    doc["aws"] = {"waf": waf}
    return doc


class WafLogType(JsonLinesFormat):
    dataset = "aws.waf"
    description = "AWS WAF (v2) web ACL traffic logs (JSON lines)"
    key_pattern = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/WAFLogs/")

    def sniff(self, head: bytes) -> bool:
        obj = first_json_object(head)
        if obj is not None:
            return "webaclId" in obj and isinstance(obj.get("httpRequest"), dict)
        return bool(_HEAD.match(head))

    def to_ecs(self, raw: dict[str, Any], options: ParseOptions) -> dict[str, Any]:
        return waf_to_ecs(raw)

    def batch_mapper(self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
        """Records with the plain ones already mapped by the fast path (siem/fast/waf.py); the pipeline
        maps the rest with to_ecs, so every document and dead letter is this module's. No ParseOptions
        field changes this mapping (the record limit comes with the stream)."""
        if not fast.enabled():
            return self.records(stream, options)
        from siem.fast import waf as fast_waf  # it reads this module's tables

        return fast_waf.map_stream(stream, ctx)


LOG_TYPE = WafLogType()
