"""Transparent decompression by magic bytes, streaming so memory stays flat in object size."""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024


def open_decompressed(raw: BinaryIO) -> tuple[BinaryIO, bytes]:
    """The decompressed stream and its first bytes (for sniffing), without reading it all.

    Concatenated gzip members (what Firehose and many log shippers write) are handled by
    GzipFile; a corrupt member raises ``OSError``/``EOFError`` when it is reached, after every
    earlier record has been read.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Readable(raw), 1 << 20)
    magic = buffered.peek(2)[:2]
    stream: BinaryIO = (
        io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), 1 << 20)  # type: ignore[arg-type]
        if magic == GZIP_MAGIC
        else buffered
    )
    head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]  # type: ignore[attr-defined]
    return stream, head


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
