"""The nginx / Apache access-log fast path: a chunk of combined-format lines mapped straight to JSON bytes.

Exactness rule: a line is mapped here only when it is printable ASCII without a backslash and has the
plain common/combined shape `_LINE` accepts — one canonical dotted IPv4 client (no port, no vhost
prefix, no X-Forwarded-For list), ident and user without `"`, a timestamp `access_timestamp` reads,
a request `METHOD /origin-form-target HTTP/d[.d]` (not CONNECT, no `#`), a status `-` or 100-999,
a byte count `-` or up to 18 digits without a leading zero, then nothing, a referrer, or a referrer
and a user agent, optionally followed by ` "-"` (nginx `main`'s empty X-Forwarded-For) — for which
the code below provably gives what `_http_common.access_doc` + `normalize.finalize` give. Any
other line — IPv6 or host-name clients, address lists, vhosts, escaped quotes, a request time after
the byte count, `"-"` or garbage requests, non-ASCII or non-UTF-8 bytes, malformed lines — is handed
back with its position (a `Record`), and the reference mapper makes its document or dead letter.

Why the shape can be read by one regex: ACCESS_LINE's only choices are its lazy address prefix
(which for a single IPv4 address ends at the first space) and its optional trailing groups, which
it fills greedily because `rest` (`.*`) never fails; `_LINE` takes the same groups possessively.

ParseOptions cannot change these documents: with one client address `put_clients` never walks an
X-Forwarded-For chain (so `trusted_proxies` is not read) and the access mappers read nothing from
`options.extra`. Enrichment, which needs dicts, makes the pipeline skip this path altogether.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import unquote

import orjson

from siem import limits
from siem.columns import Columns
from siem.fast.chunks import STATS, chunks, numbered_lines, reference_lines
from siem.fast.envelope import envelope
from siem.formats._http_common import access_timestamp
from siem.formats.base import BadRecord, ParseOptions, Record
from siem.normalize import ObjectContext

_OCTET = rb"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_LINE = re.compile(
    rb"((?:" + _OCTET + rb"\.){3}" + _OCTET + rb") "  # client: canonical IPv4, as valid_ip keeps it
    rb'([^ "]+) ([^ "]+) '  # ident, user
    rb"\[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    rb'"([A-Za-z][A-Za-z0-9_.-]*) (/[^ "#]*) HTTP/(\d+(?:\.\d+)?)" '  # _http_common._REQUEST's split
    rb"([1-9]\d\d|-) (0|[1-9]\d{0,17}|-)"  # status, body bytes (at most 18 digits: within a long)
    rb'(?: "([^"]*)")?+(?: "([^"]*)")?+(?: "-")?'  # referrer, agent, nginx main's empty X-Forwarded-For
)
_ABSENT = (None, b"-", b"")  # an optional group not there, or none_if_dash's values
# printable ASCII but the backslash, and the newline, kept; every other byte becomes \x01
_PLAIN = bytes(c if (32 <= c < 127 and c != 92) or c == 10 else 1 for c in range(256))
# A plain line's document: what access_doc + finalize build (key order aside); map_line fills it in, the
# envelope (`envelope`) last, up to log.offset's value
_DOCUMENT = (
    b'%s,"event":{"kind":"event","category":["web"],"type":["access"]%s%s'
    b',"source":{"ip":"%s","address":"%s"},"client":{"ip":"%s","address":"%s"}'
    b',"http":{"request":{"method":"%s"%s},"version":"%s"%s}'
    b',"url":{"original":"%s"%s}%s%s'
    b',"%s":{"access":{%s"%s":["%s"]}},"related":{"ip":["%s"]%s}%s%s'
)
_OUTCOMES = {True: b',"outcome":"success"', False: b',"outcome":"failure"'}
_VENDOR = {"nginx.access": (b"nginx", b"remote_ip_list"), "apache.access": (b"apache", b"remote_addresses")}
_stamps: dict[bytes, bytes | None] = {}


def _timestamp(value: bytes) -> bytes | None:
    """`"@timestamp":"…"` (after the document's `{`) for a logged `dd/Mon/yyyy:hh:mm:ss +zzzz`, or None
    when the reference refuses the time (that line goes to the reference, which dead-letters it).

    With a whole-hour offset (nearly every log) and minutes and seconds under 60, it is the reference's
    conversion of the hour with the minutes and seconds put in: they cannot carry into the hour, and
    the hour is refused exactly when the second is. So one conversion serves an hour of lines."""
    if value[24:26] == b"00" and value[15] < 54 and value[18] < 54:  # 54: b"6"
        hour = _converted(value[:15] + b"00:00" + value[20:])
        return None if hour is None else hour[:29] + value[15:20] + hour[34:]
    return _converted(value)


def _converted(value: bytes) -> bytes | None:
    """`access_timestamp` itself as JSON bytes, or None for a time it refuses; cached, bounded."""
    try:
        return _stamps[value]
    except KeyError:
        pass
    found: bytes | None
    try:
        found = b'{"@timestamp":"' + access_timestamp(value.decode()).encode() + b'"'
    except Exception:  # RecordError for a bad date, OverflowError at the ends of the calendar
        found = None
    if len(_stamps) >= 4096:
        _stamps.clear()
    _stamps[value] = found
    return found


def _url(target: bytes) -> bytes:
    """url.* after url.original, as `put_url` writes an origin-form target: path and query
    percent-decoded by unquote() (whose bytes form is its str form for ASCII input) and escaped by
    orjson; the extension read from the decoded path. Plain ASCII without `%` is copied as it is."""
    path, _, query = target.partition(b"?")
    if b"%" in path:
        decoded = unquote(path)
        name = decoded.rpartition("/")[2]
        extension = name.rpartition(".")[2] if "." in name else ""
        out = b',"path":' + orjson.dumps(decoded) + (b',"extension":' + orjson.dumps(extension) if extension else b"")
    else:
        name = path.rpartition(b"/")[2]
        extension = name.rpartition(b".")[2] if b"." in name else b""
        out = b',"path":"' + path + (b'","extension":"' + extension + b'"' if extension else b'"')
    if query:
        out += b',"query":' + orjson.dumps(unquote(query)) if b"%" in query else b',"query":"' + query + b'"'
    return out


def map_line(
    line: bytes, tail: tuple[bytes, bytes, bytes], vendor: tuple[bytes, bytes], ingested: str
) -> tuple[bytes, Columns] | None:
    """The finished document of one plain line (without its offset and closing braces) and its
    columns, or None when the line is not one this path can prove it maps exactly."""
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    ip, ident, user, stamp, method, target, version, status, size, referrer, agent = match.groups()
    if method.upper() == b"CONNECT":  # put_url reads a CONNECT target as host:port
        return None
    timestamp = _timestamp(stamp)
    if timestamp is None:
        return None
    if status == b"-":  # http.response: the status code and body bytes present, if any
        outcome = b""
        response = b"" if size == b"-" else b',"response":{"body":{"bytes":' + size + b"}}"
    else:
        outcome = _OUTCOMES[int(status) < 400]
        body = b"}" if size == b"-" else b',"body":{"bytes":' + size + b"}}"
        response = b',"response":{"status_code":' + status + body
    client = ip.decode()
    name = None if user == b"-" else user.decode()  # printable ASCII without a quote or backslash
    columns = Columns(timestamp[15:-1].decode(), client, name, [client], None if name is None else [name], ingested)
    return _DOCUMENT % (
        timestamp,
        outcome,
        tail[0],
        ip,
        ip,
        ip,
        ip,
        method,
        b"" if referrer in _ABSENT else b',"referrer":"' + referrer + b'"',
        version,
        response,
        target,
        _url(target),
        b"" if agent in _ABSENT else b',"user_agent":{"original":"' + agent + b'"}',
        b"" if user == b"-" else b',"user":{"name":"' + user + b'"}',
        vendor[0],
        b"" if ident == b"-" else b'"identity":"' + ident + b'",',
        vendor[1],
        ip,
        ip,
        b"" if user == b"-" else b',"user":["' + user + b'"]',
        tail[1],
        tail[2],
    ), columns


def map_stream(
    stream: BinaryIO, options: ParseOptions, ctx: ObjectContext, dataset: str
) -> Iterator[Record | BadRecord]:
    """Records as `LineFormat.records` gives them, except that the lines mapped here come as
    (position, Event): finished, finalized documents as JSON bytes. `dataset` is nginx.access or
    apache.access: the two differ only in the vendor member naming the client list."""
    from siem.pipeline import Event  # the pipeline imports the formats, which offer this path

    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    tail = envelope(ctx, dataset)
    vendor = _VENDOR[dataset]
    prefix = ctx.id_prefix + "-"
    fast = reference = 0
    for chunk in chunks(stream, limit):
        if isinstance(chunk, BadRecord):
            yield chunk
            continue
        for line, off in numbered_lines(chunk, _PLAIN):
            mapped = None
            if line and len(line) <= limit and b"\x01" not in line:
                mapped = map_line(line, tail, vendor, ctx.ingested)
            if mapped is not None:
                fast += 1
                doc, columns = mapped
                position = str(off)
                yield off, Event(prefix + position, dataset, None, doc + position.encode() + b"}}", columns)
            elif line:  # an empty piece is a blank line or the end of the chunk: no record
                for item in reference_lines(chunk, [off], limit):
                    reference += not isinstance(item, BadRecord)
                    yield item
        STATS[dataset + ".fast"] += fast
        STATS[dataset + ".reference"] += reference
        fast = reference = 0
