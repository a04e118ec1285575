"""The contract every log type implements, and the shared framing helpers.

A log type turns one decompressed byte stream into records (framing + parsing) and each record
into an ECS document. Keeping the two steps apart lets a framing error (a truncated JSON line)
and a mapping error (a field of the wrong type) both land in the dead-letter place with the
record's position, while the rest of the object carries on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import orjson

from siem import limits

log = logging.getLogger(__name__)


class RecordError(ValueError):
    """A record that cannot be mapped; the message is the dead-letter reason."""


class UnknownFormatError(ValueError):
    """No log type recognises an object; the message names the object."""


@dataclass(slots=True)
class BadRecord:
    """A record that failed framing; it is dead-lettered, never dropped."""

    offset: int
    reason: str
    raw: bytes


@dataclass(slots=True)
class Skipped:
    """A record that is valid but carries no event (a digest file, a header, a NODATA line)."""

    offset: int
    reason: str


@dataclass(slots=True)
class ParseOptions:
    """Per-run knobs that change how records are read (see config.py for where they come from)."""

    # Year for timestamps that carry none (RFC 3164 syslog); None means "the current year, or the
    # previous one when that would put the event in the future".
    syslog_year: int | None = None
    # Timezone for timestamps that carry none, as an IANA name or a fixed offset like "+09:00".
    syslog_timezone: str = "UTC"
    # Proxies whose X-Forwarded-For we believe (CIDRs): walking the chain from the right, the first
    # address that is not a trusted proxy is the client. Empty: loopback and private ranges are trusted.
    trusted_proxies: tuple[str, ...] = ()
    # Hostile-input bounds (siem/limits.py): a longer record is skipped and dead-lettered; an object
    # inflating past max_inflated_bytes, or past max_inflate_ratio once beyond 512 MiB, fails.
    max_record_bytes: int = limits.MAX_RECORD_BYTES
    max_document_bytes: int = limits.MAX_DOCUMENT_BYTES
    max_inflated_bytes: int = limits.MAX_INFLATED_BYTES
    max_inflate_ratio: int = limits.MAX_INFLATE_RATIO
    extra: dict[str, Any] = field(default_factory=dict)
    # Load-time enrichment applied to every finished event in place (siem/enrich/geoip.py), or None.
    enrich: Callable[[dict[str, Any]], None] | None = None


Record = tuple[int, Any]
"""(position, raw): the byte offset of a line, or the index of a record inside a document."""


class LogType(Protocol):
    """One log type: one file in siem/formats/, registered by its module-level LOG_TYPE."""

    dataset: str
    description: str
    # Regex on an S3 key (or local path) in the producer's default layout; None if it has none.
    key_pattern: re.Pattern[str] | None

    def sniff(self, head: bytes) -> bool:
        """Whether the first bytes of a decompressed object look like this type."""
        ...

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        """Frame and parse the stream; never raise for one bad record."""
        ...

    def to_ecs(self, raw: Any, options: ParseOptions) -> dict[str, Any] | None:
        """Map one parsed record to an ECS document (None: the record carries no event)."""
        ...


_SKIP_CHUNK = 1 << 20


def oversized_record(offset: int, length: int, limit: int, head: bytes) -> BadRecord:
    return BadRecord(offset, f"record of {length} bytes exceeds the {limit}-byte record limit: skipped", head)


def iter_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Non-empty lines with their byte offsets, line endings stripped.

    A line longer than the stream's ``max_record_bytes`` (limits.MAX_RECORD_BYTES for a plain
    stream) is read past in bounded chunks, never held whole, and reported as a BadRecord on the
    stream's ``oversized`` list, which the pipeline turns into dead letters (see decompress.py).
    """
    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    oversized: list[BadRecord] | None = getattr(stream, "oversized", None)
    readline = stream.readline
    offset = 0
    while True:
        line = readline(limit + 1)
        if not line:
            return
        start = offset
        offset += len(line)
        if len(line) > limit and line[-1:] != b"\n":
            head = line[: limits.RAW_LIMIT]
            del line
            while True:
                rest = readline(_SKIP_CHUNK)
                offset += len(rest)
                if not rest or rest[-1:] == b"\n":
                    break
            bad = oversized_record(start, offset - start, limit, head)
            if oversized is None:
                log.warning("%s (no dead-letter channel on this stream)", bad.reason)
            else:
                oversized.append(bad)
            continue
        stripped = line.rstrip(b"\r\n")
        if stripped.strip():
            yield start, stripped


class LineFormat:
    """Base for one-record-per-line text formats: records are the decoded lines."""

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        for offset, line in iter_lines(stream):
            try:
                yield offset, line.decode("utf-8")
            except UnicodeDecodeError:
                yield offset, line.decode("utf-8", errors="replace")


class JsonLinesFormat:
    """Base for NDJSON formats: records are the parsed objects; a bad line becomes a BadRecord."""

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        for offset, line in iter_lines(stream):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield BadRecord(offset, f"invalid JSON: {exc}", line)
                continue
            if not isinstance(obj, dict):
                yield BadRecord(offset, f"expected a JSON object, got {type(obj).__name__}", line)
                continue
            yield offset, obj


def head_lines(head: bytes, limit: int = 5) -> list[bytes]:
    """The first complete (or only) lines of a sniffing buffer, blank lines skipped."""
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if len(lines) > 1 and not head.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the last line was cut by the buffer
    return lines[:limit]


def first_json_object(head: bytes) -> dict[str, Any] | None:
    """The first line of head parsed as a JSON object, or None."""
    for line in head_lines(head, 1):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None
    return None
