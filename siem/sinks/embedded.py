"""Embedded store: one DuckDB file under the data directory, used when no OpenSearch URL is set.

It answers the same questions as the OpenSearch store (time range, dataset, IP, user) so an
analyst with a laptop and an `aws s3 sync` can pivot without a cluster. Batches are staged as
NDJSON and loaded with DuckDB's JSON reader, which is far faster than row-by-row inserts. Re-loads
stay idempotent by replacing rows with the same document ID (delete + insert in one transaction,
about twice as fast as a primary-key ``INSERT OR REPLACE`` when most rows already exist).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

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
    doc JSON,
    ingested TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS dead_letters (
    recorded_at TIMESTAMPTZ, path VARCHAR, "offset" BIGINT, stage VARCHAR, reason VARCHAR,
    dataset VARCHAR, event_id VARCHAR, raw VARCHAR,
    PRIMARY KEY (path, "offset", stage)
);
"""
_COLUMNS = (
    "{id: 'VARCHAR', ts: 'TIMESTAMPTZ', dataset: 'VARCHAR', source_ip: 'VARCHAR', user_name: 'VARCHAR',"
    " related_ip: 'VARCHAR[]', related_user: 'VARCHAR[]', doc: 'JSON', ingested: 'VARCHAR'}"
)
# Databases created before the ``ingested`` column (detection cycles select on it): add and backfill.
_MIGRATE_INGESTED = """
ALTER TABLE events ADD COLUMN IF NOT EXISTS ingested TIMESTAMPTZ;
UPDATE events SET ingested = TRY_CAST(json_extract_string(doc, '$.event.ingested') AS TIMESTAMPTZ)
WHERE ingested IS NULL;
"""


class EmbeddedStore:
    name = "embedded"
    batch_size = 20000  # DuckDB pays per statement, not per row: bigger batches load faster

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "events.duckdb"
        self.db = duckdb.connect(str(self.path))
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute(_SCHEMA)
        present = self.db.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = 'events' AND column_name = 'ingested'"
        ).fetchone()
        if not present or not present[0]:
            self.db.execute(_MIGRATE_INGESTED)

    def write(self, events: list[Event]) -> list[DeadLetter]:
        if not events:
            return []
        with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", dir=self.data_dir, delete=False) as staging:
            for e in events:
                doc = e.doc
                staging.write(
                    orjson.dumps(
                        {
                            "id": e.id,
                            "ts": doc.get("@timestamp"),
                            "dataset": e.dataset,
                            "source_ip": (doc.get("source") or {}).get("ip"),
                            "user_name": (doc.get("user") or {}).get("name"),
                            "related_ip": (doc.get("related") or {}).get("ip"),
                            "related_user": (doc.get("related") or {}).get("user"),
                            "doc": doc,
                            "ingested": (doc.get("event") or {}).get("ingested"),
                        }
                    )
                )
                staging.write(b"\n")
        try:
            self.db.execute("BEGIN")
            self.db.execute(
                "CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM "
                f"read_json(?, format='newline_delimited', columns={_COLUMNS})",
                [staging.name],
            )
            self.db.execute("DELETE FROM events WHERE id IN (SELECT id FROM staged)")
            # an unparsable event.ingested is no ingested time (the event is still stored)
            self.db.execute(
                "INSERT INTO events BY NAME"
                " SELECT * REPLACE (TRY_CAST(ingested AS TIMESTAMPTZ) AS ingested) FROM staged"
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            Path(staging.name).unlink(missing_ok=True)
        return []

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        now = utc_now_iso()
        self.db.executemany(
            "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(now, d.path, d.offset, d.stage, d.reason, d.dataset, d.id, d.raw) for d in letters],
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
        return int(self.db.execute(f"SELECT count(*) FROM events{where}", params).fetchone()[0])

    def dead_letters(self, size: int = 100) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            'SELECT path, "offset", stage, reason, dataset, event_id, raw FROM dead_letters '
            'ORDER BY path, "offset" LIMIT ?',
            [size],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def refresh(self) -> None:
        self.db.execute("CHECKPOINT")

    def close(self) -> None:
        self.db.close()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
