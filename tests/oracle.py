"""Helpers for parser tests: run a sample through the real pipeline and compare with Elastic's oracle.

The oracles (`*-expected.json` in ../shared/samples) are Elastic's ingest-pipeline output for the
same raw file; see ../shared/samples/SOURCES.md for the harness conventions.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, parse_object
from siem.sources.local import local_objects

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIEM_SHARED_DIR", REPO.parent / "shared"))
SAMPLES = SHARED / "samples"
# One sample of each AWS network log type and of the ALB, whose content sniffers must tell them
# apart, and Elastic's Firehose HTTP-endpoint envelopes (out of scope, documented: none may claim them).
AWS_NETWORK_SAMPLES = (
    "vpcflow/test-extra-samples.log",
    "route53_resolver/test-route53.log",
    "network_firewall/test-firewall.log",
    "alb/test-alb.log",
    "route53_resolver/test-route53-resolver-log.json",
    "network_firewall/test-firewall-log.json",
)


def sample(relative: str) -> Path:
    path = SAMPLES / relative
    if not path.exists():
        raise FileNotFoundError(f"sample {path} is missing: the tests need ../shared/samples (or SIEM_SHARED_DIR)")
    return path


def parse_file(
    path: Path | str, dataset: str | None = None, options: ParseOptions | None = None
) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Events (documents) and dead letters of one file, through the same code as `siem parse`."""
    from siem import formats

    forced = formats.get(dataset) if dataset else None
    events: list[dict[str, Any]] = []
    letters: list[DeadLetter] = []
    for obj in local_objects(path):
        for item in parse_object(obj, Router(), options or ParseOptions(), forced):
            if isinstance(item, Event):
                events.append(item.doc)
            elif isinstance(item, DeadLetter):
                letters.append(item)
    return events, letters


def parse_bytes(
    data: bytes, dataset: str, options: ParseOptions | None = None
) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Events and dead letters of `data` as one file of `dataset`, through the same code as `siem parse`.

    A directory of its own per call: Hypothesis runs the test body many times in one pytest test,
    which has one tmp_path.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input"
        path.write_bytes(data)
        return parse_file(path, dataset, options)


def sniffed(data: bytes) -> str:
    """The dataset the router picks from content alone (the first 4 KiB, under a path nothing claims)."""
    return Router().choose("/no/known/path", data[:4096]).dataset


def routed(path: str) -> str:
    """The dataset the router picks from the key or path alone (content nothing claims)."""
    return Router().choose(path, b"whatever").dataset


def expected(path: Path | str) -> list[dict[str, Any]]:
    return orjson.loads(Path(path).read_bytes())["expected"]


def get(doc: Any, dotted: str) -> Any:
    """A field by dotted path, whether the document nests objects or uses dotted keys."""
    if not isinstance(doc, dict):
        return None
    if dotted in doc:
        return doc[dotted]
    head, _, rest = dotted.partition(".")
    while rest:
        if head in doc:
            return get(doc[head], rest)
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    return doc.get(head)


def instant(value: str) -> datetime:
    """An instant at millisecond precision: Elastic truncates to ms, we keep what the log has."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def assert_fields(ours: dict[str, Any], theirs: dict[str, Any], fields: list[str], label: str = "") -> None:
    """Each field equal in both (timestamps as instants, lists as sets), or absent from both.

    Timestamps compare as instants at millisecond precision and lists as sets.
    """
    for field in fields:
        a, b = get(ours, field), get(theirs, field)
        if b == "-":  # we never store the "-" placeholder of absent values; Elastic sometimes does
            b = None
        if field.endswith(("timestamp", ".start", ".end", ".created")) and a and b:
            assert instant(a) == instant(b), f"{label} {field}: {a!r} != {b!r}"
        elif isinstance(a, list) or isinstance(b, list):
            norm = lambda v: {str(x) for x in (v if isinstance(v, list) else [v])} if v is not None else set()  # noqa: E731
            assert norm(a) == norm(b), f"{label} {field}: {a!r} != {b!r}"
        else:
            assert a == b or (str(a) == str(b) and a is not None), f"{label} {field}: ours {a!r} != oracle {b!r}"


def compared_with_oracle(
    relative: str,
    dataset: str,
    fields: list[str],
    *,
    count: int | None = None,
    options: ParseOptions | None = None,
    auto_type: bool = False,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Sample `relative` against Elastic's output for it: no dead letters, as many events as the
    oracle (`count` of them, when given), `fields` equal in each, every event of `dataset`.

    `auto_type` lets the router pick the log type, as `siem parse` without --type does, instead of
    forcing `dataset`. Returns (ours, theirs) pairs for the checks only one log type makes.
    """
    events, letters = parse_file(sample(relative), None if auto_type else dataset, options)
    oracle = expected(sample(f"{relative}-expected.json"))
    assert not letters
    assert len(events) == len(oracle), relative
    assert count is None or len(events) == count, relative
    pairs = list(zip(events, oracle, strict=True))
    for i, (ours, theirs) in enumerate(pairs):
        assert_fields(ours, theirs, fields, label=f"{relative} record {i}")
        assert ours["event"]["dataset"] == dataset
    return pairs
