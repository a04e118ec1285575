"""Where objects come from: a local file or folder, an S3 prefix, S3 event notifications on SQS.

Every source yields SourceObjects; the pipeline does not care which source it was.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

# How much of an object's head (decompressed, when it is gzip) is looked at to tell text from binary.
BINARY_SNIFF_BYTES = 8192
# A head with more than this share of bytes that are neither text nor UTF-8 is binary (an image, an
# archive): one failed object, not one dead letter per "line". Text logs with a stray Latin-1 byte pass.
BINARY_RATIO = 0.3
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\b\x1b")
_GZIP_SUFFIXES = (".gz", ".gzip")

# AWSLogs/<account>/<service>/<region>/... is the layout of ALB, CloudTrail, VPC flow, WAF (Firehose
# aside) and Route 53 Resolver deliveries; Network Firewall adds flow|alert|tls before the region.
_AWS_KEY = re.compile(
    r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/[A-Za-z0-9_-]+/(?:(?:flow|alert|tls)/)?([a-z]{2}(?:-gov)?-[a-z]+-\d)/"
)
_ACCOUNT_ONLY = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/")


@dataclass(frozen=True, slots=True)
class SourceObject:
    path: str  # log.file.path: s3://bucket/key or a local path
    identity: str  # stable across re-loads: the seed of document IDs
    opener: Callable[[], BinaryIO]
    size: int | None = None
    version: str | None = None  # ETag, or size and mtime of a file: the ledger skips an unchanged object

    def open(self) -> BinaryIO:
        """The object's bytes; the first read refuses an empty .gz and binary content (OSError), which the
        pipeline turns into one failed object with a dead letter saying why."""
        return _Checked(self.opener(), self.path)  # type: ignore[return-value]


class EmptyObject(OSError):
    """An object with no bytes where a compressed stream was expected."""


class BinaryObject(OSError):
    """An object whose content is not text (an image, an archive, an executable)."""


def binary_reason(head: bytes) -> str | None:
    """Why these first bytes are not a text log, or None when they look like text: many bytes that are
    neither text nor UTF-8 (NUL and other control bytes count). A few odd bytes are not enough, nor is a
    NUL or a magic number alone: junk at the start of a log, or one damaged line among good ones, stays
    a dead letter per bad line and its neighbours are kept."""
    text = head.decode("utf-8", errors="replace")
    if len(head) >= BINARY_SNIFF_BYTES:  # a character cut at the end of the sample is not a bad byte
        text = text.rstrip("\ufffd")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in _TEXT_CONTROLS))
    if text and odd / len(text) > BINARY_RATIO:
        return f"{odd} of the first {len(text)} characters are not text"
    return None


class _Checked:
    """Reads an object through, after checking its head once (see SourceObject.open)."""

    def __init__(self, inner: BinaryIO, path: str) -> None:
        self._inner = inner
        self._path = path
        self._head: bytes | None = None

    def _check(self) -> bytes:
        head = b""
        while len(head) < 64 * 1024:
            chunk = self._inner.read(64 * 1024 - len(head))
            if not chunk:
                break
            head += chunk
        if not head and self._path.lower().endswith(_GZIP_SUFFIXES):
            raise EmptyObject("the object is empty (0 bytes): a .gz object holds at least a gzip header")
        sample = head[:BINARY_SNIFF_BYTES]
        if head[:2] == b"\x1f\x8b":
            try:
                sample = zlib.decompressobj(wbits=47).decompress(head, BINARY_SNIFF_BYTES)
            except zlib.error:
                sample = b""  # damaged gzip: the decompressor reports it, with what it salvages
        why = binary_reason(sample[:BINARY_SNIFF_BYTES])
        if why:
            raise BinaryObject(f"binary content, not a text log ({why})")
        return head

    def read(self, size: int = -1) -> bytes:
        if self._head is None:
            self._head = self._check()
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._inner.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._inner.read() if size is None or size < 0 else self._inner.read(size)

    def close(self) -> None:
        self._inner.close()


def aws_key_context(key: str) -> tuple[str | None, str | None]:
    """(account id, region) from an AWS log-delivery key layout, when it has them."""
    match = _AWS_KEY.search(key)
    if match:
        return match.group(1), match.group(2)
    match = _ACCOUNT_ONLY.search(key)
    return (match.group(1), None) if match else (None, None)
