"""Syslog framing and header parsing shared by linux.syslog and linux.auth.

Both files are written by the same daemons (rsyslog, syslog-ng, journald forwarding) in the same
header shapes, so the header rules live here once:

* RFC 3164 ``Mmm dd hh:mm:ss host prog[pid]: msg`` (no year, no zone: both come from ParseOptions),
* ISO 8601 timestamps (rsyslog high-precision ``2024-01-01T00:00:00.123456+09:00 host prog:``),
* RFC 5424 ``<pri>1 2003-10-11T22:14:15.003Z host app procid msgid [sd] msg``,
* an optional ``<pri>`` before the first two.

The program/pid split follows Elastic's grok (``%{DATA}(?:\\[pid\\])?: ``): the program is the
shortest text before ``: `` so that names with spaces (``Google Chrome[85294]:``) survive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, BinaryIO

from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, head_lines, iter_lines
from siem.normalize import iso_utc, valid_ip
from siem.timeparse import resolve_timezone

# A continuation line (indented) joins the record before it, up to this size: beyond it the line
# stands alone (and is dead-lettered for lacking a header) so one runaway record stays bounded.
MAX_RECORD_BYTES = 256 * 1024

_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_BSD_TS = (
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?P<hh>\d{2}):(?P<mm>\d{2}):(?P<ss>\d{2})(?:[.,](?P<frac>\d+))?"
)
_ISO_TS = (
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T ](?P<ih>\d{2}):(?P<im>\d{2}):(?P<is>\d{2})"
    r"(?:[.,](?P<ifrac>\d+))?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?"
)
_ISO = re.compile(_ISO_TS + "$")
_HEADER = re.compile(rf"(?:<(?P<pri>\d{{1,3}})>)?(?:{_BSD_TS}|{_ISO_TS})(?: (?P<rest>.*)|$)", re.S)
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<ver>\d{1,2}) +(?P<ts>\S+) +(?P<host>\S+) +(?P<app>\S+) +(?P<procid>\S+) +(?P<msgid>\S+)"
    r"(?: +(?P<rest>.*)|$)",
    re.S,
)
# host (possibly empty: "Feb 22 10:21:43  sshd[1332]: ..."), then program[pid]: message.
_HOST_PROG = re.compile(
    r"(?P<host>(?:[0-9A-Za-z][\w.:%-]*)?) (?P<prog>[^\n]*?)(?:\[(?P<pid>\d{1,10})\])?:(?:[ \t]+|(?=\n)|$)(?P<msg>.*)",
    re.S,
)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]="]+)(?P<params>(?: +[^\s\]="]+="(?:[^"\\]|\\.)*")*) *\]')
_SD_PARAM = re.compile(r'([^\s\]="]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')

_SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5",
    "local6", "local7",
)  # fmt: skip

# The header shapes content sniffing accepts on a first line (anything _HEADER/_RFC5424 parse).
_SNIFF_LINE = re.compile(
    rb"^(?:<\d{1,3}>\d{0,2} ?)?(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)"
)


@dataclass(slots=True)
class SyslogHeader:
    """One parsed syslog record: the header fields and the message body."""

    timestamp: str
    message: str
    host: str | None = None
    program: str | None = None
    pid: int | None = None
    priority: int | None = None
    version: int | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] | None = None


def syslog_records(stream: BinaryIO) -> Iterator[Record | BadRecord | Skipped]:
    """Records with their first line's offset: indented lines continue the record before them."""
    start = 0
    parts: list[bytes] = []
    size = 0
    for offset, line in iter_lines(stream):
        if parts and line[:1] in (b" ", b"\t") and size + len(line) < MAX_RECORD_BYTES:
            parts.append(line)
            size += len(line) + 1
            continue
        if parts:
            yield start, _decode(b"\n".join(parts))
        start, parts, size = offset, [line], len(line)
    if parts:
        yield start, _decode(b"\n".join(parts))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def looks_like_syslog(line: bytes) -> bool:
    """Whether one line starts with a syslog header (used by both sniffers)."""
    return _SNIFF_LINE.match(line) is not None


def sniff_headers(head: bytes, limit: int = 20) -> list[SyslogHeader] | None:
    """The parsed record headers at the start of an object, or None when any of them is not syslog.

    Indented lines are continuations and are skipped; a line that is neither a header nor a
    continuation means the object is something else. An ISO 8601 timestamp alone is not enough
    (many application logs start so): without a ``<pri>`` it must be followed by ``host prog:``.
    """
    headers: list[SyslogHeader] = []
    options = ParseOptions(syslog_year=2000)  # the year cannot matter for recognising a header
    for line in head_lines(head, limit):
        if line[:1] in (b" ", b"\t"):
            if not headers:
                return None
            continue
        if not looks_like_syslog(line):
            return None
        try:
            header = parse_header(line.decode("utf-8", errors="replace"), options)
        except RecordError:
            return None
        if line[:1].isdigit() and header.program is None:
            return None
        headers.append(header)
    return headers or None


