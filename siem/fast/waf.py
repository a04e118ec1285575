"""The AWS WAF fast path: each JSON line parsed once and mapped straight to its finalized document.

Exactness rule: a record is mapped here only when its `timestamp` is an integer within epoch
milliseconds' range, its `httpRequest` an object, its `formatVersion`, `requestBodySize`,
`requestBodySizeInspectedByWAF` and `responseCodeSent` integers or absent/null, and every header
value a string or null — the shapes for which the code below provably does what `waf.to_ecs` +
`normalize.finalize` do. It uses the reference's own helpers where a value can take odd forms
(`valid_ip`, the Host pattern, the web ACL ARN split, the timestamp format) and writes the envelope
`finalize` adds (event.dataset/ingested, data_stream, the S3 key's cloud context, related.ip: the
X-Forwarded-For hops, then the client). Any other record — a timestamp as text or out of range,
numbers as text, a non-string header value, an integer past 2**53 anywhere (finalize's bounds) —
is handed back as `JsonLinesFormat.records` yields it, and the reference makes its document or
dead letter; lines that are not JSON objects keep the reference's framing (siem/fast/json_lines.py).
What repeats (seconds, Host headers, web ACLs, a web ACL's rule lists, actions) is computed by the
reference's helpers once per distinct value, serialised once and copied into each document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from siem.fast.json_lines import cached_event, shared
from siem.fast.json_lines import map_stream as map_json_lines
from siem.formats import waf as reference
from siem.formats.base import BadRecord, Record
from siem.normalize import ObjectContext, finalize, valid_ip

DATASET = "aws.waf"
_ROLES = {"user-agent": 1, "host": 2, "referer": 3, "x-forwarded-for": 4}  # headers to_ecs reads
# The rule lists (their aws.waf names), which with the terminating rule give rule.* and matched_rule_ids
_RULE_LISTS = {
    "nonTerminatingMatchingRules": "non_terminating_matching_rules",
    "ruleGroupList": "rule_group_list",
    "rateBasedRuleList": "rate_based_rule_list",
}
_RULE_KEYS = ("terminatingRuleId", "terminatingRuleType", *_RULE_LISTS)
# The other members waf_to_ecs copies cleaned (usually null or empty: cleaned only when not)
_CLEANED = (
    ("terminatingRuleMatchDetails", "terminating_rule_match_details"),
    ("requestHeadersInserted", "request_headers_inserted"),
    ("captchaResponse", "captcha_response"),
    ("challengeResponse", "challenge_response"),
    ("oversizeFields", "oversize_fields"),
)
_DATA_STREAM = shared({"dataset": DATASET})
# The string fields to_ecs reads with _text: at the top level, and in httpRequest
_TOP_TEXTS = ("action", "ja3Fingerprint", "ja4Fingerprint", "webaclId", "httpSourceName", "httpSourceId")
_REQUEST_TEXTS = (
    "clientIp", "country", "host", "uri", "args", "scheme", "fragment", "httpMethod", "requestId", "httpVersion",
)  # fmt: skip
_RULE_KEY_MAX = 4096  # rule lists whose JSON is longer are mapped, not kept: the cache stays small
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))
_CACHE_MAX = 65536  # entries per cache: values repeat (seconds, Host headers), attackers vary them
_seconds: dict[int, str] = {}
_hosts: dict[str, tuple[str | None, int | None]] = {}
_versions: dict[str, tuple[str, Any]] = {}
_rule_cache: dict[bytes, tuple[Any, dict[str, Any]]] = {}


def _texts(obj: dict[str, Any], keys: tuple[str, ...]) -> list[str | None]:
    """`waf._text` of each of ``keys``' values (one pass: the mapper reads a dozen such fields)."""
    return [value if type(value) is str and value and value != "-" else None for value in map(obj.get, keys)]


def _timestamp(ms: int) -> str:
    """`waf._timestamp` of an in-range integer, its second formatted once."""
    seconds, millis = divmod(ms, 1000)
    text = _seconds.get(seconds)
    if text is None:
        text = reference._timestamp(seconds * 1000)[:-5]  # the reference's own format, ".000Z" cut
        if len(_seconds) < _CACHE_MAX:
            _seconds[seconds] = text
    return text + _MILLIS[millis]


def _host(value: str) -> tuple[str | None, int | None]:
    """(url.domain, url.port) a Host header gives in `waf._headers` (None: it gives none)."""
    found = _hosts.get(value)
    if found is None:
        match = reference._HOST.match(value.strip())
        found = (match[1].strip("[]"), int(match[2]) if match[2] else None) if match and match[1] else (None, None)
        if len(_hosts) < _CACHE_MAX:
            _hosts[value] = found
    return found


