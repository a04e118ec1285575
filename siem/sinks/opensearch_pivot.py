"""The pivot's questions asked of OpenSearch: structured term queries on ``<prefix>-events-*``.

Every value is a ``term`` (an IP field accepts a CIDR network as its term; user names are matched
with ``case_insensitive``), never text spliced into a query string. Pages within the first 10,000
hits use from/size; deeper pages walk a point-in-time with ``search_after`` (sorting on ``_id`` as
the last key makes the order total, identical to the embedded store's), so any page is reachable
without raising ``index.max_result_window``.
"""

from __future__ import annotations

from typing import Any

from siem.pivot.query import (
    ALERTS_SIZE,
    EXPAND_SIZE,
    MATCH_FIELDS,
    MAX_DATASETS,
    ROLES,
    Bins,
    DatasetStats,
    Entity,
    PivotQuery,
    expand_kinds,
    is_self,
)
from siem.sinks.opensearch import whole_search

WINDOW = 10_000  # index.max_result_window: from + size beyond it is refused
PIT_KEEP_ALIVE = "2m"
_IGNORE = {"ignore_unavailable": "true"}


def _term(entity: Entity, field: str) -> dict[str, Any]:
    if entity.kind == "user":
        return {"term": {field: {"value": entity.value, "case_insensitive": True}}}
    return {"term": {field: entity.value}}


def _entity_filter(entity: Entity) -> dict[str, Any]:
    return {"bool": {"should": [_term(entity, f) for f in MATCH_FIELDS[entity.kind]], "minimum_should_match": 1}}


def query_body(query: PivotQuery) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [_entity_filter(query.entity)]
    if query.start or query.end:
        bounds = {k: v for k, v in (("gte", query.start), ("lt", query.end)) if v}
        filters.append({"range": {"@timestamp": bounds}})
    if query.datasets:
        filters.append({"terms": {"event.dataset": list(query.datasets)}})
    return {"bool": {"filter": filters}}


def sort_keys(newest: bool) -> list[dict[str, Any]]:
    """Time, then where the record was (file, offset), then the document id: a total order."""
    order = "desc" if newest else "asc"
    return [
        {"@timestamp": {"order": order}},
        {"log.file.path": {"order": order, "unmapped_type": "keyword"}},
        {"log.offset": {"order": order, "unmapped_type": "long"}},
        {"_id": {"order": order}},
    ]


def dataset_stats(store: Any, query: PivotQuery) -> list[DatasetStats]:
    roles = {name: _term(query.entity, field) for name, field in ROLES[query.entity.kind]}
    body = {
        "size": 0,
        "query": query_body(query),
        "aggs": {
            "datasets": {
                "terms": {"field": "event.dataset", "size": MAX_DATASETS, "order": {"_key": "asc"}},
                "aggs": {
                    "first": {"min": {"field": "@timestamp"}},
                    "last": {"max": {"field": "@timestamp"}},
                    "roles": {"filters": {"filters": roles}},
                },
            }
        },
    }
    response = whole_search(store.client, index=store.events_pattern, body=body, params=_IGNORE)
    buckets = (response.get("aggregations") or {}).get("datasets", {}).get("buckets", [])
    return [
        DatasetStats(
            dataset=b["key"],
            count=b["doc_count"],
            first=b["first"].get("value_as_string"),
            last=b["last"].get("value_as_string"),
            roles=[name for name, _ in ROLES[query.entity.kind] if b["roles"]["buckets"][name]["doc_count"]],
        )
        for b in buckets
    ]


