"""fluentd / td-agent output written to S3 by fluent-plugin-s3, mapped as the log it carries.

A td-agent that tails /var/log/messages and nginx's access.log ships either the raw line
(``<parse> @type none`` → ``{"message": "<line>"}``) or what fluentd's own parsers made of it
(``syslog`` → host/ident/pid/message, ``nginx``/``apache2`` → remote/host/user/method/path/...).
Either way the event is a syslog line or a web access, so it is mapped by that log type
(linux.auth / linux.syslog, nginx.access / apache.access): a raw line as it is, a parsed record
re-rendered in the line format that type reads. The same event thus lands in the same fields
and dataset whether it was read from the host or through fluentd. Only records of no known
shape stay ``fluentd``.

Records: JSON lines (``<format> json``), fluentd's default ``out_file`` format
(``time<TAB>tag<TAB>json``), or bare lines (``<format> single_value``). ``time``/``tag`` are in
the record only when the output injects them (``include_time_key``/``include_tag_key``).
Parser shapes: https://docs.fluentd.org/parser/syslog, /parser/nginx, /parser/apache2
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import orjson

from siem import formats
from siem.formats.base import BadRecord, JsonLinesFormat, LogType, ParseOptions, Record, RecordError, Skipped
from siem.normalize import iso_utc
from siem.timeparse import resolve_timezone

_TIME_KEYS = ("time", "@timestamp", "timestamp")
_META_KEYS = frozenset({"tag", *_TIME_KEYS})
_SYSLOG_KEYS = frozenset({"host", "ident", "pid", "message", "pri", "msgid", "extradata"})
_ACCESS_KEYS = frozenset({"method", "path", "code"})
_ACCESS_ALL = _ACCESS_KEYS | {"remote", "host", "user", "size", "referer", "agent", "http_x_forwarded_for"}
_OUT_FILE = re.compile(rb"^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?|\d{9,10}(?:\.\d+)?)\t([^\t]+)\t(\{.*\})$")
_RFC3164 = re.compile(r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$")
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_SYSLOG_TYPES = ("linux.auth", "linux.syslog")  # auth first: its sniffer only claims auth programs
# Raw-line log types a {"message": ...} record may be, tried in this order after any tag hint.
_LINE_TYPES = ("nginx.access", "apache.access", "nginx.error", "apache.error", *_SYSLOG_TYPES)
_TAG_HINTS = (
    (re.compile(r"nginx"), ("nginx.access", "nginx.error")),
    (re.compile(r"apache|httpd"), ("apache.access", "apache.error")),
    (re.compile(r"syslog|messages|auth|secure|system|kern|cron"), _SYSLOG_TYPES),
)
_FIELD_LIMIT = 8191
_PID = re.compile(r"^\d{1,10}$")


def _epoch(value: float) -> datetime:
    if not 0 <= value < 253402300800:
        raise ValueError("epoch out of range")
    return datetime.fromtimestamp(value, UTC)


def _parse_time(value: Any, options: ParseOptions) -> str | None:
    """An injected fluentd time (epoch float/int, ISO 8601) or a kept source time (CLF, RFC 3164)."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return iso_utc(_epoch(float(value)))
        if not isinstance(value, str) or not value:
            return None
        if value[0].isdigit() and value.replace(".", "", 1).isdigit():
            return iso_utc(_epoch(float(value)))
        match = _RFC3164.match(value)
        if match:
            return _rfc3164(match, options)
        if "/" in value:
            return iso_utc(datetime.strptime(value, _CLF_TIME))
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=resolve_timezone(options.syslog_timezone))
        return iso_utc(dt)
    except (ValueError, OverflowError):
        return None


def _rfc3164(match: re.Match[str], options: ParseOptions) -> str | None:
    """A year-less syslog time: the configured year, else this year unless that is in the future."""
    month = _MONTHS.get(match[1])
    if month is None:
        return None
    tz = resolve_timezone(options.syslog_timezone)
    micro = int((match[6] or "0").ljust(6, "0"))
    fields = (month, int(match[2]), int(match[3]), int(match[4]), int(match[5]), micro)
    if options.syslog_year is not None:
        return iso_utc(datetime(options.syslog_year, *fields, tzinfo=tz))
    now = datetime.now(UTC)
    dt = datetime(now.year, *fields, tzinfo=tz)
    if dt > now + timedelta(days=1):
        dt = dt.replace(year=now.year - 1)
    return iso_utc(dt)


