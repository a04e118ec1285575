"""Where alerts and per-rule checkpoints live: next to the events, in the same store.

* embedded: tables ``alerts`` and ``detect_checkpoints`` in the store's DuckDB file; a cycle's
  alerts and checkpoints are written in **one transaction**.
* OpenSearch: the ``<prefix>-alerts`` index (template ``index_templates/alerts.json``; the alert id
  is the document ``_id``) and ``<prefix>-detect-state`` (one document per rule id). Alerts are
  written first, checkpoints after: a crash between the two re-runs the window and rebuilds the
  same alerts (their ids and contents are deterministic), so nothing is lost or repeated.

Reads by id are real-time on both (``mget``), so a cycle sees the previous cycle's writes without
waiting for a refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from siem.detect.alerts import STATUSES
from siem.detect.engines import Scope
from siem.sinks.opensearch import whole_search

_TABLES = """
CREATE TABLE IF NOT EXISTS alerts (
    id VARCHAR PRIMARY KEY, rule_id VARCHAR, status VARCHAR, last_seen VARCHAR, detected VARCHAR, doc JSON
);
CREATE TABLE IF NOT EXISTS detect_checkpoints (rule_id VARCHAR PRIMARY KEY, checkpoint VARCHAR);
"""


class AlertState(Protocol):
    def get(self, ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def checkpoints(self, rule_ids: list[str]) -> dict[str, str]: ...

    def save(self, alerts: list[dict[str, Any]], checkpoints: dict[str, str]) -> None:
        """Alerts first, then the checkpoints (never the other way round)."""
        ...

    def search(
        self, status: str | None = None, rule: str | None = None, since: str | None = None, size: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, most recently seen first."""
        ...

    def refresh(self) -> None: ...


