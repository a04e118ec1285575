"""The ALB fast path: a chunk of access-log lines mapped straight to finished JSON bytes.

Exactness rule: a line is mapped here only when it is an HTTP(S)/h2/grpcs/ws(s) access line in the
layout `siem.formats.alb._ALB_LINE` matches (29 or more fields, quoted ones where AWS quotes them,
single spaces), made of printable ASCII without a backslash, whose timestamp, endpoints (canonical
IPv4 with a port), numbers and request ("METHOD scheme://host:port/path[?query] HTTP/x") have the
plain shapes for which the code below provably gives what `alb.to_ecs` + `normalize.finalize` give.
Any other line — IPv6 or host-name endpoints, NLB/Classic/connection lines, odd numbers, a URL with
spaces or a fragment, non-ASCII or non-UTF-8 bytes, malformed lines — is handed back with its
position (a `Record`), and the reference mapper makes its document or dead letter.

Why not DuckDB (or another columnar engine): measured on the same chunks, DuckDB's string functions
(split, regexp, concat: ~100 per row) cost 4-5x more per line than this code's few C-level calls
per line (bytes.split, one compiled regex, one join); see docs/fast-path.md.

Documents are compact JSON as orjson writes them (values copied verbatim are plain ASCII without
`"` or `\\`, floats and decoded URL parts go through orjson itself); only the key order differs.
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
from siem.formats.base import BadRecord, ParseOptions, Record
from siem.normalize import ObjectContext

DATASET = "aws.alb"

_OCTET = rb"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_ENDPOINT = rb"(-|(?:" + _OCTET + rb"\.){3}" + _OCTET + rb":(?:0|[1-9]\d{0,8}))"  # valid_ip keeps it as is
_FLOAT = rb"(-1?|(?:0|[1-9]\d{0,5})\.\d{1,6})"  # "-"/"-1" (absent) or a decimal float() reads exactly
_INT = rb"(-1?|0|[1-9]\d{0,8})"  # "-"/"-1" (absent) or an integer written as orjson writes it
# The 12 bare fields before the request (what is left of the line before its first double quote)
_HEAD = re.compile(
    rb"(http|https|h2|grpcs|ws|wss) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) ([^ ]+) "
    + _ENDPOINT
    + b" "
    + _ENDPOINT
    + b" "
    + b" ".join([_FLOAT] * 3 + [_INT] * 4)
    + b" "
)
_MIDDLE = re.compile(rb" ([^ ]+) ([^ ]+) ([^ ]+) ")  # cipher, TLS protocol, target group
_RULE = re.compile(rb" ([^ ]+) ([^ ]+) ")  # matched rule priority, request creation time
# The request as _REQUEST and _URL split it; no space, '#' or '"' inside the URL
_REQUEST = re.compile(
    rb"([A-Z]+) (([a-z][a-z0-9]*)://([A-Za-z0-9.-]+):(0|[1-9]\d{0,8})(/[^?# ]*)(?:\?([^# ]*))?) HTTP/([0-9.]+)"
)
_SEPARATORS = (2, 6, 8, 12, 14, 16, 18, 20, 22)  # indexes of the " " between quoted fields
# aws.elb members copied from the quoted fields when present (siem.formats.alb._ALB_EXTRA)
_QUOTED_EXTRA = (
    (b"trace_id", 5),
    (b"domain_name", 7),
    (b"chosen_cert_arn", 9),
    (b"redirect_url", 13),
    (b"error_reason", 15),
    (b"target_port_list", 17),
    (b"target_status_code_list", 19),
    (b"classification", 21),
    (b"classification_reason", 23),
)
_ABSENT = (b"-", b"")
_NO_NUMBER = (b"-", b"-1")
# printable ASCII but the backslash, and the newline, kept; every other byte becomes \x01
_PLAIN = bytes(c if (32 <= c < 127 and c != 92) or c == 10 else 1 for c in range(256))
_seconds: dict[bytes, bytes] = {}


def _sec(value: bytes) -> bytes:
    """`{"sec":<float>}` exactly as the reference's float() + orjson write it (cached: values repeat)."""
    found = _seconds.get(value)
    if found is None:
        found = b'{"sec":' + orjson.dumps(float(value)) + b"}"
        if len(_seconds) < 65536:
            _seconds[value] = found
    return found


def _text(value: bytes) -> bytes:
    """A URL path or query as the reference writes it: percent-decoded by unquote(), escaped by orjson."""
    if b"%" not in value:
        return b'"' + value + b'"'
    return orjson.dumps(unquote(value.decode("ascii")))


def _endpoint(value: bytes) -> bytes:
    ip, _, port = value.partition(b":")
    return b'{"ip":"' + ip + b'","address":"' + ip + b'","port":' + port + b"}"


