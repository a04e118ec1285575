"""CloudTrail framing: the same records from every JSON layout, linear time, each record decoded once.

The expected eventIDs are written out by hand; the layouts are the same logical content written as
AWS writes it (compact), as json.dumps and many tools write it (`", "`, `}, {`), pretty-printed
(indent 2 and 4, CRLF), as NDJSON (records, or Records documents, one per line) and as top-level
arrays. Small documents go through the whole pipeline; documents larger than the 1 MiB read window
(the same records repeated) exercise the batch framing, its refills and its fallbacks.
"""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any

import orjson
import pytest
from _property_cases import parse_bytes
from oracle import sample

from siem.formats import _cloudtrail_framing as framing
from siem.formats.base import BadRecord, Skipped
from siem.formats.cloudtrail import iter_records

SAMPLE_IDS = [
    "e755e09c-42f9-4c5c-9064-EXAMPLE228c7",
    "ba0801a1-87ec-4d26-be87-EXAMPLE75bbb",
    "bb3496d4-5252-4660-9c28-3c6aebdb21c0",
    "654a30ff-b0f3-4527-81b6-EXAMPLEf2393",
    "694d604a-d190-4470-8dd1-EXAMPLEe20c1",
    "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222",
    "a24b3967-ddad-417f-9b22-2332b918db06",
]
NUMBERS_ID = "numbers-0000-0000-0000-000000000001"
TRICKY_ID = "tricky-0000-0000-0000-000000000002"
EXPECTED_IDS = [*SAMPLE_IDS, NUMBERS_ID, TRICKY_ID]
LAYOUTS = [
    "compact",
    "spaced",
    "pretty-2",
    "pretty-4",
    "pretty-2-crlf",
    "ndjson-records",
    "ndjson-documents",
    "array",
    "array-pretty",
]
REPEAT = 150  # 9 records x 150: 1.5-2.5 MB per layout, past the 1 MiB window


def _records(tricky: bool = True) -> list[dict[str, Any]]:
    records = json.loads(sample("cloudtrail/cloudtrail_log.json").read_text())["Records"]
    numbers = {**records[1], "eventID": NUMBERS_ID}
    numbers["requestParameters"] = {
        "maxU64": 18446744073709551615,
        "minI64": -9223372036854775808,
        "overU64": 18446744073709551616,
        "ratio": 0.1,
    }
    records.append(numbers)
    if tricky:
        nested = {**records[0], "eventID": TRICKY_ID}
        # A record-boundary look-alike at a nested level, and braces/brackets inside strings.
        nested["additionalEventData"] = {"steps": [{"a": 1}, {"eventVersion": "1.08"}, {"eventVersion": "1.09"}]}
        nested["userAgent"] = '},{"eventVersion":"1.08", }, {"eventVersion": "x"'
        nested["errorMessage"] = 'unbalanced } ] { [ and \\ and " inside a value'
        records.append(nested)
    return records


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()  # orjson refuses 2**64, which CloudTrail may hold


def _layouts(records: list[dict[str, Any]]) -> dict[str, bytes]:
    third = len(records) // 3 or 1
    groups = [records[i : i + third] for i in range(0, len(records), third)]
    pretty2 = json.dumps({"Records": records}, indent=2)
    return {
        "compact": b'{"Records":[' + b",".join(_compact(r) for r in records) + b"]}",
        "spaced": json.dumps({"Records": records}).encode(),
        "pretty-2": pretty2.encode(),
        "pretty-4": json.dumps({"Records": records}, indent=4).encode(),
        "pretty-2-crlf": pretty2.replace("\n", "\r\n").encode(),
        "ndjson-records": b"".join(_compact(r) + b"\n" for r in records),
        "ndjson-documents": b"".join(_compact({"Records": g}) + b"\n" for g in groups),
        "array": json.dumps(records).encode(),
        "array-pretty": json.dumps(records, indent=2).encode(),
    }


def _frame(data: bytes) -> list[Any]:
    return list(iter_records(io.BufferedReader(io.BytesIO(data), 1 << 20)))


