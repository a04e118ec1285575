"""Embedded store: one DuckDB file under the data directory, used when no OpenSearch URL is set.

It answers the same questions as the OpenSearch store (time range, dataset, IP, user) so an
analyst with a laptop and an `aws s3 sync` can pivot without a cluster. Batches are staged as
NDJSON and loaded with DuckDB's JSON reader, which is far faster than row-by-row inserts (dead letters
too: ``executemany`` managed ~100 rows/s). Re-loads stay idempotent by replacing rows with the same
document ID (delete + insert in one transaction, about twice as fast as a primary-key ``INSERT OR
REPLACE`` when most rows already exist).

Memory is bounded whatever the input size: DuckDB's buffer pool is capped (``embedded.memory_limit``;
by default DuckDB takes 80% of RAM and keeps every page it touched, which made a load's RSS grow with
the store), and batches are small enough that the Python side stays a few tens of MB. Staging files
live in ``<data_dir>/staging``; a process killed mid-batch leaves one behind, and the next writer
(which holds DuckDB's exclusive lock, so no other writer can be using it) deletes it on open.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from siem import limits
from siem.normalize import utc_now_iso
from siem.pipeline import DeadLetter, Event
from siem.sinks import EventQuery

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id VARCHAR,
    ts TIMESTAMPTZ,
    dataset VARCHAR,
    source_ip VARCHAR,
    user_name VARCHAR,
    related_ip VARCHAR[],
    related_user VARCHAR[],
    doc JSON USING COMPRESSION zstd,
    ingested TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS dead_letters (
    recorded_at TIMESTAMPTZ, path VARCHAR, "offset" BIGINT, stage VARCHAR, reason VARCHAR,
    dataset VARCHAR, event_id VARCHAR, raw VARCHAR, letter_id VARCHAR PRIMARY KEY
);
"""
# A dead letter's identity: where (path, offset, stage) is not enough, several bad records share an
# offset (the records of one CloudWatch Logs document), so what and why are part of it too. The same
# object loaded twice gives the same letters, stored once. A document the store rejected is known by
# its (deterministic) event id instead: its raw carries event.ingested, new on every run. Computed in
# SQL when migrating, so it
# must match letter_id() byte for byte.
_LETTER_ID_SQL = (
    "md5(concat_ws(chr(31), coalesce(path, ''), CAST(\"offset\" AS VARCHAR), coalesce(stage, ''),"
    " CASE WHEN event_id IS NULL THEN concat_ws(chr(31), coalesce(reason, ''), coalesce(raw, ''))"
    " ELSE 'event' || chr(31) || event_id END))"
)
# Stores made when the identity was (path, offset, stage): rebuild the table under the new key.
_MIGRATE_LETTER_ID = f"""
ALTER TABLE dead_letters RENAME TO dead_letters_v1;
CREATE TABLE dead_letters (
    recorded_at TIMESTAMPTZ, path VARCHAR, "offset" BIGINT, stage VARCHAR, reason VARCHAR,
    dataset VARCHAR, event_id VARCHAR, raw VARCHAR, letter_id VARCHAR PRIMARY KEY
);
INSERT OR REPLACE INTO dead_letters SELECT *, {_LETTER_ID_SQL} FROM dead_letters_v1;
DROP TABLE dead_letters_v1;
"""
_COLUMNS = (
    "{id: 'VARCHAR', ts: 'TIMESTAMPTZ', dataset: 'VARCHAR', source_ip: 'VARCHAR', user_name: 'VARCHAR',"
    " related_ip: 'VARCHAR[]', related_user: 'VARCHAR[]', doc: 'JSON', ingested: 'VARCHAR'}"
)
_LETTER_COLUMNS = (
    "{recorded_at: 'TIMESTAMPTZ', path: 'VARCHAR', 'offset': 'BIGINT', stage: 'VARCHAR', reason: 'VARCHAR',"
    " dataset: 'VARCHAR', event_id: 'VARCHAR', raw: 'VARCHAR', letter_id: 'VARCHAR'}"
)
# Databases created before the ``ingested`` column (detection cycles select on it): add and backfill.
_MIGRATE_INGESTED = """
ALTER TABLE events ADD COLUMN IF NOT EXISTS ingested TIMESTAMPTZ;
UPDATE events SET ingested = TRY_CAST(json_extract_string(doc, '$.event.ingested') AS TIMESTAMPTZ)
WHERE ingested IS NULL;
"""


