"""AWS Elastic Load Balancing access logs: ALB (http/https/h2/grpc/ws), NLB `tls 2.0` lines,
Classic ELB lines and ALB connection logs, all in one file type because AWS mixes them in one
delivery layout (AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/...log.gz).

Field order: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.fast import alb as fast_alb
from siem.formats._http_common import put_url
from siem.formats.base import BadRecord, LineFormat, ParseOptions, Record, RecordError, head_lines
from siem.normalize import ObjectContext, valid_ip

# One token: a quoted string (with backslash escapes) or a run of non-space characters.
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_ALB_TYPES = frozenset({"http", "https", "h2", "grpcs", "ws", "wss"})
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?$")
_REQUEST = re.compile(r"^(\S+) (.+?)(?: (HTTP/[\d.]+|-))?\s*$")


_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field, backslash escapes allowed
_S = r"(\S+)"
# The full ALB access line as AWS writes it today, matched in one go (the hot path); anything else
# (older/newer field counts, NLB, connection logs, Classic) falls back to the generic tokenizer.
_ALB_LINE = re.compile(
    " ".join([_S] * 12 + [_Q, _Q, _S, _S, _S, _Q, _Q, _Q, _S, _S, _Q, _Q, _Q, _Q, _Q, _Q, _Q]) + r"(?: (\S+))?(?: .*)?$"
)


def _tokens(line: str) -> list[str]:
    match = _ALB_LINE.match(line) if line[:1] in "hgw" else None  # http(s), h2, grpcs, ws(s)
    if match:
        groups = match.groups()
        return list(groups) if groups[-1] is not None else list(groups[:-1])
    return [bare or quoted for quoted, bare in _TOKEN.findall(line)]


_ALB_EXTRA = (
    (16, "target_group_arn"),
    (17, "trace_id"),
    (18, "domain_name"),
    (19, "chosen_cert_arn"),
    (20, "matched_rule_priority"),
    (21, "request_creation_time"),
    (22, "actions_executed"),
    (23, "redirect_url"),
    (24, "error_reason"),
    (25, "target_port_list"),
    (26, "target_status_code_list"),
    (27, "classification"),
    (28, "classification_reason"),
    (29, "conn_trace_id"),
)
_NLB_FIELDS = (
    (7, "connection_time_ms"),
    (8, "tls_handshake_time_ms"),
    (11, "incoming_tls_alert"),
    (12, "chosen_cert_arn"),
    (13, "chosen_cert_serial"),
    (14, "tls_cipher"),
    (15, "tls_protocol_version"),
    (16, "tls_named_group"),
    (17, "domain_name"),
    (18, "alpn_fe_protocol"),
    (19, "alpn_be_protocol"),
    (20, "alpn_client_preference_list"),
    (21, "tls_connection_creation_time"),
)
_CONNECTION_FIELDS = (
    (4, "tls_protocol"),
    (5, "tls_cipher"),
    (6, "tls_handshake_latency"),
    (7, "leaf_client_cert_subject"),
    (8, "leaf_client_cert_validity"),
    (9, "leaf_client_cert_serial_number"),
    (10, "tls_verify_status"),
    (11, "conn_trace_id"),
)


def _copy_fields(t: list[str], fields: tuple[tuple[int, str], ...], into: dict[str, Any]) -> None:
    """Positional fields into `into` by name, skipping absent ones and "-" placeholders."""
    n = len(t)
    for idx, key in fields:
        if idx < n:
            val = t[idx]
            if val and val != "-":
                into[key] = val


def _none(value: str) -> str | None:
    return None if value in ("-", "") else value


def _int(value: str) -> int | None:
    if value in ("-", "", "-1"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _float(value: str) -> float | None:
    if value in ("-", "", "-1"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _timestamp(value: str) -> str:
    if not _ISO.match(value):
        raise RecordError(f"bad timestamp {value!r}")
    return value if value.endswith("Z") else value + "Z"


def _endpoint(value: str) -> tuple[str | None, int | None]:
    """'1.2.3.4:80' or '[2001:db8::1]:80' → (ip, port); '-' → (None, None)."""
    if value in ("-", ""):
        return None, None
    host, _, port = value.rpartition(":")
    if not host:
        return valid_ip(value), None
    return valid_ip(host), _int(port)


def _put_endpoint(doc: dict[str, Any], name: str, value: str) -> None:
    ip, port = _endpoint(value)
    if ip is None:
        return
    part: dict[str, Any] = {"ip": ip, "address": ip}
    if port is not None:
        part["port"] = port
    doc[name] = part


def _http_access(t: list[str]) -> dict[str, Any]:
    if len(t) < 15:
        raise RecordError(f"ALB access line has {len(t)} fields, expected at least 15")
    ts = _timestamp(t[1])
    doc: dict[str, Any] = {"@timestamp": ts}
    _put_endpoint(doc, "source", t[3])
    _put_endpoint(doc, "destination", t[4])
    status = _int(t[8])
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    http: dict[str, Any] = {"request": request, "response": response}
    received, sent = _int(t[10]), _int(t[11])
    if received is not None:
        request["bytes"] = received
    if sent is not None:
        response["bytes"] = sent
    if status is not None:
        response["status_code"] = status
    req = _REQUEST.match(t[12])
    if req:
        method, target, version = req.groups()
        if method != "-":  # "-" marks a request ALB could not parse: its target is not a URL
            request["method"] = method
            put_url(doc, target)
        if version and version != "-":
            http["version"] = version[5:]
    doc["http"] = http
    ua = _none(t[13])
    if ua:
        doc["user_agent"] = {"original": ua}
    elb: dict[str, Any] = {"type": t[0], "name": t[2], "protocol": t[0]}
    target_status = _int(t[9])
    if target_status is not None:
        elb["target_status_code"] = target_status
    for key, idx in (("request_processing_time", 5), ("target_processing_time", 6), ("response_processing_time", 7)):
        val = _float(t[idx])
        if val is not None:
            elb[key] = {"sec": val}
    if _none(t[14]):
        doc["tls"] = {"cipher": t[14]}
        if len(t) > 15 and _none(t[15]):
            proto = t[15]
            doc["tls"]["version_protocol"] = "tls"
            doc["tls"]["version"] = proto.removeprefix("TLSv")
    _copy_fields(t, _ALB_EXTRA, elb)
    if "trace_id" in elb:
        doc["trace"] = {"id": elb["trace_id"]}
    if "actions_executed" in elb:
        elb["actions_executed"] = elb["actions_executed"].split(",")
    if "domain_name" in elb and "url" in doc:
        doc["url"].setdefault("domain", elb["domain_name"])
    event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
    if status is not None:
        event["outcome"] = "success" if status < 400 else "failure"
    if "request_creation_time" in elb:
        event["start"] = elb["request_creation_time"]
    event["end"] = ts
    doc["event"] = event
    doc["aws"] = {"elb": elb}
    return doc


def _nlb_tls(t: list[str]) -> dict[str, Any]:
    if len(t) < 12:
        raise RecordError(f"NLB tls line has {len(t)} fields, expected at least 12")
    ts = _timestamp(t[2])
    doc: dict[str, Any] = {"@timestamp": ts}
    _put_endpoint(doc, "source", t[5])
    _put_endpoint(doc, "destination", t[6])
    received, sent = _int(t[9]), _int(t[10])
    if received is not None:
        doc.setdefault("source", {})["bytes"] = received
    if sent is not None:
        doc.setdefault("destination", {})["bytes"] = sent
    elb: dict[str, Any] = {"type": "tls", "name": t[3], "listener": t[4], "protocol": "tls"}
    _copy_fields(t, _NLB_FIELDS, elb)
    if "domain_name" in elb:
        doc.setdefault("destination", {})["domain"] = elb["domain_name"]
    if "tls_cipher" in elb:
        doc["tls"] = {"cipher": elb["tls_cipher"]}
    doc["event"] = {"kind": "event", "category": ["network"], "type": ["connection"], "end": ts}
    doc["network"] = {"transport": "tcp"}
    doc["aws"] = {"elb": elb}
    return doc


def _connection_log(t: list[str]) -> dict[str, Any]:
    if len(t) < 4:
        raise RecordError("ALB connection log line is too short")
    ts = _timestamp(t[0])
    doc: dict[str, Any] = {"@timestamp": ts}
    ip = valid_ip(t[1])
    if ip:
        doc["source"] = {"ip": ip, "address": ip}
        port = _int(t[2])
        if port is not None:
            doc["source"]["port"] = port
    listener_port = _int(t[3])
    if listener_port is not None:
        doc["destination"] = {"port": listener_port}
    elb: dict[str, Any] = {"type": "connection"}
    _copy_fields(t, _CONNECTION_FIELDS, elb)
    event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["connection"], "end": ts}
    status = elb.get("tls_verify_status")
    if status:
        event["outcome"] = "success" if status == "Success" else "failure"
    doc["event"] = event
    doc["aws"] = {"elb": elb}
    return doc


def _classic(t: list[str]) -> dict[str, Any]:
    if len(t) < 13:
        raise RecordError(f"Classic ELB line has {len(t)} fields, expected at least 13")
    # Classic lines are ALB lines without the leading type and with fewer trailing fields.
    doc = _http_access(["http", *t[:12], t[12] if len(t) > 12 else "-", *t[13:15]])
    doc["aws"]["elb"]["type"] = doc["aws"]["elb"]["protocol"] = "classic"
    return doc


class AlbLogType(LineFormat):
    dataset = "aws.alb"
    description = "AWS ALB/NLB/Classic ELB access logs and ALB connection logs"
    key_pattern = re.compile(r"AWSLogs/\d{12}/elasticloadbalancing/")

    def sniff(self, head: bytes) -> bool:
        lines = head_lines(head, 3)
        if not lines:
            return False
        first = lines[0].split(b" ", 5)
        if len(first) < 5:
            return False
        if first[0].decode(errors="replace") in _ALB_TYPES:
            return bool(_ISO.match(first[1].decode(errors="replace")))
        if first[0] == b"tls" and first[1] == b"2.0":
            return True
        if not _ISO.match(first[0].decode(errors="replace")):
            return False
        if valid_ip(first[1].decode(errors="replace")) is not None:  # ALB connection log
            return True
        # Classic ELB: "<time> <elb-name> <client-ip>:<port> ..." (a syslog line with an ISO time is not)
        return _endpoint(first[2].decode(errors="replace"))[0] is not None

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        tokens = _tokens(raw)
        if len(tokens) < 2:
            raise RecordError("not an ELB log line")
        kind = tokens[0]
        if kind in _ALB_TYPES:
            return _http_access(tokens)
        if kind == "tls" and tokens[1] == "2.0":
            return _nlb_tls(tokens)
        if _ISO.match(kind):
            if valid_ip(tokens[1]) is not None:
                return _connection_log(tokens)
            return _classic(tokens)
        raise RecordError(f"unknown ELB line type {kind[:40]!r}")

    def batch_mapper(self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
        """Records with the plain HTTP access lines already mapped by the fast path (siem/fast/alb.py);
        the pipeline maps the rest with to_ecs, so every document and dead letter is this module's."""
        if not fast.enabled():
            return self.records(stream, options)
        return fast_alb.map_stream(stream, options, ctx)


LOG_TYPE = AlbLogType()
