"""What the fast-path differential tests share: switching the path, one file through the pipeline, and
the comparison of both paths with how many records each side of it mapped."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from siem.fast.chunks import STATS
from siem.formats.base import LogType, ParseOptions, Skipped
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, parse_object
from siem.sources.local import local_objects

INGESTED = "2026-03-09T00:00:00.000Z"


@contextmanager
def fast_path(on: bool) -> Iterator[None]:
    before = os.environ.get("SIEM_FAST_PATH")
    os.environ["SIEM_FAST_PATH"] = "on" if on else "off"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SIEM_FAST_PATH", None)
        else:
            os.environ["SIEM_FAST_PATH"] = before


def outcome(
    path: Path, on: bool, log_type: LogType, options: ParseOptions | None = None
) -> tuple[list[Any], list[Any]]:
    """(events as (id, dataset, JSON with sorted keys, columns), everything else in order: dead letters as dicts,
    skipped records as (offset, reason)) of one file through the pipeline."""
    events: list[Any] = []
    others: list[Any] = []
    with fast_path(on):
        for obj in local_objects(path):
            for item in parse_object(obj, Router(), options or ParseOptions(), log_type, ingested=INGESTED):
                if isinstance(item, Event):
                    if item.raw is not None:  # the bytes sinks write are orjson's own form (key order aside)
                        assert orjson.dumps(orjson.loads(item.raw)) == item.raw
                    # the columns the stores index: a fast path's own, the reference's read from its document
                    columns = item.columns
                    document = orjson.dumps(item.doc, option=orjson.OPT_SORT_KEYS)
                    events.append((item.id, item.dataset, document, columns))
                elif isinstance(item, DeadLetter):
                    others.append(item.to_dict())
                else:
                    assert isinstance(item, Skipped)
                    others.append((item.offset, item.reason))
    return events, others


def assert_same(path: Path, log_type: LogType, options: ParseOptions | None = None) -> tuple[int, int]:
    """Fast path and reference agree on the file; returns (records mapped fast, records sent to the
    reference) on the fast run."""
    reference = outcome(path, False, log_type, options)
    before = dict(STATS)
    assert outcome(path, True, log_type, options) == reference
    fast, slow = f"{log_type.dataset}.fast", f"{log_type.dataset}.reference"
    return STATS[fast] - before.get(fast, 0), STATS[slow] - before.get(slow, 0)


def assert_same_bytes(
    data: bytes, log_type: LogType, options: ParseOptions | None = None, name: str = "input.log"
) -> tuple[int, int]:
    """``assert_same`` on a file holding ``data`` (``name`` may carry an AWS key layout)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return assert_same(path, log_type, options)


def json_edge_lines(plain: bytes, record: dict[str, Any], not_utf8: tuple[bytes, bytes]) -> bytes:
    """A JSON-lines object of framing edge cases around ``plain`` (the line of ``record``): CRLF,
    padding, blank and CR-only lines, truncated JSON with and without its CR, an array, null, a
    string, {}, a form feed (blank to bytes.strip, not JSON whitespace), bytes that are not UTF-8
    (``not_utf8``: what of ``plain`` to replace), ``record`` pretty-printed (a dead letter a line)
    and a last line without its newline. Four plain lines; {} is the reference's to map."""
    edges = [
        plain,
        plain + b"\r",
        b"  " + plain + b" \t ",
        b"",
        b"   ",
        b"\r",
        plain[:-30],
        plain[:-30] + b"\r",  # the dead letter's raw line without its CR
        b"[" + plain + b"]",
        b"null",
        b'"text"',
        b"{}",
        b"\x0c" + plain,
        plain.replace(*not_utf8),
        *orjson.dumps(record, option=orjson.OPT_INDENT_2).splitlines(),
        plain,
    ]
    return b"\n".join(edges)


def over_long_lines(plain: bytes, long: bytes) -> bytes:
    """Plain and over-long lines interleaved, one plain line with a CR, no final newline: with a limit of
    len(plain) + 1 three plain lines fit, with len(plain) two (the CR makes the third one byte over)."""
    return b"\n".join([plain, long, plain, long, long, plain + b"\r", long]) + b"\n" + long


def values_alone(
    plain: list[dict[str, Any]], odd: list[dict[str, Any]], line: Callable[[dict[str, Any]], bytes]
) -> tuple[bytes, tuple[int, int]]:
    """A JSON-lines object of records each varying one field, and the (fast, reference) counts it must
    give: every ``plain`` record mapped fast, every ``odd`` one handed back, except those holding a lone
    surrogate, whose line is a dead letter of the framing on both paths."""
    handed_back = [record for record in odd if "\\ud800" not in json.dumps(record)]
    return b"\n".join(line(record) for record in plain + odd) + b"\n", (len(plain), len(handed_back))
