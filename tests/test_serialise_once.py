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


def test_a_batch_waiting_for_its_write_holds_bytes_and_columns_not_document_trees() -> None:
    """pipeline.run keeps a reference event's bytes and columns and lets its dict tree go: the sink
    gets the same documents and columns, decoded from the bytes only when asked."""
    from siem.columns import columns_of
    from siem.pipeline import DeadLetter, run

    def comparable(doc: dict, columns) -> tuple[dict, object]:
        """Without event.ingested, the time of each run."""
        return {**doc, "event": {**doc["event"], "ingested": None}}, columns._replace(ingested=None)

    expected = {e.id: comparable(e.doc, columns_of(e.doc)) for e in _events(CLOUDTRAIL)}
    held: list[bool] = []
    written: dict[str, tuple[dict, object]] = {}

    class Sink:
        def write(self, events: list[Event]) -> list[DeadLetter]:
            held.extend(e._doc is None for e in events)  # before anything asks for a document
            written.update({e.id: comparable(e.doc, e.columns) for e in events})
            return []

        def write_dead_letters(self, letters: list[DeadLetter]) -> None:
            pass

    run(local_objects(CLOUDTRAIL), Sink(), dataset="aws.cloudtrail")
    assert held and all(held)
    assert written == expected
