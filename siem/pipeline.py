"""source → format → normalize → sink, with counters and a dead-letter path for everything bad.

Nothing is dropped silently: a bad record, a failed object and a document the store rejects each
become a DeadLetter with its position and reason, and the RunSummary counts them.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import orjson

from siem import formats, limits
from siem.columns import Columns, columns_of
from siem.formats.base import BadRecord, LogType, ParseOptions, Skipped, UnknownFormatError
from siem.formats.decompress import open_decompressed
from siem.formats.routing import Router
from siem.gc_batch import batch_gc
from siem.normalize import ObjectContext, finalized, utc_now_iso
from siem.sources import SourceObject, aws_key_context
from siem.write_behind import WriteBehind

RAW_LIMIT = 16 * 1024  # dead letters keep this much of the raw record


class Event:
    """One mapped event, serialised once: `raw` is the document as JSON bytes, which sinks write as
    they are, next to its `columns`. A batch fast path (siem/fast/) gives only `raw` and the columns,
    and `doc` is decoded from the bytes only if something asks for it; the reference path gives
    `doc` and `raw` (finalize's value check serialised the document anyway), its columns read from
    `doc`. `raw` stays the event's serialisation: a consumer must not change a raw event's `doc`."""

    __slots__ = ("_columns", "_doc", "dataset", "id", "raw")

    def __init__(
        self,
        id: str,
        dataset: str,
        doc: dict[str, Any] | None = None,
        raw: bytes | None = None,
        columns: Columns | None = None,
    ) -> None:
        self.id = id
        self.dataset = dataset
        self._doc = doc
        self.raw = raw
        self._columns = columns

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            self._doc = orjson.loads(self.raw or b"{}")
        return self._doc

    @doc.setter
    def doc(self, value: dict[str, Any]) -> None:
        self._doc, self.raw, self._columns = value, None, None

    @property
    def columns(self) -> Columns:
        return self._columns if self._columns is not None else columns_of(self.doc)

    def compact(self) -> None:
        """Keep only the bytes and the columns of a serialised event: a batch waiting for its write
        then holds ~2 KB an event instead of a tree of ~150 dicts and lists (memory, and objects the
        collector would walk); `doc` is decoded again only if something asks for it."""
        if self.raw is not None and self._doc is not None:
            self._columns = self.columns
            self._doc = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.id, self.dataset, self.doc) == (other.id, other.dataset, other.doc)

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, dataset={self.dataset!r}, doc={self.doc!r})"


@dataclass(slots=True)
class DeadLetter:
    """A record or object we could not turn into an indexed event, with why and where."""

    path: str
    offset: int
    stage: str  # object | frame | map | index
    reason: str
    dataset: str | None = None
    raw: str = ""
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sink(Protocol):
    """Where a run writes. A sink with ``concurrent = True`` is written on a thread of its own while
    the next batch is parsed (``write_behind``)."""

    def write(self, events: list[Event]) -> list[DeadLetter]:
        """Write a batch; returns the events the destination rejected, as dead letters."""
        ...

    def write_dead_letters(self, letters: list[DeadLetter]) -> None: ...


@dataclass(slots=True)
class ObjectOutcome:
    """What one object gave; handed to the ledger once its events and dead letters are in the store."""

    obj: SourceObject
    events: int = 0
    dead_letters: int = 0
    failed: bool = False

    def count_letter(self, letter: DeadLetter, summary: RunSummary) -> None:
        """One of the object's dead letters: a failure of the whole object, or one more record."""
        self.dead_letters += 1
        if letter.stage == "object":
            self.failed = True
            summary.errors.append(letter.reason)
        else:
            summary.records += 1


@dataclass
class RunSummary:
    objects: int = 0
    objects_failed: int = 0
    objects_skipped: int = 0  # unchanged since the ledger recorded them done: not read again
    records: int = 0
    events: int = 0
    written: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    # events indexed with an app-mapped field absent or malformed (listed in the event's siem.unmapped)
    fields_unmapped: int = 0
    by_dataset: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, other: RunSummary) -> None:
        """Fold another run's counts into this one (a worker's total over many batches)."""
        counters = ("objects", "objects_failed", "objects_skipped", "records", "events", "written", "skipped")
        for name in (*counters, "dead_lettered", "fields_unmapped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_dataset.update(other.by_dataset)
        self.errors.extend(other.errors)

    @property
    def ok(self) -> bool:
        return self.objects_failed == 0 and self.dead_lettered == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_dataset"] = dict(self.by_dataset)
        data["errors"] = self.errors[:50]
        return data

    def render(self) -> str:
        datasets = ", ".join(f"{k}={v}" for k, v in sorted(self.by_dataset.items())) or "none"
        skipped = f"; {self.objects_skipped} skipped (already loaded, unchanged)" if self.objects_skipped else ""
        lines = [
            f"objects: {self.objects} ({self.objects_failed} failed){skipped}",
            f"records: {self.records}  events: {self.events}  written: {self.written}  "
            f"skipped: {self.skipped}  dead-lettered: {self.dead_lettered}"
            + (f"  fields unmapped: {self.fields_unmapped}" if self.fields_unmapped else ""),
            f"by dataset: {datasets}",
        ]
        lines += [f"error: {e}" for e in self.errors[:20]]
        if len(self.errors) > 20:
            lines.append(f"... and {len(self.errors) - 20} more errors")
        return "\n".join(lines)


def has_unmapped(event: Event) -> bool:
    """Does the event list app fields it could not map (``siem.unmapped``)? A pre-serialised event is
    decoded only if its bytes could hold that key: decoding every fast-path event again would cost
    more than mapping it did."""
    if event.raw is not None and b'"unmapped"' not in event.raw:
        return False
    return bool(event.doc.get("siem", {}).get("unmapped"))


def _raw_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw[:RAW_LIMIT].decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw[:RAW_LIMIT]
    return repr(raw)[:RAW_LIMIT]


def parse_object(
    obj: SourceObject,
    router: Router,
    options: ParseOptions,
    forced: LogType | None = None,
    ingested: str | None = None,
) -> Iterator[Event | DeadLetter | Skipped]:
    """Every event of one object; failures become DeadLetters and iteration carries on."""
    account, region = aws_key_context(obj.path)
    ctx = ObjectContext(obj.path, obj.identity, account, region, ingested or utc_now_iso())
    options = replace(options, extra={**options.extra, "object_path": obj.path})  # app routes match on the key
    position = -1
    log_type: LogType | None = forced
    stream: Any = None
    dataset: str | None = None
    try:
        raw_stream = obj.open()
        try:
            stream, head = open_decompressed(
                raw_stream, options.max_record_bytes, options.max_inflated_bytes, options.max_inflate_ratio
            )
            oversized: list[BadRecord] = getattr(stream, "oversized", [])
            if not head:
                return
            if log_type is None:
                log_type = router.choose(obj.path, head)
            dataset = log_type.dataset
            to_ecs = log_type.to_ecs
            enrich = options.enrich
            # a batch fast path (siem/fast/) when the log type has one; enrichment needs dicts
            batch = getattr(log_type, "batch_mapper", None) if enrich is None else None
            records = batch(stream, options, ctx) if batch is not None else log_type.records(stream, options)
            for item in records:
                while oversized:  # records framing skipped for their length (iter_lines)
                    bad = oversized.pop(0)
                    yield DeadLetter(obj.path, bad.offset, "frame", bad.reason, dataset, _raw_text(bad.raw))
                if isinstance(item, BadRecord):
                    yield DeadLetter(obj.path, item.offset, "frame", item.reason, dataset, _raw_text(item.raw))
                    continue
                if isinstance(item, Skipped):
                    yield item
                    continue
                position, raw = item
                if type(raw) is Event:  # mapped and finalized by the fast path
                    yield raw
                    continue
                try:
                    doc = to_ecs(raw, options)
                except Exception as exc:  # one bad record must not stop the object
                    reason = str(exc) or type(exc).__name__
                    if not isinstance(exc, ValueError):
                        reason = f"{type(exc).__name__}: {reason}"
                    yield DeadLetter(obj.path, position, "map", reason, dataset, _raw_text(raw))
                    continue
                if doc is None:
                    yield Skipped(position, "record carries no event")
                    continue
                doc_id, doc, raw = finalized(doc, dataset, ctx, position)
                if enrich is not None:
                    enrich(doc)
                    raw = None  # the bytes were of the document before enrichment
                yield Event(doc_id, doc["event"]["dataset"], doc, raw)
            while oversized:
                bad = oversized.pop(0)
                yield DeadLetter(obj.path, bad.offset, "frame", bad.reason, dataset, _raw_text(bad.raw))
        finally:
            raw_stream.close()
    except UnknownFormatError as exc:
        yield DeadLetter(obj.path, 0, "object", str(exc))
    except (OSError, EOFError, zlib.error) as exc:
        for bad in getattr(stream, "oversized", ()) if stream is not None else ():
            yield DeadLetter(obj.path, bad.offset, "frame", bad.reason, dataset, _raw_text(bad.raw))
        where = f"after offset {position}" if position >= 0 else "before the first record"
        yield DeadLetter(
            obj.path,
            max(position, 0),
            "object",
            f"{obj.path}: unreadable {where}: {type(exc).__name__}: {exc}",
            log_type.dataset if log_type else None,
        )


@batch_gc()
def run(
    objects: Iterable[SourceObject],
    sink: Sink,
    router: Router | None = None,
    options: ParseOptions | None = None,
    dataset: str | None = None,
    batch_size: int = 2000,
    summary: RunSummary | None = None,
    committed: Callable[[list[ObjectOutcome]], None] | None = None,
    commit_seconds: float | None = None,
) -> RunSummary:
    """Load objects into a sink; the summary says what happened to every record.

    summary: filled as the run goes (a progress display reads it). committed: called with the objects
    finished so far each time everything they gave is in the sink (the ledger); commit_seconds: at an
    object's end, write what is pending when the last write is at least this old, so a long run of
    small objects records them as it goes, not only when a batch fills. A ``concurrent`` sink is
    written behind the parsing (``siem/write_behind.py``): a bulk request or a DuckDB insert is in
    flight while the next batch is parsed."""
    router = router or Router()
    options = options or ParseOptions()
    forced = formats.get(dataset) if dataset else None
    summary = summary if summary is not None else RunSummary()
    counting = threading.Lock()  # the writing thread counts rejections while this one counts letters
    finished: list[ObjectOutcome] = []
    last_commit = time.monotonic()
    batch: list[Event] = []
    letters: list[DeadLetter] = []
    letter_bytes = 0

    def store(work: tuple[list[Event], list[DeadLetter], list[ObjectOutcome]]) -> None:
        events, pending, done = work
        if events:
            rejected = sink.write(events)
            with counting:
                summary.written += len(events) - len(rejected)
                summary.dead_lettered += len(rejected)
            pending = pending + rejected
        if pending:
            sink.write_dead_letters(pending)
        if committed is not None and done:
            committed(done)

    writer = WriteBehind(store) if getattr(sink, "concurrent", False) else None

    def flush() -> None:
        nonlocal batch, letters, finished, letter_bytes, last_commit
        work = (batch, letters, finished)
        batch, letters, finished, letter_bytes = [], [], [], 0
        last_commit = time.monotonic()
        if writer is not None:
            writer.hand_over(work)
        else:
            store(work)

    try:
        for obj in objects:
            summary.objects += 1
            outcome = ObjectOutcome(obj)
            for item in parse_object(obj, router, options, forced):
                if isinstance(item, Event):
                    outcome.events += 1
                    summary.records += 1
                    summary.events += 1
                    summary.by_dataset[item.dataset] += 1
                    if has_unmapped(item):
                        summary.fields_unmapped += 1
                    item.compact()
                    batch.append(item)
                    if len(batch) >= batch_size:
                        flush()
                elif isinstance(item, Skipped):
                    summary.records += 1
                    summary.skipped += 1
                else:
                    letters.append(item)
                    letter_bytes += len(item.raw) + len(item.reason) + len(item.path) + 200
                    with counting:
                        summary.dead_lettered += 1
                    if len(letters) >= limits.MAX_PENDING_LETTERS or letter_bytes >= limits.MAX_PENDING_LETTER_BYTES:
                        flush()  # dead letters are written as they come, not held for the whole run
                    outcome.count_letter(item, summary)
            if outcome.failed:
                summary.objects_failed += 1
            if committed is not None:
                finished.append(outcome)
                if commit_seconds is not None and time.monotonic() - last_commit >= commit_seconds:
                    flush()
        flush()
    except BaseException:
        if writer is not None:
            writer.close(abandon=True)
        raise
    if writer is not None:
        writer.close()
    return summary