def _version(version: str) -> tuple[str, Any]:
    """http.version and network.* (serialised) of an httpVersion ("HTTP/2.0"), as `waf_to_ecs` splits it."""
    found = _versions.get(version)
    if found is None:
        protocol, _, number = version.partition("/")
        found = number, shared({"protocol": protocol.lower(), "transport": "udp" if number.startswith("3") else "tcp"})
        if len(_versions) < 1024:
            _versions[version] = found
    return found


def _rules(raw: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """ECS rule.* and the aws.waf members `waf_to_ecs` takes from the terminating rule and the rule
    lists, computed by the reference's own code and serialised once per distinct set of values (the
    key: their JSON): a web ACL's rule groups repeat from one request to the next."""
    get = raw.get
    values = [get("terminatingRuleId"), get("terminatingRuleType")]
    values += [get("nonTerminatingMatchingRules"), get("ruleGroupList"), get("rateBasedRuleList")]
    key = orjson.dumps(values)
    found = _rule_cache.get(key)
    if found is None:
        terminating = reference._text(values[0])
        rule: dict[str, Any] = {}
        members: dict[str, Any] = {}
        if terminating:
            rule["id"] = rule["name"] = members["terminating_rule_id"] = terminating
        rule_type = reference._text(values[1])
        if rule_type:
            rule["ruleset"] = members["terminating_rule_type"] = rule_type
        matched = reference._matched_rule_ids(dict(zip(_RULE_KEYS, values, strict=True)), terminating)
        if matched:
            members["matched_rule_ids"] = matched
        for value, target in zip(values[2:], _RULE_LISTS.values(), strict=True):
            if value is not None:
                value = reference._clean(value)
                if value is not None:
                    members[target] = value
        found = shared(rule) if rule else None, {target: shared(value) for target, value in members.items()}
        if len(_rule_cache) < _CACHE_MAX and len(key) <= _RULE_KEY_MAX:
            _rule_cache[key] = found
    return found


class Mapper:
    """The mapper of one object. What repeats from record to record — the event member of each
    action, each web ACL's members and cloud.* (with the S3 key's context, as finalize completes it)
    — is built once, serialised once (`json_lines.shared`) and copied into each document."""

    def __init__(self, ctx: ObjectContext) -> None:
        self.ctx = ctx
        cloud = finalize({}, DATASET, ctx, 0)[1].get("cloud")  # the key's context alone
        self.cloud = shared(cloud) if cloud else None
        self.acls: dict[str, tuple[dict[str, Any], Any]] = {}
        self.events: dict[str | None, Any] = {}

    def _acl(self, arn: str) -> tuple[dict[str, Any], Any]:
        """The aws.waf members `waf._web_acl` takes from the ARN, and cloud.* once finalize completed
        it (serialised; None: the record has no cloud member)."""
        found = self.acls.get(arn)
        if found is None:
            doc: dict[str, Any] = {}
            members: dict[str, Any] = {}
            reference._web_acl(arn, doc, members)
            found = (
                members,
                shared(finalize({"cloud": doc["cloud"]}, DATASET, self.ctx, 0)[1]["cloud"]) if doc else self.cloud,
            )
            if len(self.acls) < 1024:
                self.acls[arn] = found
        return found

    def _event(self, action: str | None) -> Any:
        """The event member, finalized and serialised, of a record with this action."""
        event = self.events.get(action)
        if event is None:
            event = {"kind": "event", "category": ["web"], "type": ["access"]}
            if action:
                event["action"] = action
                known = reference._ACTIONS.get(action)
                if known:
                    event["type"].append(known[0])
                    event["outcome"] = known[1]
            return cached_event(event, DATASET, self.ctx, self.events, action)
        return event

    def __call__(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The finalized document of one record (log.* aside), or None to hand it to the reference."""
        get = raw.get
        request = get("httpRequest")
        ms = get("timestamp")
        if type(request) is not dict or type(ms) is not int or not 0 <= ms <= reference._MAX_EPOCH_MS:
            return None
        body_size = get("requestBodySize")
        inspected = get("requestBodySizeInspectedByWAF")
        status = get("responseCodeSent")
        version_number = get("formatVersion")
        for number in (body_size, inspected, status, version_number):
            if number is not None and type(number) is not int:
                return None  # a number as text (str.isdigit's odd digits) or a float: the reference's
        action, ja3, ja4, arn, source_name, source_id = _texts(raw, _TOP_TEXTS)
        doc: dict[str, Any] = {"@timestamp": _timestamp(ms), "event": self.events.get(action) or self._event(action)}
        waf: dict[str, Any] = {"action": action} if action else {}
        http_request: dict[str, Any] = {}
        url: dict[str, Any] = {}

        headers = request.get("headers")
        kept: list[dict[str, str]] = []
        agent = referrer = None
        forwarded: list[str] | None = None  # related.ip: X-Forwarded-For hops (present once one has a value)
        if type(headers) is list:
            for header in headers:
                if type(header) is not dict:
                    continue
                name = header.get("name")
                if type(name) is not str or not name:
                    continue
                value = header.get("value")
                if type(value) is not str:
                    if value is not None:
                        return None  # written as text by the reference: str(value)
                    kept.append({"name": name})
                    continue
                if not value:
                    kept.append({"name": name})
                    continue
                kept.append(header if len(header) == 2 else {"name": name, "value": value})
                role = _ROLES.get(name.lower())
                if role is None:
                    continue
                if role == 1:
                    agent = agent or value
                elif role == 2:
                    domain, port = _host(value)
                    if domain is not None:
                        url.setdefault("domain", domain)
                        if port is not None:
                            url.setdefault("port", port)
                elif role == 3:
                    referrer = referrer or value
                else:
                    if forwarded is None:
                        forwarded = []
                    for hop in value.split(","):
                        ip = valid_ip(hop.strip())
                        if ip and ip not in forwarded:
                            forwarded.append(ip)
        if kept:
            waf["request"] = {"headers": kept}
        if agent:
            doc["user_agent"] = {"original": agent}
        if referrer:
            http_request["referrer"] = referrer

        client, country, host, path, query, scheme, fragment, method, request_id, version = _texts(
            request, _REQUEST_TEXTS
        )
        ip = None
        if client:
            ip = valid_ip(client)
            source: dict[str, Any] = {"ip": ip, "address": ip} if ip else {"address": client}
            if country:
                source["geo"] = {"country_iso_code": country}
            doc["source"] = source
        if host:
            url["domain"] = host
        if path:
            url["path"] = path
        if query:
            url["query"] = query
        if path or query:
            url["original"] = (path or "") + (f"?{query}" if query else "")
        if scheme:
            url["scheme"] = scheme
        if fragment:
            url["fragment"] = fragment
        if url:
            doc["url"] = url

        http: dict[str, Any] = {}
        if method:
            http_request["method"] = method
        if request_id:
            http_request["id"] = request_id
        if version:
            number, doc["network"] = _version(version)
            if number:
                http["version"] = number
        if body_size is not None:
            http_request["body"] = {"bytes": body_size}
        if inspected is not None:
            waf["request_body_size_inspected_by_waf"] = inspected
        if status is not None:
            http["response"] = {"status_code": status}
            waf["response_code_sent"] = status
        if http_request:
            http["request"] = http_request
        if http:
            doc["http"] = http

        rule, members = _rules(raw)
        if rule:
            doc["rule"] = rule
        waf.update(members)
        for key, target in _CLEANED:
            value = get(key)
            if value:
                value = reference._clean(value)
                if value is not None:
                    waf[target] = value
            elif value == 0:  # 0, 0.0 and false are kept; null, "" and empty containers are not
                waf[target] = value
        labels = get("labels")
        if type(labels) is list and labels:
            names = [label["name"] for label in labels if type(label) is dict and reference._text(label.get("name"))]
            if names:
                waf["labels"] = names
        if source_name or source_id:
            source_info = waf["source"] = {}
            if source_name:
                source_info["name"] = source_name
            if source_id:
                source_info["id"] = source_id
        if version_number is not None:
            waf["format_version"] = version_number
        if ja3:
            doc["tls"] = {"client": {"ja3": ja3}}
        if ja4:
            waf["ja4_fingerprint"] = ja4

        cloud = self.cloud
        if arn:
            members, cloud = self._acl(arn)
            waf.update(members)
        if cloud:
            doc["cloud"] = cloud
        doc["aws"] = {"waf": waf}
        doc["data_stream"] = _DATA_STREAM
        if ip and (forwarded is None or ip not in forwarded):
            forwarded = [*forwarded, ip] if forwarded else [ip]
        if forwarded is not None:
            doc["related"] = {"ip": forwarded}
        return doc


def map_stream(stream: BinaryIO, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
    """Records as `WafLogType.records` gives them, the records mapped here as (offset, Event)."""
    return map_json_lines(stream, ctx, DATASET, Mapper(ctx))
