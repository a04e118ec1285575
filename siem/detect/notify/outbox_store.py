"""Outbox storage on both stores, with the compare-and-set the delivery loop relies on.

A notification is one row/document, id = ``<alert id>:<route>:<kind>`` (deterministic, so
recording it twice is a no-op). Every change after the first write is a compare-and-set against
the version read, so two delivery loops never both claim the same notification:

* embedded — an ``outbox`` table in the same DuckDB file (created here, on ``store.db``), each
  outbox working on its own cursor; ``UPDATE ... WHERE id = ? AND version = ? RETURNING``
  (a concurrent writer of the same row gets DuckDB's transaction conflict: the claim is lost).
* OpenSearch — the ``<prefix>-outbox`` index; ``op_type=create`` to record, ``if_seq_no`` +
  ``if_primary_term`` to claim and finish; an explicit refresh after new records and after each
  delivery pass, so ``states()`` and ``pending()`` see them. The compare-and-set itself checks the
  latest version whatever the refresh state (and ``get`` is realtime): a stale search hit carries
  a stale seq_no, so acting on it fails with a version conflict instead of delivering twice.

No secret is ever stored: a record holds the alert document, the route NAME and delivery state.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from siem.sinks.opensearch import whole_search

STATES = ("pending", "sending", "delivered", "dead")
FINAL = frozenset({"delivered", "dead"})


class OutboxUnavailable(RuntimeError):
    """The outbox could not be written; the caller must not assume a notification is recorded."""


def notification_id(alert_id: str, route: str, kind: str) -> str:
    return f"{alert_id}:{route}:{kind}"


@dataclass
class Notification:
    id: str
    alert_id: str
    route: str
    kind: str  # trigger | resolve
    alert: dict[str, Any]  # the alert document as it was when recorded (no secrets)
    created_at: float  # unix seconds
    next_attempt_at: float
    state: str = "pending"  # pending | sending | delivered | dead
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float | None = None
    last_error: str | None = None
    last_status: int | None = None
    delivered_at: float | None = None
    updated_at: float | None = None

    def changed(self, **fields: Any) -> Notification:
        return replace(self, **fields)


_TIME_FIELDS = ("created_at", "next_attempt_at", "lease_until", "delivered_at", "updated_at")
_COLUMNS = (
    "id",
    "alert_id",
    "route",
    "kind",
    "state",
    "attempts",
    "created_at",
    "next_attempt_at",
    "lease_owner",
    "lease_until",
    "last_error",
    "last_status",
    "delivered_at",
    "updated_at",
)

_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id VARCHAR PRIMARY KEY,
    alert_id VARCHAR NOT NULL,
    route VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_owner VARCHAR,
    lease_until TIMESTAMPTZ,
    last_error VARCHAR,
    last_status INTEGER,
    delivered_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    alert JSON NOT NULL
)
"""


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_iso(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class EmbeddedOutboxStore:
    """The ``outbox`` table in the embedded store's DuckDB file."""

    def __init__(self, db: Any) -> None:
        import duckdb

        self._conflict = (duckdb.TransactionException, duckdb.ConstraintException)
        self.db = db.cursor()  # our own connection to the same database: safe to use from another thread
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute(_DDL)

    def _row(self, row: tuple[Any, ...]) -> tuple[Notification, int]:
        values = dict(zip((*_COLUMNS, "version", "alert"), row, strict=True))
        version = values.pop("version")
        alert = orjson.loads(values.pop("alert"))
        for name in _TIME_FIELDS:
            values[name] = _ts(values[name])
        return Notification(alert=alert, **values), version

    def _select(self, where: str, params: list[Any], limit: int | None = None) -> list[tuple[Notification, int]]:
        sql = f"SELECT {', '.join(_COLUMNS)}, version, alert FROM outbox WHERE {where}"
        sql += " ORDER BY created_at, kind DESC, id"  # a trigger before the resolve recorded with it
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._row(row) for row in self.db.execute(sql, params).fetchall()]

    def insert(self, records: list[Notification]) -> int:
        """Record notifications; existing ids are left exactly as they are. Returns how many were new."""
        unique = list({n.id: n for n in reversed(records)}.values())[::-1]  # first of each id, in order
        row = f"({', '.join('?' for _ in _COLUMNS)}, 1, ?)"
        new = 0
        for start in range(0, len(unique), 500):  # one statement per chunk: DuckDB pays per statement
            chunk = unique[start : start + 500]
            params = [v for n in chunk for v in (*self._values(n), orjson.dumps(n.alert).decode())]
            try:
                inserted = self.db.execute(
                    f"INSERT INTO outbox ({', '.join(_COLUMNS)}, version, alert) VALUES "
                    f"{', '.join(row for _ in chunk)} ON CONFLICT (id) DO NOTHING RETURNING id",
                    params,
                ).fetchall()
            except self._conflict:  # another writer recorded some of these at the same moment: one by one
                inserted = [i for n in chunk for i in self._insert_one(n)]
            new += len(inserted)
        return new

    def _insert_one(self, n: Notification) -> list[Any]:
        try:
            return self.db.execute(
                f"INSERT INTO outbox ({', '.join(_COLUMNS)}, version, alert) "
                f"VALUES ({', '.join('?' for _ in _COLUMNS)}, 1, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
                [*self._values(n), orjson.dumps(n.alert).decode()],
            ).fetchall()
        except self._conflict:
            return []  # recorded by the other writer

    @staticmethod
    def _values(n: Notification) -> list[Any]:
        data = asdict(n)
        return [_dt(data[c]) if c in _TIME_FIELDS else data[c] for c in _COLUMNS]

    def due(self, now: float, limit: int) -> list[tuple[Notification, Any]]:
        moment = _dt(now)
        return self._select(
            "(state = 'pending' AND next_attempt_at <= ?) OR (state = 'sending' AND lease_until <= ?)",
            [moment, moment],
            limit,
        )

    def compare_and_set(self, n: Notification, token: Any, refresh: bool = False) -> Any | None:
        """Write ``n`` if the row is still at version ``token``; the new token, or None if it moved on."""
        sets = ", ".join(f"{c} = ?" for c in _COLUMNS[4:])
        try:
            rows = self.db.execute(
                f"UPDATE outbox SET {sets}, version = version + 1 WHERE id = ? AND version = ? RETURNING version",
                [*self._values(n)[4:], n.id, token],
            ).fetchall()
        except self._conflict:
            return None
        return rows[0][0] if rows else None

    def refresh(self) -> None:
        """Writes are visible at once here."""

    def get(self, notification_id: str) -> tuple[Notification, Any] | None:
        rows = self._select("id = ?", [notification_id])
        return rows[0] if rows else None

    def by_alert(self, alert_id: str) -> list[Notification]:
        return [n for n, _ in self._select("alert_id = ?", [alert_id])]

    def by_state(self, states: tuple[str, ...], limit: int = 1000) -> list[Notification]:
        marks = ", ".join("?" for _ in states)
        return [n for n, _ in self._select(f"state IN ({marks})", list(states), limit)]


_MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        **{c: {"type": "keyword"} for c in ("id", "alert_id", "route", "kind", "state", "lease_owner")},
        **{c: {"type": "date", "format": "strict_date_optional_time||epoch_millis"} for c in _TIME_FIELDS},
        "attempts": {"type": "integer"},
        "last_status": {"type": "integer"},
        "last_error": {"type": "text"},
        "alert": {"type": "object", "enabled": False},  # kept as it was sent, never indexed
    },
}


class OpenSearchOutboxStore:
    """The ``<prefix>-outbox`` index."""

    def __init__(self, client: Any, prefix: str) -> None:
        from opensearchpy.exceptions import ConflictError, NotFoundError

        self._conflict = ConflictError
        self._not_found = NotFoundError
        self.client = client
        self.index = f"{prefix}-outbox"
        if not client.indices.exists(index=self.index):
            with contextlib.suppress(Exception):  # created meanwhile by another process: fine
                client.indices.create(
                    index=self.index, body={"settings": {"number_of_shards": 1}, "mappings": _MAPPINGS}
                )
            if not client.indices.exists(index=self.index):
                raise OutboxUnavailable(f"could not create the outbox index {self.index}")

    @staticmethod
    def _doc(n: Notification) -> dict[str, Any]:
        data = asdict(n)
        for name in _TIME_FIELDS:
            data[name] = _iso(data[name])
        return data

    @staticmethod
    def _record(hit: dict[str, Any]) -> tuple[Notification, Any]:
        data = dict(hit["_source"])
        for name in _TIME_FIELDS:
            data[name] = _from_iso(data.get(name))
        return Notification(**data), (hit["_seq_no"], hit["_primary_term"])

    def insert(self, records: list[Notification]) -> int:
        if not records:
            return 0
        body = bytearray()
        for n in records:
            body += orjson.dumps({"create": {"_index": self.index, "_id": n.id}}) + b"\n"
            body += orjson.dumps(self._doc(n)) + b"\n"
        response = self.client.bulk(body=bytes(body), params={"refresh": "false"})
        new = 0
        for item in response["items"]:
            result = item["create"]
            if result["status"] < 300:
                new += 1
            elif result["status"] != 409:  # 409: already recorded, which is the point
                raise OutboxUnavailable(f"outbox record not stored: HTTP {result['status']}: {result.get('error')}")
        if new:  # an explicit refresh, and only when something was recorded (re-recording is common)
            self.refresh()
        return new

    def _search(self, query: dict[str, Any], size: int) -> list[tuple[Notification, Any]]:
        """Up to ``size`` records in delivery order, paged with search_after (past max_result_window)."""
        found: list[tuple[Notification, Any]] = []
        after: list[Any] | None = None
        while len(found) < size:
            body: dict[str, Any] = {
                "query": query,
                "sort": [{"created_at": "asc"}, {"kind": "desc"}, {"id": "asc"}],
                "size": min(1000, size - len(found)),
                "seq_no_primary_term": True,
            }
            if after is not None:
                body["search_after"] = after
            hits = whole_search(self.client, index=self.index, body=body)["hits"]["hits"]
            found.extend(self._record(hit) for hit in hits)
            if len(hits) < body["size"]:
                break
            after = hits[-1]["sort"]
        return found

    def due(self, now: float, limit: int) -> list[tuple[Notification, Any]]:
        moment = _iso(now)
        waiting = [{"term": {"state": "pending"}}, {"range": {"next_attempt_at": {"lte": moment}}}]
        abandoned = [{"term": {"state": "sending"}}, {"range": {"lease_until": {"lte": moment}}}]
        query = {
            "bool": {
                "should": [{"bool": {"filter": waiting}}, {"bool": {"filter": abandoned}}],
                "minimum_should_match": 1,
            }
        }
        return self._search(query, limit)

    def compare_and_set(self, n: Notification, token: Any, refresh: bool = False) -> Any | None:
        seq_no, primary_term = token
        try:
            response = self.client.index(
                index=self.index,
                id=n.id,
                body=self._doc(n),
                params={
                    "if_seq_no": seq_no,
                    "if_primary_term": primary_term,
                    "refresh": "true" if refresh else "false",
                },
            )
        except self._conflict:
            return None
        return response["_seq_no"], response["_primary_term"]

    def refresh(self) -> None:
        self.client.indices.refresh(index=self.index)

    def get(self, notification_id: str) -> tuple[Notification, Any] | None:
        try:
            hit = self.client.get(index=self.index, id=notification_id)  # realtime: sees unrefreshed writes
        except self._not_found:
            return None
        return self._record(hit)

    def by_alert(self, alert_id: str) -> list[Notification]:
        return [n for n, _ in self._search({"term": {"alert_id": alert_id}}, 1000)]

    def by_state(self, states: tuple[str, ...], limit: int = 1000) -> list[Notification]:
        return [n for n, _ in self._search({"terms": {"state": list(states)}}, limit)]


def open_outbox_store(store: Any) -> EmbeddedOutboxStore | OpenSearchOutboxStore:
    """The outbox beside a Store: the same DuckDB file, or ``<prefix>-outbox`` on the same cluster."""
    if isinstance(store, EmbeddedOutboxStore | OpenSearchOutboxStore):
        return store
    if hasattr(store, "db"):
        return EmbeddedOutboxStore(store.db)
    if hasattr(store, "client") and hasattr(store, "prefix"):
        return OpenSearchOutboxStore(store.client, store.prefix)
    raise TypeError(f"no outbox storage for {type(store).__name__}")
