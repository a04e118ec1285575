"""How the embedded store keeps what a load writes: documents zstd-compressed, and the write-ahead
log checkpointed as the load goes, with the ledger open beside the writing cursor.

Measured (20k events, 5,000 a batch): zstd on the document column made checkpoints 2-4x cheaper and
the file 3.7x (ALB) to 23x (CloudTrail) smaller than DuckDB's default string compression; a JSON
scan and a pivot cost about the same. A checkpoint needs no other write transaction open: a query
result read only in part on the store's connection kept one open, and the WAL then grew for the
whole load (memory with it)."""

from __future__ import annotations

from pathlib import Path

from siem.ledger import ledger_for
from siem.pipeline import Event
from siem.sinks.embedded import EmbeddedStore


def _events(start: int, n: int) -> list[Event]:
    return [
        Event(
            f"e{i}",
            "aws.alb",
            {"@timestamp": "2024-05-01T00:00:00Z", "message": f"request {i} " + "abcdefgh" * 250},
        )
        for i in range(start, start + n)
    ]


def test_a_new_store_keeps_documents_zstd_compressed(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    store.write(_events(0, 3000))
    store.refresh()
    compressions = store.db.execute(
        "SELECT DISTINCT compression FROM pragma_storage_info('events') WHERE column_name = 'doc'"
        " AND segment_type = 'JSON'"
    ).fetchall()
    assert compressions == [("ZSTD",)]
    store.close()


def test_the_write_ahead_log_is_checkpointed_during_a_load_with_the_ledger_open(tmp_path: Path) -> None:
    """~30 MB of documents in 15 batches: DuckDB checkpoints once the log passes 16 MB, so it never
    holds much more than that plus one batch (2 MB)."""
    store = EmbeddedStore(tmp_path)
    ledger_for(store)  # as `siem load` opens it: lookups on the store's connection, writes on the cursor
    wal = tmp_path / "events.duckdb.wal"
    largest = 0
    for batch in range(15):
        store.write(_events(batch * 1000, 1000))
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    assert largest < 20_000_000, f"the WAL reached {largest / 1e6:.1f} MB: no checkpoint ran"
    store.close()