def _record_time(raw: dict[str, Any], options: ParseOptions) -> str | None:
    for key in _TIME_KEYS:
        if key in raw:
            parsed = _parse_time(raw[key], options)
            if parsed:
                return parsed
    return None


def _required_time(raw: dict[str, Any], options: ParseOptions, what: str) -> str:
    timestamp = _record_time(raw, options)
    if timestamp is None:
        raise RecordError(f"{what} has no usable time (have fluent-plugin-s3 inject it: include_time_key / <inject>)")
    return timestamp


def _text(value: Any) -> str | None:
    """A present value as a string: fluentd writes "-" (nginx) or null (apache2) for absent ones."""
    if value is None or isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    return None if text in ("", "-") else text


def _quoted(value: Any) -> str:
    """A CLF quoted field as nginx/Apache escape it, so the access parsers read it back unchanged."""
    text = _text(value)
    if text is None:
        return "-"
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _word(value: Any) -> str:
    text = _text(value)
    return "-" if text is None or any(c.isspace() for c in text) else text


def _log_type(dataset: str) -> LogType:
    log_type = formats.registry().get(dataset)
    if log_type is None:
        raise RecordError(f"the {dataset} log type is not available to map this record")
    return log_type


def _access(raw: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any] | None, str]:
    """fluentd's nginx parser (client in `remote`) or apache2 parser (client in `host`), rendered
    back to the combined line it was parsed from (the protocol version, dropped by fluentd, aside)."""
    nginx = "remote" in raw
    timestamp = _required_time(raw, options, "parsed access record")
    clf = datetime.fromisoformat(timestamp).strftime(_CLF_TIME)
    client = _word(raw.get("remote") if nginx else raw.get("host"))
    status = _text(raw.get("code")) or "-"
    size = _text(raw.get("size")) or "-"
    request = f"{_quoted(raw.get('method'))} {_quoted(raw.get('path'))}".removesuffix(" -")
    line = (
        f'{client} - {_word(raw.get("user"))} [{clf}] "{request}" {status} {size} '
        f'"{_quoted(raw.get("referer"))}" "{_quoted(raw.get("agent"))}"'
    )
    forwarded = _text(raw.get("http_x_forwarded_for"))
    if nginx and forwarded:
        line += f' "{_quoted(forwarded)}"'
    dataset = "nginx.access" if nginx else "apache.access"
    doc = _log_type(dataset).to_ecs(line, options)
    if doc is not None:
        doc["@timestamp"] = timestamp  # CLF has whole seconds; fluentd's time may be finer
    return doc, dataset


def _syslog(raw: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any] | None, str]:
    """fluentd's syslog parser / in_syslog record (host, ident, pid, message, pri, msgid), rendered
    back to a syslog line: linux.auth maps sshd/sudo/su content, linux.syslog the rest."""
    timestamp = _required_time(raw, options, "parsed syslog record")
    pri = raw.get("pri")
    prefix = f"<{pri}>" if isinstance(pri, int) and not isinstance(pri, bool) and 0 <= pri <= 191 else ""
    ident = _word(raw.get("ident"))
    program = "" if ident == "-" else ident
    pid = _text(raw.get("pid"))
    if program and pid and _PID.match(pid):
        program += f"[{pid}]"
    host = _word(raw.get("host"))
    message = raw.get("message") if isinstance(raw.get("message"), str) else ""
    line = f"{prefix}{timestamp} {'' if host == '-' else host} {program}: {message}"
    for dataset in _SYSLOG_TYPES:
        log_type = formats.registry().get(dataset)
        if log_type is not None and (dataset == _SYSLOG_TYPES[-1] or log_type.sniff(line.encode() + b"\n")):
            doc = log_type.to_ecs(line, options)
            if doc is not None:
                msgid = _text(raw.get("msgid"))
                if msgid:
                    doc.setdefault("log", {}).setdefault("syslog", {})["msgid"] = msgid
            return doc, dataset
    raise RecordError(f"the {_SYSLOG_TYPES[-1]} log type is not available to map this record")


