"""Transparent, streaming decompression by magic bytes, salvaging everything before a corruption.

Memory stays flat in object size (bounded chunks, never the whole object). On a corrupt or
truncated gzip object, every byte that decodes before the damage is delivered first and the
error is raised only after it, so the records before the damage are indexed and the object is
reported as failed with the position reached. Concatenated members (Firehose, log shippers)
are read one after another.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
GZIP_DEFLATE = GZIP_MAGIC + b"\x08"  # magic + compression method: a text file rarely starts so
SNIFF_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_BUFFER = 1 << 20
_MAX_OUT = 1 << 20  # decompressed bytes per step: highly compressible logs must not balloon memory


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

    def __init__(self, compressed: BinaryIO) -> None:
        self._src = compressed
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
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _inflate_next(self) -> bytes:
        tail = self._inflater.unconsumed_tail  # input held back by the output bound
        if tail:
            return self._feed(tail)
        chunk = self._src.read(_CHUNK)
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


def open_decompressed(raw: BinaryIO) -> tuple[BinaryIO, bytes]:
    """The decompressed stream and its first bytes (for sniffing), without reading it all."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Readable(raw), _BUFFER)
    if buffered.peek(3)[:3] == GZIP_DEFLATE:
        stream: io.BufferedReader = io.BufferedReader(GzipStream(buffered), _BUFFER)
    else:
        stream = buffered
    # peek returns what one read gives (less than asked for, at times): enough to sniff a format.
    return stream, stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
