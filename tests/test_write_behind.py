"""A load into OpenSearch writes behind the parsing (siem/write_behind.py), on the real node.

`pipeline.run` hands each batch to a writing thread and parses on; the promises of a run stay: the
ledger hears of an object only after its events are in the store, and a failed write stops the run
with nothing after it written or recorded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from siem.pipeline import Event, ObjectOutcome, run
from siem.sinks.opensearch import OpenSearchStore, StoreUnavailable
from siem.sources import SourceObject
from siem.templates import install_templates

LINES = 100  # records per object, and the batch size: each object fills one batch


def flow_object(n: int) -> SourceObject:
    """A VPC flow log object of LINES default-layout records, object ``n`` of a load."""
    lines = [
        f"2 123456789012 eni-0a1b2c3d4e5f60718 198.51.100.{n} 10.0.1.15 {40000 + i} 443 6 1 44"
        f" {1763633700 + i} {1763633701 + i} ACCEPT OK"
        for i in range(LINES)
    ]
    data = ("\n".join(lines) + "\n").encode()
    return SourceObject(path=f"flows-{n}.log", identity=f"flows-{n}.log", opener=partial(io.BytesIO, data))


@pytest.fixture
def store_args(opensearch_client, index_prefix) -> dict[str, Any]:
    install_templates(opensearch_client, index_prefix)
    return {"client": opensearch_client, "prefix": index_prefix, "batch_size": LINES}


def indexed(opensearch_client, prefix: str) -> int:
    opensearch_client.indices.refresh(index=f"{prefix}-events-*")
    return opensearch_client.count(index=f"{prefix}-events-*")["count"]


def test_a_bulk_request_is_in_flight_while_the_next_object_is_parsed(store_args, opensearch_client) -> None:
    """The first batch's write waits (up to 10 s) for the load to ask for the next object: only a
    write behind the parsing lets that happen; a write in the parsing thread times out."""
    next_object = threading.Event()
    waited: list[bool] = []

    class Watching(OpenSearchStore):
        def write(self, events: list[Event]):
            if not waited:
                waited.append(next_object.wait(10))
            return super().write(events)

    def objects() -> Iterator[SourceObject]:
        for n in range(3):
            if n == 1:
                next_object.set()
            yield flow_object(n)

    recorded: list[list[str]] = []
    summary = run(
        objects(),
        Watching(**store_args),
        dataset="aws.vpcflow",
        batch_size=LINES,
        committed=lambda done: recorded.append([o.obj.path for o in done]),
    )
    assert waited == [True]
    assert (summary.written, summary.dead_lettered) == (3 * LINES, 0)
    assert indexed(opensearch_client, store_args["prefix"]) == 3 * LINES
    assert [path for batch in recorded for path in batch] == ["flows-0.log", "flows-1.log", "flows-2.log"]


def test_a_failed_write_stops_the_load_and_nothing_after_it_is_written_or_recorded(
    store_args, opensearch_client
) -> None:
    """The second bulk write fails (scripted: the real node cannot be made to fail one chosen batch
    on demand; the other writes go to it), once the third batch waits behind it. The run raises that
    failure; the third and fourth batches are never written, and no object is recorded: object 0's
    outcome travels with the second batch, so the ledger cannot run ahead of the store."""
    calls: list[int] = []
    fourth_asked = threading.Event()

    class FailingSecond(OpenSearchStore):
        def write(self, events: list[Event]):
            calls.append(len(events))
            if len(calls) == 2:
                fourth_asked.wait(10)  # the third batch is handed over by then
                raise StoreUnavailable("bulk failed after 5 retries: injected")
            return super().write(events)

    def objects() -> Iterator[SourceObject]:
        for n in range(4):
            if n == 3:
                fourth_asked.set()
            yield flow_object(n)

    recorded: list[ObjectOutcome] = []
    with pytest.raises(StoreUnavailable, match="injected"):
        run(objects(), FailingSecond(**store_args), dataset="aws.vpcflow", batch_size=LINES, committed=recorded.extend)
    assert calls == [LINES, LINES]
    assert recorded == []
    assert indexed(opensearch_client, store_args["prefix"]) == LINES


def test_the_embedded_store_writes_behind_while_the_ledger_is_read_on_the_parsing_thread(tmp_path) -> None:
    """The embedded store is written on the writing thread's own DuckDB cursor while the parsing
    thread looks finished objects up in the ledger on the store's connection: the first write waits
    for the load to ask for the next object (only a write behind the parsing lets that happen), every
    event and ledger record lands, and a second load skips every object."""
    from dataclasses import replace

    from siem.ledger import Recorder, SkipFinished, ledger_for
    from siem.sinks import EventQuery
    from siem.sinks.embedded import EmbeddedStore

    next_object = threading.Event()
    waited: list[bool] = []

    class Watching(EmbeddedStore):
        def write(self, events: list[Event]):
            if not waited:
                waited.append(next_object.wait(10))
            return super().write(events)

    def objects() -> list[SourceObject]:
        return [replace(flow_object(n), version=f"v{n}") for n in range(3)]

    def asked(listing: Iterator[SourceObject]) -> Iterator[SourceObject]:
        """The objects as the load asks for them (the ledger looks a listing up in batches ahead)."""
        for n, obj in enumerate(listing):
            if n == 1:
                next_object.set()
            yield obj

    store = Watching(tmp_path / "data")
    ledger = ledger_for(store)
    skip = SkipFinished(ledger)
    summary = run(asked(skip(objects())), store, dataset="aws.vpcflow", batch_size=LINES, committed=Recorder(ledger))
    assert waited == [True]
    assert (summary.written, summary.dead_lettered) == (3 * LINES, 0)
    assert store.count(EventQuery(size=1)) == 3 * LINES
    again = SkipFinished(ledger)
    assert list(again(objects())) == [] and again.skipped == 3
    store.close()