def open_state(store: Any) -> AlertState:
    if store.name == "opensearch":
        return OpenSearchState(store.client, store.prefix)
    return EmbeddedState(store.db)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class EmbeddedState:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.db.execute(_TABLES)

    def get(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(ids)), 5000):
            rows = self.db.execute("SELECT id, doc FROM alerts WHERE list_contains(?, id)", [chunk]).fetchall()
            out.update({row[0]: orjson.loads(row[1]) for row in rows})
        return out

    def checkpoints(self, rule_ids: list[str]) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT rule_id, checkpoint FROM detect_checkpoints WHERE list_contains(?, rule_id)", [list(rule_ids)]
        ).fetchall()
        return dict(rows)

    def save(self, alerts: list[dict[str, Any]], checkpoints: dict[str, str]) -> None:
        if not alerts and not checkpoints:
            return
        self.db.execute("BEGIN")
        try:
            if alerts:
                columns = [
                    [a["alert"]["id"] for a in alerts],
                    [a["rule"]["id"] for a in alerts],
                    [a["alert"]["status"] for a in alerts],
                    [a["alert"]["last_seen"] for a in alerts],
                    [a.get("@timestamp") for a in alerts],
                    [orjson.dumps(a).decode() for a in alerts],
                ]
                self.db.execute(
                    "INSERT OR REPLACE INTO alerts SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),"
                    " unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON",
                    columns,
                )
            if checkpoints:
                self.db.execute(
                    "INSERT OR REPLACE INTO detect_checkpoints SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                    [list(checkpoints), list(checkpoints.values())],
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def search(
        self, status: str | None = None, rule: str | None = None, since: str | None = None, size: int = 100
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if rule:
            clauses.append("(rule_id = ? OR doc->>'$.rule.name' = ?)")
            params += [rule, rule]
        if since:
            clauses.append("last_seen::TIMESTAMPTZ >= ?::TIMESTAMPTZ")
            params.append(since)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.execute(
            f"SELECT doc FROM alerts{where} ORDER BY last_seen::TIMESTAMPTZ DESC, id LIMIT ?", [*params, size]
        ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def refresh(self) -> None:
        self.db.execute("CHECKPOINT")


class OpenSearchState:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.alerts_index = f"{prefix}-alerts"
        self.state_index = f"{prefix}-detect-state"
        self._state_ready = False

    def _mget(self, index: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(ids)), 2000):
            response = self.client.mget(index=index, body={"ids": chunk}, params={"ignore": 404})
            for doc in response.get("docs", []):
                if doc.get("found"):
                    out[doc["_id"]] = doc["_source"]
        return out

    def get(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return self._mget(self.alerts_index, ids)

    def checkpoints(self, rule_ids: list[str]) -> dict[str, str]:
        if not rule_ids:
            return {}
        return {k: v["checkpoint"] for k, v in self._mget(self.state_index, rule_ids).items()}

    def _ensure_state_index(self) -> None:
        if self._state_ready:
            return
        body = {
            "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "auto_expand_replicas": "0-1"}},
            "mappings": {
                "dynamic": "strict",
                "properties": {"rule_id": {"type": "keyword"}, "checkpoint": {"type": "date"}},
            },
        }
        self.client.indices.create(index=self.state_index, body=body, params={"ignore": 400})
        self._state_ready = True

    def _bulk(self, index: str, docs: list[tuple[str, dict[str, Any]]]) -> None:
        from siem.sinks.opensearch import StoreUnavailable

        for chunk in _chunks(docs, 5000):
            body = b"".join(
                orjson.dumps({"index": {"_index": index, "_id": i}}) + b"\n" + orjson.dumps(d) + b"\n" for i, d in chunk
            )
            response = self.client.bulk(body=body)
            if response.get("errors"):
                failed = [next(iter(x.values())) for x in response["items"] if next(iter(x.values()))["status"] >= 300]
                raise StoreUnavailable(f"{len(failed)} documents not stored in {index}: {failed[0].get('error')}")

    def save(self, alerts: list[dict[str, Any]], checkpoints: dict[str, str]) -> None:
        if alerts:
            self._bulk(self.alerts_index, [(a["alert"]["id"], a) for a in alerts])
        if checkpoints:
            self._ensure_state_index()
            self._bulk(self.state_index, [(r, {"rule_id": r, "checkpoint": c}) for r, c in checkpoints.items()])

    def search(
        self, status: str | None = None, rule: str | None = None, since: str | None = None, size: int = 100
    ) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        if status:
            filters.append({"term": {"alert.status": status}})
        if rule:
            filters.append({"bool": {"should": [{"term": {"rule.id": rule}}, {"term": {"rule.name": rule}}]}})
        if since:
            filters.append({"range": {"alert.last_seen": {"gte": since}}})
        body = {
            "query": {"bool": {"filter": filters}},
            "sort": [{"alert.last_seen": "desc"}, {"alert.id": "asc"}],
            "size": size,
        }
        response = whole_search(self.client, index=self.alerts_index, body=body, params={"ignore_unavailable": "true"})
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def refresh(self) -> None:
        self.client.indices.refresh(index=self.alerts_index, params={"ignore_unavailable": "true"})


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"unknown alert status {status!r}; one of {', '.join(STATUSES)}")
    return status


def store_counter(store: Any) -> Callable[[Scope], int]:
    """How many events a scope covers (the "events scanned" of a cycle), on either store."""

    def count(scope: Scope) -> int:
        if store.name == "opensearch":
            ranges = [
                {"range": {name: {"gte": b[0], "lt": b[1]}}}
                for name, b in (("event.ingested", scope.ingested), ("@timestamp", scope.timestamp))
                if b is not None
            ]
            body = {"query": {"bool": {"filter": ranges}}}
            response = store.client.count(index=store.events_pattern, body=body, params={"ignore_unavailable": "true"})
            return int(response["count"])
        clauses, params = [], []
        if scope.ingested is not None:
            clauses.append("ingested >= ?::TIMESTAMPTZ AND ingested < ?::TIMESTAMPTZ")
            params += list(scope.ingested)
        if scope.timestamp is not None:
            clauses.append("ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ")
            params += list(scope.timestamp)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return int(store.db.execute(f"SELECT count(*) FROM events{where}", params).fetchone()[0])

    return count