def _hits(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response["hits"]["hits"]


def timeline(store: Any, query: PivotQuery) -> list[dict[str, Any]]:
    """One page of documents in time order (newest first with query.newest)."""
    body: dict[str, Any] = {"query": query_body(query), "sort": sort_keys(query.newest)}
    if query.offset + query.limit <= WINDOW:
        body.update({"from": query.offset, "size": query.limit})
        response = whole_search(store.client, index=store.events_pattern, body=body, params=_IGNORE)
        return [{"_id": h["_id"], **h["_source"]} for h in _hits(response)]
    return _deep_page(store, body, query)


def _deep_page(store: Any, body: dict[str, Any], query: PivotQuery) -> list[dict[str, Any]]:
    """Skip ``offset`` hits by search_after over a point in time (sort values only, no sources), then
    read the page: memory stays one chunk of sort values whatever the depth."""
    pit = store.client.create_pit(index=store.events_pattern, params={"keep_alive": PIT_KEEP_ALIVE})
    pit_id = pit["pit_id"]
    try:
        after: list[Any] | None = None
        to_skip = query.offset
        while to_skip > 0:
            chunk = min(WINDOW, to_skip)
            hits = _pit_search(store, body, pit_id, after, chunk, source=False)
            if not hits:
                return []
            after = hits[-1]["sort"]
            to_skip -= len(hits)
        rows: list[dict[str, Any]] = []
        while len(rows) < query.limit:
            hits = _pit_search(store, body, pit_id, after, min(WINDOW, query.limit - len(rows)), source=True)
            if not hits:
                break
            rows += [{"_id": h["_id"], **h["_source"]} for h in hits]
            after = hits[-1]["sort"]
        return rows
    finally:
        store.client.delete_pit(body={"pit_id": [pit_id]}, params={"ignore": 404})


def _pit_search(
    store: Any, body: dict[str, Any], pit_id: str, after: list[Any] | None, size: int, source: bool
) -> list[dict[str, Any]]:
    request = {**body, "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE}, "size": size, "_source": source}
    if after is not None:
        request["search_after"] = after
    return _hits(whole_search(store.client, body=request))


def expand(store: Any, query: PivotQuery) -> dict[str, list[tuple[str, int]]]:
    """Users seen with an IP, IPs seen with a user (``related.*`` of the matching events), with counts."""
    fields = {"users": "related.user", "ips": "related.ip"}
    kinds = expand_kinds(query.entity.kind)
    # one more than shown per entity value the entity itself may take (a CIDR covers many IPs)
    size = EXPAND_SIZE + (EXPAND_SIZE if query.entity.is_cidr else 1)
    body = {
        "size": 0,
        "query": query_body(query),
        "aggs": {k: {"terms": {"field": fields[k], "size": size}} for k in kinds},
    }
    response = whole_search(store.client, index=store.events_pattern, body=body, params=_IGNORE)
    aggs = response.get("aggregations") or {}
    out: dict[str, list[tuple[str, int]]] = {}
    for kind in kinds:
        buckets = aggs.get(kind, {}).get("buckets", [])
        pairs = [(str(b["key"]), int(b["doc_count"])) for b in buckets]
        out[kind] = [p for p in pairs if not is_self(query.entity, kind, p[0])][:EXPAND_SIZE]
    return out


def alerts(store: Any, query: PivotQuery) -> list[dict[str, Any]]:
    """Alerts naming the entity in related.ip / related.user, most recently seen first."""
    field = {"ip": "related.ip", "user": "related.user"}.get(query.entity.kind)
    if field is None:  # alerts carry no trace ids
        return []
    body = {
        "query": {"bool": {"filter": [_term(query.entity, field)]}},
        "sort": [{"alert.last_seen": {"order": "desc", "unmapped_type": "date"}}],
        "size": ALERTS_SIZE,
    }
    response = whole_search(store.client, index=f"{store.prefix}-alerts", body=body, params=_IGNORE)
    return [h["_source"] for h in _hits(response)]


def histogram(store: Any, query: PivotQuery, bins: Bins) -> list[dict[str, int]]:
    """Events per time bin and dataset (a date_range with the bins' exact bounds, as the embedded store)."""
    ranges = [
        {"key": str(i), "from": bins.start_ms + i * bins.width_ms, "to": bins.start_ms + (i + 1) * bins.width_ms}
        for i in range(bins.count)
    ]
    body = {
        "size": 0,
        "query": query_body(query),
        "aggs": {
            "bins": {
                "date_range": {"field": "@timestamp", "format": "epoch_millis", "ranges": ranges, "keyed": True},
                "aggs": {"datasets": {"terms": {"field": "event.dataset", "size": MAX_DATASETS}}},
            }
        },
    }
    response = whole_search(store.client, index=store.events_pattern, body=body, params=_IGNORE)
    keyed = (response.get("aggregations") or {}).get("bins", {}).get("buckets", {})
    return [
        {b["key"]: b["doc_count"] for b in keyed.get(str(i), {}).get("datasets", {}).get("buckets", [])}
        for i in range(bins.count)
    ]