def letter_id(letter: DeadLetter) -> str:
    """The stored identity of a dead letter (see _LETTER_ID_SQL)."""
    what = ("event", letter.id) if letter.id else (letter.reason, letter.raw or "")
    parts = (letter.path, str(letter.offset), letter.stage, *what)
    return hashlib.md5("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()


class StoreInUse(RuntimeError):
    """Another process holds the DuckDB file (DuckDB allows one writer, or several readers)."""


def _connect(path: Path, read_only: bool, memory_limit: str) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit})
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        pid = re.search(r"\(PID (\d+)\)", str(exc))
        holder = f" (PID {pid.group(1)})" if pid else ""
        raise StoreInUse(
            f"the embedded store {path} is in use by another process{holder}: wait for it to finish, "
            "or point SIEM_DATA_DIR elsewhere"
        ) from None


class EmbeddedStore:
    name = "embedded"
    # written behind the parsing (pipeline.run): every write goes through `writer`, a cursor of its
    # own (DuckDB connections are not shared between threads), while the parsing thread's reads (the
    # ledger's lookups) use `db`; DuckDB releases the GIL, so its statements run beside the parsing
    concurrent = True
    # Writing behind holds up to three batches, of bytes and columns only (Event.compact).
    # bench/load_workers.py's input (144k events, one worker): 5000 a batch loaded in 15.9-16.2 s at
    # 280-283 MB peak, 2500 in 17.2-17.6 s at 261 MB.
    batch_size = 5000

    def __init__(
        self,
        data_dir: str | Path,
        read_only: bool = False,
        memory_limit: str = limits.EMBEDDED_MEMORY_LIMIT,
        detect_memory_limit: str = limits.DETECT_MEMORY_LIMIT,
    ) -> None:
        """read_only: for commands that only query (pivot, dead-letters); several can run at once, and a
        store never loaded reads as empty without being created. memory_limit: DuckDB's buffer pool (a size
        such as "128MB", validated by the config); a statement needing more spills to disk or fails.
        detect_memory_limit: the cap a detection engine on this store raises it to."""
        self.data_dir = Path(data_dir)
        self.detect_memory_limit = detect_memory_limit
        self.path = self.data_dir / "events.duckdb"
        self.staging_dir = self.data_dir / "staging"
        self.writer: duckdb.DuckDBPyConnection | None = None  # a read-only store writes nothing
        if read_only and self.path.exists():
            self.db = _connect(self.path, read_only=True, memory_limit=memory_limit)
            self.db.execute("SET TimeZone = 'UTC'")
            return
        if read_only:
            self.db = duckdb.connect(":memory:", config={"memory_limit": memory_limit})
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.db = _connect(self.path, read_only=False, memory_limit=memory_limit)
            self._clear_staging()
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute(_SCHEMA)
        if not self._has_column("events", "ingested"):
            self.db.execute(_MIGRATE_INGESTED)
        if not self._has_column("dead_letters", "letter_id"):
            self.db.execute("BEGIN")
            self.db.execute(_MIGRATE_LETTER_ID)
            self.db.execute("COMMIT")
        self.writer = self.db.cursor()  # events, dead letters and the ledger's records are written here
        self.writer.execute("SET TimeZone = 'UTC'")

    def _has_column(self, table: str, column: str) -> bool:
        # fetchall, not fetchone: a result read only in part keeps its transaction open, and an open
        # transaction on this connection stops every checkpoint of the writing cursor (the WAL and
        # memory then grow for the whole load)
        ((count,),) = self.db.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = ? AND column_name = ?",
            [table, column],
        ).fetchall()
        return bool(count)

    def _clear_staging(self) -> None:
        """Delete staging files a killed writer left behind. Only called with DuckDB's write lock held:
        no other writer of this store exists, so every file here belongs to a dead process. Versions before
        the staging directory staged as ``tmp*.ndjson`` in the data directory itself."""
        leftovers = [*self.data_dir.glob("tmp*.ndjson")]
        if self.staging_dir.is_dir():
            leftovers += self.staging_dir.glob("*.ndjson")
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)

    @contextmanager
    def _staged(self, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
        """The rows as an NDJSON file for DuckDB's reader, deleted once the statement that reads it is done."""
        self.staging_dir.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", dir=self.staging_dir, delete=False) as staging:
            for row in rows:
                staging.write(orjson.dumps(row))
                staging.write(b"\n")
        try:
            yield staging.name
        finally:
            Path(staging.name).unlink(missing_ok=True)

    @staticmethod
    def encode(e: Event) -> bytes:
        """One event as its staging NDJSON line; `siem load --workers` builds these in the parse processes,
        so the single writer only copies bytes into the staging file."""
        columns = e.columns
        row = {
            "id": e.id,
            "ts": columns.timestamp,
            "dataset": e.dataset,
            "source_ip": columns.source_ip,
            "user_name": columns.user_name,
            "related_ip": columns.related_ip,
            "related_user": columns.related_user,
            "doc": e.doc if e.raw is None else orjson.Fragment(e.raw),  # serialised once, copied as is
            "ingested": columns.ingested,
        }
        return orjson.dumps(row) + b"\n"

    def write(self, events: list[Event]) -> list[DeadLetter]:
        return self.write_encoded([self.encode(e) for e in events])

    def write_encoded(self, lines: list[bytes]) -> list[DeadLetter]:
        """Store events already encoded (encode); nothing is rejected here."""
        if not lines:
            return []
        self.staging_dir.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", dir=self.staging_dir, delete=False) as staging:
            staging.write(b"".join(lines))  # one call: a write per line would wait for the GIL after each
        try:
            self._load_staged(staging.name)
        finally:
            Path(staging.name).unlink(missing_ok=True)
        return []

    def _load_staged(self, staging: str) -> None:
        try:
            self.writer.execute("BEGIN")
            self.writer.execute(
                "CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM "
                f"read_json(?, format='newline_delimited', columns={_COLUMNS})",
                [staging],
            )
            self.writer.execute("DELETE FROM events WHERE id IN (SELECT id FROM staged)")
            # an unparsable event.ingested is no ingested time (the event is still stored)
            self.writer.execute(
                "INSERT INTO events BY NAME"
                " SELECT * REPLACE (TRY_CAST(ingested AS TIMESTAMPTZ) AS ingested) FROM staged"
            )
            self.writer.execute("DROP TABLE staged")
            self.writer.execute("COMMIT")
        except BaseException:
            self.writer.execute("ROLLBACK")
            raise

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        """All letters in one statement from a staging file. Letters with the same identity (the same bad
        record reported twice) are one row: DuckDB refuses to replace a row twice in one statement."""
        if not letters:
            return
        now = utc_now_iso()
        unique = {letter_id(d): d for d in letters}
        rows = (
            {
                "recorded_at": now,
                "path": d.path,
                "offset": d.offset,
                "stage": d.stage,
                "reason": d.reason,
                "dataset": d.dataset,
                "event_id": d.id,
                "raw": d.raw,
                "letter_id": key,
            }
            for key, d in unique.items()
        )
        with self._staged(rows) as staging:
            self.writer.execute(
                "INSERT OR REPLACE INTO dead_letters SELECT * FROM "
                f"read_json(?, format='newline_delimited', columns={_LETTER_COLUMNS})",
                [staging],
            )

    @staticmethod
    def _where(query: EventQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.start:
            clauses.append("ts >= ?")
            params.append(_instant(query.start))
        if query.end:
            clauses.append("ts < ?")
            params.append(_instant(query.end))
        if query.datasets:
            clauses.append(f"dataset IN ({', '.join('?' for _ in query.datasets)})")
            params.extend(query.datasets)
        if query.ip:
            clauses.append("list_contains(related_ip, ?)")
            params.append(query.ip)
        if query.user:
            clauses.append("list_contains(related_user, ?)")
            params.append(query.user)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def search(self, query: EventQuery) -> list[dict[str, Any]]:
        where, params = self._where(query)
        rows = self.db.execute(
            f"SELECT id, doc FROM events{where} ORDER BY ts, id LIMIT ?", [*params, query.size]
        ).fetchall()
        return [{"_id": row[0], **orjson.loads(row[1])} for row in rows]

    def count(self, query: EventQuery) -> int:
        where, params = self._where(query)
        ((count,),) = self.db.execute(f"SELECT count(*) FROM events{where}", params).fetchall()  # see _has_column
        return int(count)

    def dead_letters(self, size: int = 100) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            'SELECT path, "offset", stage, reason, dataset, event_id, raw FROM dead_letters '
            'ORDER BY path, "offset", reason LIMIT ?',
            [size],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def refresh(self) -> None:
        self.db.execute("CHECKPOINT")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.db.close()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
