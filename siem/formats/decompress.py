"""Transparent, streaming decompression by magic bytes, salvaging everything before a corruption.

Memory stays flat in object size (bounded chunks, never the whole object). On a corrupt or
truncated gzip object, every byte that decodes before the damage is delivered first and the
error is raised only after it, so the records before the damage are indexed and the object is
reported as failed with the position reached. Concatenated members (Firehose, log shippers)
are read one after another.

Hostile input is bounded here too: an object that inflates past ``max_inflated`` bytes, or past
``max_ratio`` times its compressed size once beyond limits.RATIO_FLOOR (a gzip bomb), fails with
an InflateLimitError naming the limit; and the stream handed to a log type carries the record
limit and the ``oversized`` list that iter_lines reports skipped over-long records on.
"""

from __future__ import annotations

import io
import zlib
from typing import Any, BinaryIO

from siem import limits

GZIP_MAGIC = b"\x1f\x8b"
GZIP_DEFLATE = GZIP_MAGIC + b"\x08"  # magic + compression method: a text file rarely starts so
SNIFF_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_BUFFER = 1 << 20
_MAX_OUT = 1 << 20  # decompressed bytes per step: highly compressible logs must not balloon memory


class InflateLimitError(OSError):
    """A compressed object inflated beyond a configured bound; the message names the bound."""


class RecordStream(io.BufferedReader):
    """The decompressed stream a log type reads: a BufferedReader plus the record limit and the
    list where framing reports records it skipped for being over it (drained by the pipeline)."""

    def __init__(self, raw: Any, buffer_size: int, max_record_bytes: int) -> None:
        super().__init__(raw, buffer_size)
        self.max_record_bytes = max_record_bytes
        self.oversized: list[Any] = []


class _Readable(io.RawIOBase):
    """Adapts any object with ``read(n)`` (botocore's StreamingBody) to a raw stream."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close:
            close()
        super().close()


class GzipStream(io.RawIOBase):
    """Decompressed bytes of a gzip stream; on damage, salvage first, raise after."""

    def __init__(
        self,
        compressed: BinaryIO,
        max_inflated: int = limits.MAX_INFLATED_BYTES,
        max_ratio: int = limits.MAX_INFLATE_RATIO,
    ) -> None:
        self._src = compressed
        self._max_inflated = max_inflated
        self._max_ratio = max_ratio
        self._read_in = 0  # compressed bytes consumed
        self._out = 0  # inflated bytes produced
        self._inflater = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._error: Exception | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                raise error
            if self._done:
                return 0
            self._pending = self._inflate_next()
            self._out += len(self._pending)
            self._check_limits()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _inflate_next(self) -> bytes:
        # Input held back by the output bound. Once a member has ended, zlib leaves a copy of what
        # follows it in unconsumed_tail as well as in unused_data: feeding that tail again would only
        # grow unused_data and inflate nothing, forever; the member loop below starts from unused_data.
        tail = b"" if self._inflater.eof else self._inflater.unconsumed_tail
        if tail:
            out = self._feed(tail)
        else:
            chunk = self._src.read(_CHUNK)
            self._read_in += len(chunk)
            if not chunk:
                self._done = True
                if not self._inflater.eof:
                    self._error = EOFError("gzip stream ended before its end marker (truncated object)")
                return b""
            out = self._feed(chunk)
        while self._inflater.eof and self._inflater.unused_data:
            rest = self._inflater.unused_data
            if not rest.startswith(GZIP_MAGIC):
                if rest.strip(b"\x00"):
                    self._error = zlib.error("trailing garbage after the last gzip member")
                return out
            self._inflater = zlib.decompressobj(wbits=31)
            out += self._feed(rest)
        return out

    def _check_limits(self) -> None:
        if self._out > self._max_inflated:
            self._pending = b""
            self._done = True
            raise InflateLimitError(
                f"inflates beyond the {self._max_inflated}-byte per-object limit "
                f"(siem.limits.MAX_INFLATED_BYTES / ParseOptions.max_inflated_bytes)"
            )
        if self._out > limits.RATIO_FLOOR and self._out > self._max_ratio * max(self._read_in, 1):
            self._pending = b""
            self._done = True
            raise InflateLimitError(
                f"inflate ratio over {self._max_ratio}:1 ({self._out} bytes from {self._read_in}): a decompression "
                f"bomb? (siem.limits.MAX_INFLATE_RATIO / ParseOptions.max_inflate_ratio)"
            )

    def _feed(self, data: bytes) -> bytes:
        """Inflate data; on corruption keep every decodable byte by bisecting the input."""
        snapshot = self._inflater.copy()
        try:
            return self._inflater.decompress(data, _MAX_OUT)
        except zlib.error as exc:
            self._inflater = snapshot
            salvaged = self._salvage(data)
            self._error = zlib.error(f"corrupt gzip data: {exc}")
            return salvaged

    def _salvage(self, data: bytes) -> bytes:
        out = b""
        while len(data) > 1:
            half = len(data) // 2
            snapshot = self._inflater.copy()
            try:
                out += self._inflater.decompress(data[:half])
                data = data[half:]
            except zlib.error:
                self._inflater = snapshot
                data = data[:half]
        return out

    def close(self) -> None:
        self._src.close()
        super().close()


def open_decompressed(
    raw: BinaryIO,
    max_record_bytes: int = limits.MAX_RECORD_BYTES,
    max_inflated: int = limits.MAX_INFLATED_BYTES,
    max_ratio: int = limits.MAX_INFLATE_RATIO,
) -> tuple[BinaryIO, bytes]:
    """The decompressed stream (a RecordStream) and its first bytes (for sniffing), without reading it all."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Readable(raw), _BUFFER)
    if buffered.peek(3)[:3] == GZIP_DEFLATE:
        stream = RecordStream(GzipStream(buffered, max_inflated, max_ratio), _BUFFER, max_record_bytes)
    else:
        stream = RecordStream(_Readable(buffered), _BUFFER, max_record_bytes)
    # peek returns what one read gives (less than asked for, at times): enough to sniff a format.
    return stream, stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