def _delegate(line: str, raw: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any] | None, str] | None:
    """The raw line through the first log type (tag hints first) whose sniffer claims it."""
    registry = formats.registry()
    tag = raw.get("tag")
    order: list[str] = []
    if isinstance(tag, str):
        for pattern, datasets in _TAG_HINTS:
            if pattern.search(tag):
                order += datasets
    order += [dataset for dataset in _LINE_TYPES if dataset not in order]
    head = line.encode("utf-8", errors="replace") + b"\n"
    for dataset in order:
        log_type = registry.get(dataset)
        if log_type is None:
            continue
        try:
            claimed = log_type.sniff(head)
        except Exception:  # another type's sniffer must not break this record
            claimed = False
        if claimed:
            doc = log_type.to_ecs(line, options)
            if doc is not None and "@timestamp" not in doc:
                doc["@timestamp"] = _required_time(raw, options, f"{dataset} line")
            return doc, dataset
    return None


def _fallback(raw: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any], str]:
    """A record of no known shape, kept searchable as strings so two pipelines' types never collide."""
    doc: dict[str, Any] = {"@timestamp": _required_time(raw, options, "fluentd record"), "event": {"kind": "event"}}
    fields: dict[str, str] = {}
    for key, value in raw.items():
        if key in _META_KEYS or value is None:
            continue
        if key == "message" and isinstance(value, str):
            doc["message"] = value
            continue
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        fields[str(key).replace(".", "_")] = text[:_FIELD_LIMIT]
    host = _text(raw.get("host")) or _text(raw.get("hostname"))
    if host:
        doc["host"] = {"name": host}
    if fields:
        doc["fluentd"] = {"fields": fields}
    return doc, FluentdLogType.dataset


def _not_json_object(bad: BadRecord) -> Record | BadRecord:
    """A line the JSON-lines framing refused: an out_file line (time, tag, then the record), a
    single_value line (the bare message), or a broken JSON record, which stays a BadRecord."""
    line = bad.raw
    out_file = _OUT_FILE.match(line)
    if out_file is None:
        return bad if line[:1] == b"{" else (bad.offset, {"message": line.decode("utf-8", errors="replace")})
    try:
        obj = orjson.loads(out_file.group(3))  # '{' ... '}': an object whenever it parses
    except orjson.JSONDecodeError as exc:
        return BadRecord(bad.offset, f"invalid JSON: {exc}", line)
    obj.setdefault("time", out_file.group(1).decode())
    obj.setdefault("tag", out_file.group(2).decode("utf-8", errors="replace"))
    return bad.offset, obj


class FluentdLogType(JsonLinesFormat):
    dataset = "fluentd"
    description = "fluentd/td-agent records on S3 (fluent-plugin-s3: json, out_file or single_value format)"
    # fluent-plugin-s3 keys as the usual td-agent setup writes them: <source>/<tag>/YYYY/MM/DD/...
    key_pattern = re.compile(r"(?:^|/)(?:syslog|nginx|apache2?|httpd)/[^/]+/\d{4}/\d\d/\d\d/")

    def sniff(self, head: bytes) -> bool:
        """Only what fluentd's own parsers or out_file produce: a bare {"message": ...} is anyone's."""
        first = head.lstrip().split(b"\n", 1)[0].rstrip(b"\r")
        out_file = _OUT_FILE.match(first)
        if out_file:
            first = out_file.group(3)
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict):
            return False
        if out_file:
            return True
        keys = set(obj) - _META_KEYS
        return _ACCESS_KEYS <= keys <= _ACCESS_ALL or {"host", "ident", "message"} <= keys <= _SYSLOG_KEYS

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        """JSON lines as JsonLinesFormat frames them; out_file and single_value lines are what it refuses."""
        for item in super().records(stream, options):
            yield _not_json_object(item) if isinstance(item, BadRecord) else item

    def to_ecs(self, raw: Any, options: ParseOptions) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            raise RecordError(f"fluentd record is a JSON {type(raw).__name__}, not an object")
        keys = raw.keys()
        message = raw.get("message")
        routed: tuple[dict[str, Any] | None, str] | None
        if keys >= _ACCESS_KEYS:
            routed = _access(raw, options)
        elif "ident" in keys or "pri" in keys:
            routed = _syslog(raw, options)
        else:
            routed = _delegate(message, raw, options) if isinstance(message, str) and message else None
            if routed is None:
                if "host" in keys and isinstance(message, str) and keys - _META_KEYS <= _SYSLOG_KEYS:
                    routed = _syslog(raw, options)
                else:
                    routed = _fallback(raw, options)
        doc, dataset = routed
        if doc is None:
            return None
        doc.setdefault("event", {"kind": "event"})["dataset"] = dataset
        tag = raw.get("tag")
        if isinstance(tag, str) and tag:
            doc.setdefault("fluentd", {})["tag"] = tag
        return doc


LOG_TYPE = FluentdLogType()