@pytest.fixture(scope="module")
def big() -> dict[str, list[Any]]:
    """Every layout of the records repeated REPEAT times, framed once."""
    return {name: _frame(data) for name, data in _layouts(_records() * REPEAT).items()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_gives_the_same_events_through_the_pipeline(layout: str) -> None:
    events, letters = parse_bytes(_layouts(_records())[layout], "aws.cloudtrail")
    assert not letters, letters
    assert [e["event"]["id"] for e in events] == EXPECTED_IDS
    assert [e["log"]["offset"] for e in events] == list(range(9))
    assert events[8]["user_agent"]["original"] == '},{"eventVersion":"1.08", }, {"eventVersion": "x"'


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_past_the_window_gives_every_record_in_order(big: dict[str, list[Any]], layout: str) -> None:
    items = big[layout]
    assert all(isinstance(item, tuple) for item in items), [i for i in items if not isinstance(i, tuple)][:3]
    assert [raw["eventID"] for _, raw in items] == EXPECTED_IDS * REPEAT
    assert [position for position, _ in items] == list(range(9 * REPEAT))
    tricky = items[8][1]
    assert tricky["additionalEventData"]["steps"][2] == {"eventVersion": "1.09"}
    assert tricky["errorMessage"] == 'unbalanced } ] { [ and \\ and " inside a value'


@pytest.mark.parametrize("layout", ["compact", "spaced", "pretty-2", "ndjson-records", "array", "array-pretty"])
def test_numbers_are_orjsons_on_every_path(big: dict[str, list[Any]], layout: str) -> None:
    """Integers stay exact up to 64 bits, past that they become floats, as orjson reads them (and as
    before this framing), whichever path read the record: a whole small document or line, a batch
    past the window, the one-record path (the last record of a multi-line array)."""
    small = [raw for _, raw in _frame(_layouts(_records())[layout])]
    numbers_last = _records()
    numbers_last.append(numbers_last.pop(7))
    last = [raw for _, raw in _frame(_layouts(numbers_last)[layout])]
    for raw in (small[7], last[8], big[layout][7][1], big[layout][9 * 70 + 7][1]):
        params = raw["requestParameters"]
        assert params["maxU64"] == 18446744073709551615 and type(params["maxU64"]) is int
        assert params["minI64"] == -9223372036854775808 and type(params["minI64"]) is int
        assert params["overU64"] == 1.8446744073709552e19 and type(params["overU64"]) is float
        assert params["ratio"] == 0.1


@pytest.mark.parametrize("layout", ["compact", "spaced", "pretty-2", "pretty-2-crlf", "ndjson-records", "array"])
def test_every_character_is_decoded_about_once(monkeypatch, layout: str) -> None:
    """orjson and the stdlib decoder together read each character about once (the old framer read
    every non-compact record twice, and scanned its window once per record)."""
    data = _layouts(_records(tricky=False) * REPEAT)[layout]
    seen = {"orjson": 0, "stdlib": 0}
    loads, decoder = orjson.loads, framing._DECODER

    class Counting:
        @staticmethod
        def loads(text: str) -> Any:
            seen["orjson"] += len(text)
            return loads(text)

        JSONDecodeError = orjson.JSONDecodeError

    class CountingDecoder:
        @staticmethod
        def raw_decode(text: str, pos: int) -> tuple[Any, int]:
            value, end = decoder.raw_decode(text, pos)
            seen["stdlib"] += end - pos
            return value, end

    monkeypatch.setattr(framing, "orjson", Counting)
    monkeypatch.setattr(framing, "_DECODER", CountingDecoder)
    items = _frame(data)
    assert len(items) == 8 * REPEAT and all(isinstance(i, tuple) for i in items)
    assert seen["orjson"] + seen["stdlib"] < 1.1 * len(data), seen


def test_linear_in_the_number_of_spaced_records() -> None:
    """8x the records take about 8x the time, not 64x (the old framer searched the rest of its 1 MiB
    window for `},{"eventVersion"` for every record of a spaced document: quadratic inside a window)."""
    base = [json.dumps(r) for r in _records(tricky=False)]

    def document(count: int) -> bytes:
        spaced = [base[i % len(base)] for i in range(count)]
        return ('{"Records": [\n' + ", ".join(spaced) + "\n]}").encode()  # multi-line: not one orjson call

    def best(data: bytes) -> float:
        times = []
        for _ in range(5):
            start = time.process_time()
            for _ in iter_records(io.BytesIO(data)):  # records dropped as they come, as the pipeline does
                pass
            times.append(time.process_time() - start)
        return min(times)

    small, large = document(100), document(800)
    assert len(large) < 1 << 20  # inside one window, where the old framer was quadratic
    t_small, t_large = best(small), best(large)
    print(f"framing 100 spaced records: {t_small * 1e3:.2f} ms, 800: {t_large * 1e3:.2f} ms")
    assert t_large < 20 * t_small, f"100 records: {t_small * 1e3:.1f} ms, 800 records: {t_large * 1e3:.1f} ms"


@pytest.mark.parametrize("layout", ["compact", "spaced", "pretty-4", "ndjson-records", "array-pretty"])
def test_truncated_document_keeps_every_record_before_the_cut_plus_one_dead_letter(layout: str) -> None:
    data = _layouts(_records(tricky=False) * REPEAT)[layout]
    starts = [match.start() for match in re.finditer(rb'"eventVersion"', data)]  # one per record here
    cut = starts[700] + 300  # inside record 700, past the first window
    items = _frame(data[:cut])
    good = [i for i in items if isinstance(i, tuple)]
    bad = [i for i in items if not isinstance(i, tuple)]
    assert [raw["eventID"] for _, raw in good] == ([*SAMPLE_IDS, NUMBERS_ID] * REPEAT)[:700]
    assert len(bad) == 1 and isinstance(bad[0], BadRecord)
    assert bad[0].offset == 700 and "truncated" in bad[0].reason


@pytest.mark.parametrize("layout", ["compact", "spaced", "pretty-2", "ndjson-records"])
def test_record_over_the_limit_is_one_dead_letter_among_normal_ones(monkeypatch, layout: str) -> None:
    """The limit is lowered to 256 Ki characters so a 1.5 MB record is over it (the real one is 16 Mi)."""
    monkeypatch.setattr(framing, "MAX_RECORD", 256 * 1024)
    records = _records() * 40
    records[200] = {**records[200], "requestParameters": {"policy": "x" * (1536 * 1024)}}
    items = _frame(_layouts(records)[layout])
    bad = [i for i in items if not isinstance(i, tuple)]
    assert len(bad) == 1 and isinstance(bad[0], BadRecord), bad
    assert bad[0].offset == 200 and "not complete within 262144 characters" in bad[0].reason
    assert len(bad[0].raw) <= 16 * 1024
    ids = [item[1]["eventID"] for item in items if isinstance(item, tuple)]
    assert ids == [r["eventID"] for i, r in enumerate(records) if i != 200]


@pytest.mark.parametrize(
    "data",
    [
        sample("cloudtrail/test-cloudtrail-digest-json.log").read_bytes(),
        json.dumps(json.loads(sample("cloudtrail/test-cloudtrail-digest-json.log").read_bytes())).encode(),
        json.dumps(json.loads(sample("cloudtrail/test-cloudtrail-digest-json.log").read_bytes()), indent=2).encode(),
    ],
    ids=["compact", "spaced", "pretty"],
)
def test_digest_file_is_skipped_in_every_layout(data: bytes) -> None:
    items = _frame(data)
    assert len(items) == 1 and isinstance(items[0], Skipped) and "digest" in items[0].reason


@pytest.mark.parametrize(
    "data", [b'{"Records":[]}', b'{"Records": []}\n', b'{\r\n  "Records": [\r\n  ]\r\n}\r\n', b"[ ]"]
)
def test_empty_records_give_nothing(data: bytes) -> None:
    assert _frame(data) == []


@pytest.mark.parametrize(
    "data",
    [b'{"Records":[{"eventVersion":"1"}],"Other":1}\n', b'{"Records": [\n {"eventVersion": "1"}\n ],\n "Other": 1\n}'],
    ids=["one-line", "multi-line"],
)
def test_keys_after_the_records_array_are_one_dead_letter_on_either_path(data: bytes) -> None:
    items = _frame(data)
    assert items[0] == (0, {"eventVersion": "1"})
    assert len(items) == 2 and isinstance(items[1], BadRecord) and items[1].offset == 1
    assert items[1].reason == "unexpected content after the Records array"
