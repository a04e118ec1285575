"""CloudWatch Logs subscription payloads, and the log events inside them routed to their own type.

A subscription filter delivers ``{"messageType":"DATA_MESSAGE","logGroup",...,"logEvents":[...]}``
documents; Firehose writes them to S3 back to back (no separator, or one per line), and Lambda
or Kinesis consumers see them base64+gzip inside ``awslogs.data`` / ``Records[].kinesis.data`` /
``records[].data``. Each log event's message is mapped by the log type it really is (an EKS
audit Event, a VPC flow log line), so it lands in the same fields as the same log read from
anywhere else; only messages of unknown shape stay ``aws.cloudwatch_logs``.

Payload reference: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, BinaryIO

import orjson

from siem import formats, limits
from siem.formats._json_payload import strings
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, oversized_record
from siem.normalize import iso_utc

_CHUNK = 1 << 20
_LOOKAHEAD = 64  # bytes after a boundary needed to judge whether a new document starts there
_MAX_INFLATED = 64 << 20  # one base64 payload: CloudWatch caps a batch at 1 MB, Kinesis/Lambda at 6 MB
_MAX_DEPTH = 3
# '}' then '{' (concatenated documents) or a '{' at the start of a line (a document after a broken one).
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*\{|\n\{")
_LINE_OPEN = re.compile(rb"\n\{")
_LINE_CLOSE = re.compile(rb"\}[ \t\r]*\n(?![ \t\r\n}\],])")  # a '}' closing a line, next line not indented
_MAX_CLOSE_TRIES = 16
_WHITESPACE = frozenset(b" \t\r\n")
_ENVELOPE_START = re.compile(
    rb'\{\s*"(?:messageType|owner|logGroup|awslogs|Records|invocationId|deliveryStreamArn|records)"\s*:'
)
_ENVELOPE_SNIFF = re.compile(
    rb'^\s*\{\s*"(?:messageType"\s*:\s*"(?:DATA|CONTROL)_MESSAGE"|awslogs"\s*:\s*\{\s*"data"\s*:)'
)
_EKS_GROUP = re.compile(r"^/aws/eks/([^/]+)/cluster$")
_FLOW_PREFIX = re.compile(r"^\d{1,2} \S")  # a flow log line starts with its version number
# Envelope fields kept under aws.cloudwatch.* with every log event.
_ENVELOPE_FIELDS = (("logGroup", "log_group"), ("logStream", "log_stream"), ("owner", "owner"))
_AUDIT_HINT = '"auditID"'
_TRAIL_HINT = '"eventVersion"'


def _next_start(buf: bytearray, pos: int, resync: re.Pattern[bytes] | None) -> int:
    """Where the next document may start at or after pos: a '{' opening a line or matching resync; -1 if none."""
    found = [m.start() + 1 for m in (_LINE_OPEN.search(buf, pos - 1 if pos else 0),) if m is not None]
    if resync is not None:
        m = resync.search(buf, pos)
        if m is not None:
            found.append(m.start())
    return min(found) if found else -1


def _leading_document(buf: bytearray, start: int, limit: int) -> tuple[Any, int] | None:
    """A complete document at start that ends a line and is followed by no document boundary
    (junk instead), as (value, end offset): tried at the first few line-ending '}' only."""
    for attempts, match in enumerate(_LINE_CLOSE.finditer(buf, start, start + limit)):
        if attempts >= _MAX_CLOSE_TRIES:
            break
        try:
            return orjson.loads(bytes(buf[start : match.start() + 1])), match.end()
        except orjson.JSONDecodeError:
            continue
    return None


def iter_json_documents(
    chunks: Iterable[bytes], resync: re.Pattern[bytes] | None, base: int = 0, limit: int = limits.MAX_DOCUMENT_BYTES
) -> Iterator[tuple[int, Any] | BadRecord]:
    """(byte offset, value) of each JSON document in a stream of documents written back to back.

    Documents may be separated by nothing, newlines or indentation. A broken document becomes a
    BadRecord and reading resumes at the next '{' that opens a line or that ``resync`` matches
    (the first key its writer always puts first) — in valid JSON neither can occur inside a
    string, so a valid document is never cut. Memory is one document plus one chunk, and a
    document longer than ``limit`` bytes is skipped up to the next document start (bounded
    memory) and becomes a BadRecord with its length.
    """
    source = iter(chunks)
    buf = bytearray()
    start = scan = 0
    eof = False
    while True:
        if len(buf) - start > limit:
            leading = _leading_document(buf, start, limit)
            if leading is not None:  # a whole document, then junk with no boundary: keep the document
                value, end = leading
                yield base + start, value
                start = scan = end
                continue
            head = bytes(buf[start : start + limits.RAW_LIMIT])
            first = base + start
            pos = start + 1
            while True:
                nxt = _next_start(buf, pos, resync)
                if nxt >= 0 or eof:
                    break
                keep = max(len(buf) - _LOOKAHEAD, pos)
                del buf[:keep]
                base += keep
                pos, start, scan = 0, 0, 0
                chunk = next(source, b"")
                if not chunk:
                    eof = True
                buf += chunk
            end = base + (nxt if nxt >= 0 else len(buf))
            yield oversized_record(first, end - first, limit, head)
            if nxt < 0:
                return
            start = scan = nxt
            continue
        match = _BOUNDARY.search(buf, scan)
        if match is not None and (eof or match.end() + _LOOKAHEAD <= len(buf)):
            nxt = match.end() - 1
            closed = buf[match.start()] == 0x7D  # '}'
            end = match.start() + 1 if closed else match.start()
            candidate = bytes(buf[start:end])
            error = "document does not end with '}'"
            if closed:
                try:
                    value = orjson.loads(candidate)
                except orjson.JSONDecodeError as exc:
                    error = f"invalid JSON: {exc}"
                else:
                    yield base + start, value
                    start = scan = nxt
                    continue
            if buf[nxt - 1] == 0x0A or (resync is not None and resync.match(buf, nxt)):
                if candidate.strip():
                    yield BadRecord(base + start, error, candidate)
                start = scan = nxt
            else:
                scan = match.start() + 1
            continue
        if eof:
            break
        if match is not None:
            scan = match.start()
        else:  # a boundary may straddle the next chunk: rescan from the last non-blank byte
            last = len(buf)
            while last > scan and buf[last - 1] in _WHITESPACE:
                last -= 1
            scan = max(scan, last - 1)
        chunk = next(source, b"")
        if not chunk:
            eof = True
            continue
        if start:
            del buf[:start]
            base += start
            scan -= start
            start = 0
        buf += chunk
    tail = bytes(buf[start:])
    if tail.strip():
        try:
            yield base + start, orjson.loads(tail)
        except orjson.JSONDecodeError as exc:
            yield BadRecord(base + start, f"invalid JSON: {exc}", tail)


def _inflate(data: bytes) -> bytes:
    """gzip (one or more members) or zlib, capped: one payload must not exhaust memory."""
    out: list[bytes] = []
    total = 0
    while data:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # auto-detects the gzip or zlib header
        try:
            chunk = inflater.decompress(data, _MAX_INFLATED - total + 1)
        except zlib.error as exc:
            raise RecordError(f"corrupt compressed payload: {exc}") from None
        total += len(chunk)
        if total > _MAX_INFLATED or inflater.unconsumed_tail:
            raise RecordError(f"payload inflates beyond {_MAX_INFLATED} bytes")
        if not inflater.eof:
            raise RecordError("truncated compressed payload")
        out.append(chunk)
        data = inflater.unused_data.lstrip(b"\0")
    return b"".join(out)


def _decode_payload(data: Any) -> bytes:
    if not isinstance(data, str):
        raise RecordError(f"payload data is a JSON {type(data).__name__}, not a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"payload data is not base64: {exc}") from None
    if raw[:2] == b"\x1f\x8b" or raw[:1] == b"\x78":
        return _inflate(raw)
    return raw


def _epoch_ms(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 253402300800000:
        return None
    seconds, millis = divmod(value, 1000)
    return iso_utc(datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000))


class CloudWatchLogsLogType:
    dataset = "aws.cloudwatch_logs"
    description = "CloudWatch Logs subscription payloads (Firehose to S3, Lambda/Kinesis event envelopes)"
    key_pattern = None  # Firehose's S3 prefix is whatever the delivery stream was given

    def sniff(self, head: bytes) -> bool:
        if _ENVELOPE_SNIFF.match(head):
            return True
        stripped = head.lstrip()
        if not stripped.startswith(b"{"):
            return False
        # Lambda test/replay events: Kinesis records or a Firehose transformation event.
        if b'"Records"' in stripped and b'"kinesis"' in stripped and b'"aws:kinesis"' in stripped:
            return True
        return b'"deliveryStreamArn"' in stripped and b'"records"' in stripped and b'"recordId"' in stripped

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        """One record per log event; its position is a running count of log events in the object."""
        index = 0
        chunks = iter(partial(stream.read, _CHUNK), b"")
        documents = iter_json_documents(chunks, _ENVELOPE_START, limit=options.max_document_bytes)
        for item in documents:
            if isinstance(item, BadRecord):
                yield BadRecord(index, f"document at byte {item.offset}: {item.reason}", item.raw)
                continue
            offset, document = item
            for out in self._expand(document, f"document at byte {offset}", {}, 0):
                if isinstance(out, dict):
                    yield index, out
                    index += 1
                elif isinstance(out, Skipped):
                    yield Skipped(index, out.reason)
                else:
                    yield BadRecord(index, out.reason, out.raw)

    def _expand(
        self, document: Any, where: str, context: dict[str, Any], depth: int
    ) -> Iterator[dict[str, Any] | BadRecord | Skipped]:
        """Log events (as raw records) of one decoded document, whichever envelope carries them."""
        if not isinstance(document, dict):
            yield BadRecord(0, f"{where}: a JSON {type(document).__name__}, not an object", _raw(document))
            return
        if "messageType" in document or "logEvents" in document:
            yield from _log_events(document, where, context)
            return
        if depth >= _MAX_DEPTH:
            yield BadRecord(0, f"{where}: envelopes nested too deep", _raw(document))
            return
        awslogs = document.get("awslogs")
        if isinstance(awslogs, dict):
            yield from self._payload(awslogs.get("data"), f"{where} awslogs.data", context, depth)
            return
        kinesis_records = document.get("Records")
        if isinstance(kinesis_records, list):
            for i, record in enumerate(kinesis_records):
                kinesis = record.get("kinesis") if isinstance(record, dict) else None
                if not isinstance(kinesis, dict):
                    yield BadRecord(0, f"{where} Records[{i}]: no kinesis.data", _raw(record))
                    continue
                inner = {**context, "region": record.get("awsRegion") or context.get("region")}
                yield from self._payload(kinesis.get("data"), f"{where} Records[{i}]", inner, depth)
            return
        firehose_records = document.get("records")
        if isinstance(firehose_records, list):
            inner = {**context, "region": document.get("region") or context.get("region")}
            for i, record in enumerate(firehose_records):
                data = record.get("data") if isinstance(record, dict) else None
                yield from self._payload(data, f"{where} records[{i}]", inner, depth)
            return
        keys = ", ".join(sorted(map(str, document))[:8])
        yield BadRecord(0, f"{where}: not a CloudWatch Logs payload (keys: {keys})", _raw(document))

    def _payload(
        self, data: Any, where: str, context: dict[str, Any], depth: int
    ) -> Iterator[dict[str, Any] | BadRecord | Skipped]:
        try:
            decoded = _decode_payload(data)
        except RecordError as exc:
            yield BadRecord(0, f"{where}: {exc}", _raw(data))
            return
        if not decoded.lstrip().startswith(b"{"):
            yield BadRecord(0, f"{where}: data is not a CloudWatch Logs payload", decoded)
            return
        for item in iter_json_documents([decoded], _ENVELOPE_START):
            if isinstance(item, BadRecord):
                yield BadRecord(0, f"{where}: {item.reason}", item.raw)
            else:
                yield from self._expand(item[1], where, context, depth + 1)

    def to_ecs(self, raw: Any, options: ParseOptions) -> dict[str, Any] | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("logEvent"), dict):
            raise RecordError("log event is not a JSON object")
        log_event = raw["logEvent"]
        message = log_event.get("message")
        if not isinstance(message, str):
            raise RecordError(f"log event message is a JSON {type(message).__name__}, not a string")
        group = raw.get("logGroup") if isinstance(raw.get("logGroup"), str) else None
        received = _epoch_ms(log_event.get("timestamp"))
        routed = _route(message, options)
        if routed is None:
            return None
        doc, dataset = routed
        if "@timestamp" not in doc:
            if received is None:
                raise RecordError(f"log event has no valid epoch-millisecond timestamp: {log_event.get('timestamp')!r}")
            doc["@timestamp"] = received
        if dataset == self.dataset:
            doc["message"] = message.rstrip("\r\n")
            if isinstance(log_event.get("id"), str):
                doc["event"]["id"] = log_event["id"]
        doc.setdefault("event", {})["dataset"] = dataset
        cloudwatch: dict[str, Any] = strings(raw, _ENVELOPE_FIELDS)
        if isinstance(log_event.get("id"), str):
            cloudwatch["id"] = log_event["id"]
        if received is not None:
            cloudwatch["timestamp"] = received
        filters = raw.get("subscriptionFilters")
        if isinstance(filters, list) and (names := [f for f in filters if isinstance(f, str)]):
            cloudwatch["subscription_filters"] = names
        doc.setdefault("aws", {})["cloudwatch"] = cloudwatch
        cloud = doc.setdefault("cloud", {})
        cloud.setdefault("provider", "aws")
        owner = raw.get("owner")
        if isinstance(owner, str) and len(owner) == 12 and owner.isdigit():
            cloud.setdefault("account", {}).setdefault("id", owner)
        region = raw.get("region")
        if isinstance(region, str) and region:
            cloud.setdefault("region", region)
        eks = _EKS_GROUP.match(group or "")
        if eks:
            orchestrator = doc.setdefault("orchestrator", {})
            orchestrator.setdefault("type", "kubernetes")
            orchestrator.setdefault("cluster", {})["name"] = eks.group(1)
        return doc


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()


def _log_events(document: dict[str, Any], where: str, context: dict[str, Any]) -> Iterator[Any]:
    kind = document.get("messageType", "DATA_MESSAGE")
    if kind == "CONTROL_MESSAGE":
        yield Skipped(0, f"{where}: CloudWatch Logs CONTROL_MESSAGE (subscription check)")
        return
    if kind != "DATA_MESSAGE":
        yield BadRecord(0, f"{where}: unknown messageType {str(kind)[:40]!r}", _raw(document))
        return
    events = document.get("logEvents")
    if not isinstance(events, list):
        yield BadRecord(0, f"{where}: logEvents is not a list", _raw(document))
        return
    envelope = {key: document.get(key) for key in ("owner", "logGroup", "logStream", "subscriptionFilters")}
    if context.get("region"):
        envelope["region"] = context["region"]
    for log_event in events:
        yield {**envelope, "logEvent": log_event}


def _route(message: str, options: ParseOptions) -> tuple[dict[str, Any], str] | None:
    """The document of the inner log type that this message is, and its dataset."""
    if message.lstrip().startswith("{"):
        inner = _json_message(message)
        if inner is not None:
            dataset, obj = inner
            log_type = formats.get(dataset)
            doc = log_type.to_ecs(obj, options)
            return (doc, dataset) if doc is not None else None
    elif _FLOW_PREFIX.match(message):
        # Header-less flow log lines: the vpcflow type knows the layouts it can read by field count.
        flow = formats.registry().get("aws.vpcflow")
        if flow is not None and flow.sniff(message.encode()):
            doc = flow.to_ecs(message.strip(), options)
            return (doc, flow.dataset) if doc is not None else None
    return {"event": {"kind": "event"}}, CloudWatchLogsLogType.dataset


def _json_message(message: str) -> tuple[str, dict[str, Any]] | None:
    """(dataset, parsed record) for a JSON message of a known type: EKS audit or CloudTrail.

    The substring checks keep other JSON messages (structured application logs) from being parsed.
    """
    audit = _AUDIT_HINT in message
    trail = not audit and _TRAIL_HINT in message and '"eventSource"' in message
    if not (audit or trail):
        return None
    try:
        obj = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    registry = formats.registry()
    if audit and "kubernetes.audit" in registry and registry["kubernetes.audit"].accepts(obj):  # type: ignore[attr-defined]
        return "kubernetes.audit", obj
    if trail and "aws.cloudtrail" in registry and isinstance(obj, dict) and isinstance(obj.get("eventName"), str):
        return "aws.cloudtrail", obj
    return None


LOG_TYPE = CloudWatchLogsLogType()