def parse_header(text: str, options: ParseOptions) -> SyslogHeader:
    """Split a record into header fields and message; RecordError when it has no syslog header."""
    if text.startswith("<"):
        m5424 = _RFC5424.match(text)
        if m5424 and m5424["ver"] != "0":
            return _rfc5424(m5424, options)
    match = _HEADER.match(text)
    if match is None:
        raise RecordError(f"no syslog timestamp at the start of the record: {text[:60]!r}")
    if match["mon"]:
        ts = _bsd_time(match, options)
    else:
        ts = _iso_time(*match.group("y", "mo", "d", "ih", "im", "is", "ifrac", "tz"), options)
    header = SyslogHeader(timestamp=ts, message="", priority=_priority(match["pri"]))
    rest = match["rest"] or ""
    parts = _HOST_PROG.match(rest)
    if parts is None:
        header.message = rest
        return header
    header.host = parts["host"] or None
    header.program = parts["prog"] or None
    if parts["pid"]:
        header.pid = int(parts["pid"])
    header.message = parts["msg"]
    return header


def _rfc5424(match: re.Match[str], options: ParseOptions) -> SyslogHeader:
    iso = _ISO.match(match["ts"])
    if iso is None:
        raise RecordError(f"RFC 5424 record without a usable timestamp: {match['ts'][:40]!r}")
    ts = _iso_time(*iso.group("y", "mo", "d", "ih", "im", "is", "ifrac", "tz"), options)
    header = SyslogHeader(timestamp=ts, message="", priority=_priority(match["pri"]), version=int(match["ver"]))
    if match["host"] != "-":
        header.host = match["host"]
    if match["app"] != "-":
        header.program = match["app"]
    procid = match["procid"]
    if procid != "-":
        if procid.isdigit() and len(procid) <= 10:
            header.pid = int(procid)
        else:
            header.procid = procid
    if match["msgid"] != "-":
        header.msgid = match["msgid"]
    rest = match["rest"] or ""
    if rest.startswith("-"):
        rest = rest[1:]
    elif rest.startswith("["):
        data: dict[str, dict[str, str]] = {}
        pos = 0
        while element := _SD_ELEMENT.match(rest, pos):
            params = {k: _SD_UNESCAPE.sub(r"\1", v) for k, v in _SD_PARAM.findall(element["params"])}
            data.setdefault(element["id"], {}).update(params)
            pos = element.end()
        if data:
            header.structured_data = data
            rest = rest[pos:]
    header.message = rest.lstrip(" ").removeprefix("\ufeff")
    return header


def _priority(value: str | None) -> int | None:
    if value is None:
        return None
    pri = int(value)
    return pri if pri <= 191 else None


def _frac_us(frac: str | None) -> int:
    return int(frac[:6].ljust(6, "0")) if frac else 0


def _bsd_time(match: re.Match[str], options: ParseOptions) -> str:
    tz = resolve_timezone(options.syslog_timezone)
    month, day = _MONTHS[match["mon"]], int(match["day"])
    clock = (int(match["hh"]), int(match["mm"]), int(match["ss"]), _frac_us(match["frac"]))
    try:
        if options.syslog_year is not None:
            return iso_utc(datetime(options.syslog_year, month, day, *clock, tzinfo=tz))
        now = datetime.now(tz)
        dt = datetime(now.year, month, day, *clock, tzinfo=tz)
        if dt - now > timedelta(days=1):  # December records read in January belong to last year
            dt = dt.replace(year=now.year - 1)
        return iso_utc(dt)
    except ValueError as exc:
        raise RecordError(f"invalid syslog timestamp {match.group(0)[:40]!r}: {exc}") from None


def _iso_time(
    y: str, mo: str, d: str, hh: str, mm: str, ss: str, frac: str | None, tz_text: str | None, options: ParseOptions
) -> str:
    tz: tzinfo = _offset(tz_text) if tz_text else resolve_timezone(options.syslog_timezone)
    try:
        return iso_utc(datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss), _frac_us(frac), tzinfo=tz))
    except ValueError as exc:
        raise RecordError(f"invalid timestamp {y}-{mo}-{d}T{hh}:{mm}:{ss}: {exc}") from None


_OFFSETS: dict[str, tzinfo] = {"Z": UTC}


def _offset(text: str) -> tzinfo:
    """'Z', '+02:00', '+0400' or '+09' as a cached fixed-offset tzinfo."""
    tz = _OFFSETS.get(text)
    if tz is None:
        digits = text[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise RecordError(f"invalid UTC offset {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if text[0] == "-" else delta)
        if len(_OFFSETS) < 1024:
            _OFFSETS[text] = tz
    return tz


def header_fields(header: SyslogHeader) -> dict[str, Any]:
    """The ECS fields every syslog-framed event carries: @timestamp, host, process, log.syslog."""
    doc: dict[str, Any] = {"@timestamp": header.timestamp}
    if header.message:
        doc["message"] = header.message
    if header.host:
        host: dict[str, Any] = {"hostname": header.host}
        ip = valid_ip(header.host)
        if ip:
            host["ip"] = ip
        doc["host"] = host
        doc["related"] = {"hosts": [header.host]}
    if header.program:
        process: dict[str, Any] = {"name": header.program}
        if header.pid is not None:
            process["pid"] = header.pid
        doc["process"] = process
    syslog: dict[str, Any] = {}
    if header.priority is not None:
        facility, severity = header.priority >> 3, header.priority & 7
        syslog["priority"] = header.priority
        syslog["facility"] = {"code": facility, "name": _FACILITIES[facility]}
        syslog["severity"] = {"code": severity, "name": _SEVERITIES[severity]}
    if header.version is not None:
        syslog["version"] = str(header.version)
    if header.procid:
        syslog["procid"] = header.procid
    if header.msgid:
        syslog["msgid"] = header.msgid
    if header.structured_data:
        syslog["structured_data"] = header.structured_data
    if syslog:
        doc["log"] = {"syslog": syslog}
    return doc
