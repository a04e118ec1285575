"""The reference path serialises a document once: finalize's value check writes its JSON, and the sinks
copy those bytes. They must be exactly the document, and must not be used when the document changed
after the check (a bounded value, load-time enrichment)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from siem import formats
from siem.cli_load import NdjsonSink
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import Event, parse_object
from siem.sources.local import local_objects

REPO = Path(__file__).resolve().parents[1]
CLOUDTRAIL = REPO / "tests/data/samples/logs/cloudtrail/test-assume-role-json.log"


def _events(path: Path, options: ParseOptions | None = None) -> list[Event]:
    return [
        item
        for obj in local_objects(path)
        for item in parse_object(obj, Router(), options or ParseOptions(), formats.get("aws.cloudtrail"))
        if isinstance(item, Event)
    ]


def _printed(events: list[Event]) -> list[dict]:
    out = io.BytesIO()
    text = io.TextIOWrapper(out)
    NdjsonSink(text, None).write(events)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    text.detach()
    return lines


def test_a_reference_event_carries_its_documents_exact_json() -> None:
    events = _events(CLOUDTRAIL)
    assert events
    for event in events:
        assert event.raw == orjson.dumps(event.doc)


def test_an_event_whose_values_were_bounded_is_written_from_its_changed_document(tmp_path: Path) -> None:
    record = orjson.loads(CLOUDTRAIL.read_bytes().splitlines()[0])
    record["requestParameters"] = {"policyDocument": "x" * 40_000}
    path = tmp_path / "trail.json"
    path.write_bytes(b'{"Records":[' + orjson.dumps(record) + b"]}")
    (event,) = _events(path)
    assert event.raw is None
    (printed,) = _printed([event])
    assert printed["siem"]["truncated"] == ["aws.cloudtrail.request_parameters.policyDocument"]
    assert len(printed["aws"]["cloudtrail"]["request_parameters"]["policyDocument"]) == 16 * 1024


def test_an_enriched_event_is_written_with_what_enrichment_added() -> None:
    def enrich(doc: dict) -> None:
        doc.setdefault("labels", {})["enriched"] = "yes"

    events = _events(CLOUDTRAIL, ParseOptions(enrich=enrich))
    assert events and all(event.raw is None for event in events)
    assert all(line["labels"] == {"enriched": "yes"} for line in _printed(events))
