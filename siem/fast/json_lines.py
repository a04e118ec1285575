"""Chunked framing for the JSON-lines fast paths: `JsonLinesFormat.records`, a chunk at a time.

Every line is parsed once, with orjson, as the reference parses it. A line whose object the log type's
mapper can prove it maps exactly becomes a finished event (one `orjson.dumps` plus the log member;
members many documents share are serialised once, by `shared`);
any other object is handed back as the reference would have yielded it — the same `(offset, dict)`,
already parsed — and a line that is not a JSON object (invalid JSON, a scalar, an over-long line) goes
through `_reference_record`, which reproduces `iter_lines` + `JsonLinesFormat.records` for it: same
offset, same skipped blank lines, same `BadRecord` reason and raw bytes. Trailing CRs need no special
case: they are JSON whitespace, so `orjson.loads` gives the same object with or without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson

from siem import limits
from siem.columns import columns_of
from siem.fast.chunks import STATS, Chunk, chunks, framed_line
from siem.fast.envelope import envelope
from siem.formats.base import BadRecord, Record
from siem.normalize import ObjectContext

# A log type's mapper: the finalized document of one parsed record (log.* aside; members may be
# `shared` fragments), or None when it cannot prove it maps the record exactly as `to_ecs` +
# `finalize`. It must not change the record, which the reference then maps.
Mapper = Callable[[dict[str, Any]], dict[str, Any] | None]


def shared(value: Any) -> Any:
    """``value`` serialised once, as an `orjson.Fragment` the documents that share it copy; the value
    itself when it holds an integer past 2**53, which the document's strict serialisation must see."""
    try:
        return orjson.Fragment(orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER))
    except TypeError:
        return value


def cached_event(event: dict[str, Any], dataset: str, ctx: ObjectContext, cache: dict[Any, Any], key: Any) -> Any:
    """A record's event member as finalize completes it (dataset, ingested), serialised once and kept
    in ``cache`` under ``key``: records of one object share a few such members. At most 1024 are kept,
    so a stream of distinct keys costs no memory."""
    event["dataset"] = dataset
    event["ingested"] = ctx.ingested
    member = shared(event)
    if len(cache) < 1024:
        cache[key] = member
    return member


def map_stream(stream: BinaryIO, ctx: ObjectContext, dataset: str, mapper: Mapper) -> Iterator[Record | BadRecord]:
    """What `JsonLinesFormat.records` yields for the stream, except that the objects ``mapper`` maps
    come as (offset, Event) holding the finished document as JSON bytes."""
    from siem.pipeline import Event  # the pipeline imports the formats, which offer this path

    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    log = envelope(ctx, dataset)[2]  # the log member up to its offset's value
    prefix = ctx.id_prefix + "-"
    loads, dumps, strict = orjson.loads, orjson.dumps, orjson.OPT_STRICT_INTEGER
    for chunk in chunks(stream, limit):
        if isinstance(chunk, BadRecord):
            yield chunk
            continue
        fast = reference = 0
        end = chunk.base
        for line in chunk.data.split(b"\n"):
            offset = end
            end += len(line) + 1
            if not line:  # a blank line, or the end of the chunk
                continue
            try:
                obj = loads(line) if len(line) <= limit else None
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is not dict:  # left to the reference framing: its dead letter, or a skipped blank line
                item = _reference_record(chunk, offset, limit)
                if item is not None:
                    reference += not isinstance(item, BadRecord)
                    yield item
                continue
            try:
                doc = mapper(obj)
            except Exception:  # whatever went wrong, the reference makes the record's document or dead letter
                doc = None
            if doc is not None:
                try:  # an integer past 2**53 makes finalize walk the event for 64-bit bounds: its call
                    body = dumps(doc, option=strict)
                except TypeError:
                    body = None
                if body is not None:
                    fast += 1
                    number = str(offset)
                    raw = body[:-1] + log + number.encode() + b"}}"
                    yield offset, Event(prefix + number, dataset, None, raw, columns_of(doc, ctx.ingested))
                    continue
            reference += 1
            yield offset, obj
        STATS[dataset + ".fast"] += fast
        STATS[dataset + ".reference"] += reference


def _reference_record(chunk: Chunk, offset: int, limit: int) -> Record | BadRecord | None:
    """The line at ``offset`` as `iter_lines` + `JsonLinesFormat.records` give it (None: a blank line)."""
    line = framed_line(chunk, offset, limit)
    if not isinstance(line, bytes):
        return line
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return BadRecord(offset, f"invalid JSON: {exc}", line)
    if not isinstance(obj, dict):
        return BadRecord(offset, f"expected a JSON object, got {type(obj).__name__}", line)
    return offset, obj
