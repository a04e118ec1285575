"""What the nginx and Apache access/error tests share, so each test file holds only its log type's cases.

Both servers go through siem/formats/_http_common.py and are held to the same checks: the Elastic
oracle fields both producers fill, comparison with an oracle, a garbage line among good ones,
hostile bytes (Hypothesis), and which dataset the router picks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from _property_cases import FUZZ, assert_well_formed, dead_letter_between
from hypothesis import given
from hypothesis import strategies as st
from oracle import compared_with_oracle, parse_bytes
from oracle import routed as routed  # re-exported: the web test files take their helpers from here
from oracle import sniffed as sniffed

from siem.formats.base import ParseOptions
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


def parse_text(text: str, dataset: str, options: ParseOptions | None = None) -> Parsed:
    return parse_bytes(text.encode("utf-8"), dataset, options)


def parse_lines(lines: list[str], dataset: str, options: ParseOptions | None = None) -> Parsed:
    return parse_text("\n".join(lines) + "\n", dataset, options)


def oracle_pairs(
    folder: str, name: str, dataset: str, fields: list[str], count: int, options: ParseOptions | None = None
) -> list[tuple[Doc, Doc]]:
    """Sample `folder/name` against Elastic's output for it (see oracle.compared_with_oracle), with
    exactly `count` events."""
    return compared_with_oracle(f"{folder}/{name}", dataset, fields, count=count, options=options)


def assert_garbage_dead_lettered(good: str, garbage: str, dataset: str) -> None:
    """A bad line between two good ones is one mapping dead letter at its own byte offset."""
    assert dead_letter_between(good, garbage, dataset).stage == "map"


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
        return FUZZ(examples)

    return wrap


def mangle(data: bytes, cut: int, junk: bytes, where: int) -> bytes:
    """`data` after a copy of its first `cut` bytes (a torn line), with `junk` inserted at `where`."""
    data = data[:cut] + b"\n" + data
    return data[:where] + junk + data[where:]


def parse_hostile(data: bytes, dataset: str) -> Parsed:
    """Parse hostile bytes, asserting what must hold for any input: nothing raises, and what
    assert_well_formed checks (every dead letter says why, every event has a UTC timestamp)."""
    events, letters = parse_bytes(data, dataset)
    assert_well_formed(events, letters)
    return events, letters


def line_count(data: bytes) -> int:
    """Lines the framing sees (blank ones skipped), for the one-record-per-line access logs."""
    return len([ln for ln in data.split(b"\n") if ln.rstrip(b"\r\n").strip()])
