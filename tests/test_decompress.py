"""Streaming gzip: multi-member objects, and salvage of everything before damage."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from siem.formats.decompress import open_decompressed

LINES = b"".join(b"line %06d some log text to make it longer\n" % i for i in range(20000))


def _read_all(data: bytes) -> tuple[bytes, Exception | None]:
    stream, _ = open_decompressed(io.BytesIO(data))
    out = bytearray()
    try:
        for line in stream:
            out += line
    except (OSError, EOFError, zlib.error) as exc:
        return bytes(out), exc
    return bytes(out), None


def test_plain_and_gzip_read_the_same() -> None:
    assert _read_all(LINES) == (LINES, None)
    assert _read_all(gzip.compress(LINES)) == (LINES, None)


def test_concatenated_members_are_all_read() -> None:
    data = gzip.compress(LINES[:1000]) + gzip.compress(LINES[1000:])
    assert _read_all(data) == (LINES, None)


def test_truncated_object_salvages_prefix_then_raises() -> None:
    compressed = gzip.compress(LINES)
    out, error = _read_all(compressed[: len(compressed) // 2])
    assert isinstance(error, EOFError)
    assert len(out) > len(LINES) // 3  # most of the first half decodes
    assert LINES.startswith(out[: out.rfind(b"\n") + 1])


@pytest.mark.parametrize("where", [0.3, 0.7])
def test_corruption_salvages_prefix_then_raises(where: float) -> None:
    compressed = bytearray(gzip.compress(LINES))
    cut = int(len(compressed) * where)
    compressed[cut : cut + 64] = b"\xff" * 64
    out, error = _read_all(bytes(compressed))
    assert error is not None  # deflate may decode garbage past the damage, but the CRC check still fails
    intact = next((i for i, (a, b) in enumerate(zip(out, LINES, strict=False)) if a != b), len(out))
    assert intact > len(LINES) * where * 0.5


def test_highly_compressible_members_stay_bounded_and_complete() -> None:
    # each member inflates ~100x, so decompression proceeds in bounded steps across member ends
    member = b"".join(b"%08d the same request again and again\n" % i for i in range(80000))
    data = gzip.compress(member) + gzip.compress(member) + gzip.compress(member)
    out, error = _read_all(data)
    assert error is None
    assert out == member * 3


def test_text_starting_with_gzip_magic_but_no_deflate_is_read_as_text() -> None:
    data = b"\x1f\x8bnot really gzip\n" + LINES[:100]
    assert _read_all(data) == (data, None)
