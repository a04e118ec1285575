"""What the nginx and Apache access/error tests share, so each test file holds only its log type's cases.

Both servers go through siem/formats/_http_common.py and are held to the same checks: the Elastic
oracle fields both producers fill, comparison with an oracle, a garbage line among good ones,
hostile bytes (Hypothesis), and which dataset the router picks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_fields, expected, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import DeadLetter

Doc = dict[str, Any]
Parsed = tuple[list[Doc], list[DeadLetter]]
TestFn = TypeVar("TestFn", bound=Callable[..., None])

# Compared with Elastic's oracle for both access types (access_doc maps both); each test adds its own.
ACCESS_ORACLE_FIELDS = [
    "@timestamp",
    "source.ip",
    "source.address",
    "source.port",
    "destination.ip",
    "destination.domain",
    "destination.port",
    "user.name",
    "http.request.method",
    "http.request.referrer",
    "http.response.status_code",
    "http.response.body.bytes",
    "http.version",
    "url.original",
    "url.path",
    "url.query",
    "url.domain",
    "url.extension",
    "user_agent.original",
    "event.outcome",
    "event.category",
    "event.kind",
]
# The same for both error types (error_doc maps these).
ERROR_ORACLE_FIELDS = [
    "@timestamp",
    "log.level",
    "message",
    "process.pid",
    "process.thread.id",
    "event.kind",
    "event.category",
    "event.type",
]


def parse_bytes(data: bytes, dataset: str, options: ParseOptions | None = None) -> Parsed:
    """Events and dead letters of `data` as a `.log` file, through the same code as `siem parse`."""
    handle = tempfile.NamedTemporaryFile(suffix=".log", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    try:
        return parse_file(handle.name, dataset, options)
    finally:
        Path(handle.name).unlink()


def parse_text(text: str, dataset: str, options: ParseOptions | None = None) -> Parsed:
    return parse_bytes(text.encode("utf-8"), dataset, options)


def parse_lines(lines: list[str], dataset: str, options: ParseOptions | None = None) -> Parsed:
    return parse_text("\n".join(lines) + "\n", dataset, options)


def oracle_pairs(
    folder: str, name: str, dataset: str, fields: list[str], count: int, options: ParseOptions | None = None
) -> list[tuple[Doc, Doc]]:
    """Sample `folder/name` against Elastic's output for it: no dead letters, `count` events as in the
    oracle, `fields` equal in each. Returns (ours, theirs) for the checks only one log type makes."""
    events, letters = parse_file(sample(f"{folder}/{name}"), dataset, options)
    oracle = expected(sample(f"{folder}/{name}-expected.json"))
    assert not letters
    assert len(events) == len(oracle) == count
    pairs = list(zip(events, oracle, strict=True))
    for i, (ours, theirs) in enumerate(pairs):
        assert_fields(ours, theirs, fields, label=f"{name} record {i}")
        assert ours["event"]["dataset"] == dataset
    return pairs


def assert_garbage_dead_lettered(good: str, garbage: str, dataset: str) -> None:
    """A bad line between two good ones is one mapping dead letter at its own byte offset."""
    events, letters = parse_lines([good, garbage, good], dataset)
    assert len(events) == 2 and len(letters) == 1
    assert letters[0].offset == len(good) + 1
    assert letters[0].stage == "map" and letters[0].reason


def hostile_examples(max_offset: int) -> Callable[[TestFn], TestFn]:
    """The Hypothesis inputs of every hostile-input test: a cut and an insertion point anywhere in a
    sample of about `max_offset` bytes, up to 64 junk bytes, and a size for one huge field."""

    def wrap(test: TestFn) -> TestFn:
        examples = given(
            cut=st.integers(min_value=0, max_value=max_offset),
            junk=st.binary(max_size=64),
            where=st.integers(min_value=0, max_value=max_offset),
            huge=st.integers(min_value=0, max_value=200_000),
        )(test)
        return settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])(examples)

    return wrap


def mangle(data: bytes, cut: int, junk: bytes, where: int) -> bytes:
    """`data` after a copy of its first `cut` bytes (a torn line), with `junk` inserted at `where`."""
    data = data[:cut] + b"\n" + data
    return data[:where] + junk + data[where:]


def parse_hostile(data: bytes, dataset: str) -> Parsed:
    """Parse hostile bytes, asserting what must hold for any input: nothing raises, every dead letter
    says why, every event has a UTC timestamp."""
    events, letters = parse_bytes(data, dataset)
    assert all(dl.reason for dl in letters)
    assert all(e["@timestamp"].endswith("Z") for e in events)
    return events, letters


def line_count(data: bytes) -> int:
    """Lines the framing sees (blank ones skipped), for the one-record-per-line access logs."""
    return len([ln for ln in data.split(b"\n") if ln.rstrip(b"\r\n").strip()])


def sniffed(data: bytes) -> str:
    """The dataset the router picks from content alone (the first 4 KiB, under a path nothing claims)."""
    return Router().choose("/no/known/path", data[:4096]).dataset


def routed(path: str) -> str:
    """The dataset the router picks from the key or path alone (content nothing claims)."""
    return Router().choose(path, b"whatever").dataset