def map_line(line: bytes, tail: tuple[bytes, bytes, bytes], ingested: str) -> tuple[bytes, Columns] | None:
    """The finished document of one plain line (without its offset and closing braces) and its
    columns, or None when the line is not one this path can prove it maps exactly."""
    q = line.split(b'"')
    if len(q) != 25:
        return None
    head = _HEAD.fullmatch(q[0])
    if head is None:
        return None
    for i in _SEPARATORS:
        if q[i] != b" ":
            return None
    middle = _MIDDLE.fullmatch(q[4])
    rule = _RULE.fullmatch(q[10])
    request = _REQUEST.fullmatch(q[1])
    last = q[24]
    if middle is None or rule is None or request is None or (last and last[:1] != b" "):
        return None
    kind, stamp, name, client, target, t_req, t_target, t_resp, status, t_status, received, sent = head.groups()
    method, url, scheme, host, port, path, query, version = request.groups()
    ts = stamp if stamp.endswith(b"Z") else stamp + b"Z"
    out = [b'{"@timestamp":"', ts, b'"']
    if client != b"-":
        out += (b',"source":', _endpoint(client))
    if target != b"-":
        out += (b',"destination":', _endpoint(target))
    out += (b',"url":{"original":"', url, b'","scheme":"', scheme, b'","domain":"', host, b'","port":', port)
    out += (b',"path":', _text(path))
    name_part = path.rpartition(b"/")[2] if b"%" not in path else unquote(path.decode()).rpartition("/")[2].encode()
    if b"." in name_part:
        extension = name_part.rpartition(b".")[2]
        if extension:
            out += (b',"extension":', orjson.dumps(extension.decode()))
    if query:
        out += (b',"query":', _text(query))
    out += (b'},"http":{"request":{"method":"', method, b'"')
    if received not in _NO_NUMBER:
        out += (b',"bytes":', received)
    out.append(b'},"response":{')
    response = []
    if sent not in _NO_NUMBER:
        response.append(b'"bytes":' + sent)
    if status not in _NO_NUMBER:
        response.append(b'"status_code":' + status)
    out += (b",".join(response), b'},"version":"', version, b'"}')
    agent = q[3]
    if agent not in _ABSENT:
        out += (b',"user_agent":{"original":"', agent, b'"}')
    cipher, protocol, group = middle.groups()
    if cipher not in _ABSENT:
        out += (b',"tls":{"cipher":"', cipher, b'"')
        if protocol not in _ABSENT:
            version_text = protocol[4:] if protocol.startswith(b"TLSv") else protocol
            out += (b',"version_protocol":"tls","version":"', version_text, b'"')
        out.append(b"}")
    trace = q[5]
    if trace not in _ABSENT:
        out += (b',"trace":{"id":"', trace, b'"}')
    out.append(b',"event":{"kind":"event","category":["web"],"type":["access"]')
    if status not in _NO_NUMBER:
        out.append(b',"outcome":"success"' if int(status) < 400 else b',"outcome":"failure"')
    priority, created = rule.groups()
    if created not in _ABSENT:
        out += (b',"start":"', created, b'"')
    out += (b',"end":"', ts, b'"', tail[0], b',"aws":{"elb":{"type":"', kind, b'","name":"', name)
    out += (b'","protocol":"', kind, b'"')
    if t_status not in _NO_NUMBER:
        out += (b',"target_status_code":', t_status)
    if t_req not in _NO_NUMBER:
        out += (b',"request_processing_time":', _sec(t_req))
    if t_target not in _NO_NUMBER:
        out += (b',"target_processing_time":', _sec(t_target))
    if t_resp not in _NO_NUMBER:
        out += (b',"response_processing_time":', _sec(t_resp))
    if group not in _ABSENT:
        out += (b',"target_group_arn":"', group, b'"')
    if priority not in _ABSENT:
        out += (b',"matched_rule_priority":"', priority, b'"')
    if created not in _ABSENT:
        out += (b',"request_creation_time":"', created, b'"')
    for key, i in _QUOTED_EXTRA:
        value = q[i]
        if value not in _ABSENT:
            out += (b',"', key, b'":"', value, b'"')
    actions = q[11]
    if actions not in _ABSENT:
        out += (b',"actions_executed":["', actions.replace(b",", b'","'), b'"]')
    conn_trace = last.split(b" ", 2)[1] if last else b""
    if conn_trace not in _ABSENT:
        out += (b',"conn_trace_id":"', conn_trace, b'"')
    out.append(b"}}")
    source_ip = client.partition(b":")[0] if client != b"-" else None
    target_ip = target.partition(b":")[0] if target != b"-" else None
    related = None
    if source_ip and target_ip and source_ip != target_ip:
        out += (b',"related":{"ip":["', source_ip, b'","', target_ip, b'"]}')
        related = [source_ip.decode(), target_ip.decode()]
    elif only := source_ip or target_ip:
        out += (b',"related":{"ip":["', only, b'"]}')
        related = [only.decode()]
    out += (tail[1], tail[2])
    source = source_ip.decode() if source_ip else None
    return b"".join(out), Columns(ts.decode(), source, None, related, None, ingested)


def map_stream(stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
    """Records as `LineFormat.records` gives them, except that the lines mapped here come as
    (position, Event): finished, finalized documents as JSON bytes."""
    from siem.pipeline import Event  # the pipeline imports the formats, which offer this path

    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    tail = envelope(ctx, DATASET)
    prefix = ctx.id_prefix + "-"
    fast = reference = 0
    for chunk in chunks(stream, limit):
        if isinstance(chunk, BadRecord):
            yield chunk
            continue
        for line, off in numbered_lines(chunk, _PLAIN):
            mapped = None
            if line and line[:1] in b"hgw" and len(line) <= limit and b"\x01" not in line:
                mapped = map_line(line, tail, ctx.ingested)
            if mapped is not None:
                fast += 1
                doc, columns = mapped
                yield off, Event(prefix + str(off), DATASET, None, doc + str(off).encode() + b"}}", columns)
            elif line:  # an empty piece is a blank line or the end of the chunk: no record
                for item in reference_lines(chunk, [off], limit):
                    reference += not isinstance(item, BadRecord)
                    yield item
        STATS[DATASET + ".fast"] += fast
        STATS[DATASET + ".reference"] += reference
        fast = reference = 0
