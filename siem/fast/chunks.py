"""Chunked framing for the fast paths: the decompressed stream cut into runs of whole lines.

It must give every line the byte offset `iter_lines` gives it (the document ID and log.offset
depend on it) and treat over-long lines the same way, while never holding more than about
CHUNK_BYTES plus one record limit: a line longer than the limit is skipped in bounded reads and
reported with the same offset, length, head and reason as `iter_lines` reports it.

Reads use `read1`, one underlying read at a time, so that when the stream fails (a corrupt gzip
member) every whole line read before the failure is still handed on, as `readline` would have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import BinaryIO

from siem import limits
from siem.formats.base import BadRecord, oversized_record

CHUNK_BYTES = 2 << 20  # lines mapped per chunk: few reads and splits per line, memory flat

# Lines mapped by a fast path ("<dataset>.fast") and lines handed to the reference mapper
# ("<dataset>.reference") since the process started: shows that a fast path is really taken.
STATS: Counter[str] = Counter()


@dataclass(slots=True)
class Chunk:
    base: int  # offset of data[0] in the decompressed stream
    data: bytes  # whole lines, each ending in b"\n" except an unterminated last line of the stream


def numbered_lines(chunk: Chunk, table: bytes) -> Iterator[tuple[bytes, int]]:
    """The chunk's lines with their offsets in the stream, each translated through ``table`` (a
    fast path maps every byte it cannot handle to ``\x01``, which sends the line to the reference
    mapper). The piece after the chunk's last newline is empty unless the stream ended without one."""
    lines = chunk.data.translate(table).split(b"\n")
    return zip(lines, accumulate((len(line) + 1 for line in lines), initial=chunk.base), strict=False)


def chunks(stream: BinaryIO, limit: int) -> Iterator[Chunk | BadRecord]:
    """Chunks of whole lines, in order, with the over-long lines that could not fit one as BadRecords.

    A line over `limit` that does fit a chunk is left in it: the mapper reports it (see `line_at`)."""
    size = CHUNK_BYTES
    read1 = stream.read1  # type: ignore[attr-defined]
    pieces: list[bytes] = []
    held = 0
    base = 0
    while True:
        try:
            data = read1(size)
        except Exception:
            whole = b"".join(pieces)
            cut = whole.rfind(b"\n") + 1
            if cut:  # what readline would have returned before the failure
                yield Chunk(base, whole[:cut])
            raise
        if not data:
            if pieces:
                yield Chunk(base, b"".join(pieces))
            return
        pieces.append(data)
        held += len(data)
        if held < size:
            continue
        whole = b"".join(pieces)
        cut = whole.rfind(b"\n") + 1
        if cut:
            yield Chunk(base, whole[:cut])
            base += cut
        rest = whole[cut:]
        if len(rest) > limit:  # the start of an over-long line: skip to its end without holding it
            head = rest[: min(limits.RAW_LIMIT, limit + 1)]
            length = len(rest)
            rest = b""
            while True:
                more = read1(size)
                if not more:
                    break
                newline = more.find(b"\n")
                if newline >= 0:
                    length += newline + 1
                    rest = more[newline + 1 :]
                    break
                length += len(more)
            yield oversized_record(base, length, limit, head)
            base += length
        pieces = [rest] if rest else []
        held = len(rest)


def line_at(chunk: Chunk, offset: int) -> tuple[bytes, int]:
    """The line at stream `offset` without its newline (a CR before it kept), and its length with it."""
    start = offset - chunk.base
    end = chunk.data.find(b"\n", start)
    if end < 0:
        return chunk.data[start:], len(chunk.data) - start
    return chunk.data[start:end], end + 1 - start


def decoded(line: bytes) -> str:
    """The line as `LineFormat.records` hands it to `to_ecs`."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", errors="replace")


def framed_line(chunk: Chunk, offset: int, limit: int) -> bytes | BadRecord | None:
    """The line at `offset` as `iter_lines` frames it: its bytes without the CR before its newline, a
    BadRecord when it is over the limit, None when it is blank (no record)."""
    line, length = line_at(chunk, offset)
    if len(line) > limit:
        start = offset - chunk.base
        return oversized_record(offset, length, limit, chunk.data[start : start + min(limits.RAW_LIMIT, limit + 1)])
    line = line.rstrip(b"\r")
    return line if line.strip() else None


def reference_lines(chunk: Chunk, offsets: list[int], limit: int) -> Iterator[tuple[int, str] | BadRecord]:
    """The chunk's lines at `offsets` as iter_lines + LineFormat.records give them (blank ones
    skipped, an over-long one a BadRecord): what the reference mapper then takes."""
    for offset in offsets:
        line = framed_line(chunk, offset, limit)
        if isinstance(line, bytes):
            yield offset, decoded(line)
        elif line is not None:
            yield line
