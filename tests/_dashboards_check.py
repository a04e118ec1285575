"""Read the committed saved objects the way OpenSearch Dashboards would, for the dashboards tests.

Everything here starts from ``dashboards/siem.ndjson`` (the artifact users import), never from the
spec that generated it: which fields each object uses, which index template mapping each pattern
resolves to, and the OpenSearch request Dashboards sends for a visualization (filters in
bool.filter / must_not, bucket aggregations nested in order, the metric at the leaf).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from siem.templates import load_templates

REPO = Path(__file__).resolve().parents[1]
NDJSON = REPO / "dashboards" / "siem.ndjson"
FIELDS_CATALOG = REPO / "siem" / "detect" / "fields.txt"
# what each aggregation needs of its field; a field only shown (column, filter, format) needs to exist
AGGREGATABLE = {"keyword", "long", "integer", "short", "byte", "double", "float", "date", "ip", "boolean"}
NEEDS = {"geohash_grid": {"geo_point"}, "date_histogram": {"date"}}
BUCKETS = {"date_histogram", "terms", "range", "geohash_grid"}


def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_id(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in objs}


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def pattern_of(obj: dict[str, Any]) -> str:
    """The index-pattern id an object's search source points at (through its references)."""
    ref_name = search_source(obj)["indexRefName"]
    return next(r["id"] for r in obj["references"] if r["name"] == ref_name)


def filter_query(flt: dict[str, Any]) -> dict[str, Any]:
    """A stored filter pill's DSL: under "query" for phrase/phrases/custom, at the top level for exists/range."""
    for key in ("query", "exists", "range"):
        if key in flt:
            return flt["query"] if key == "query" else {key: flt[key]}
    raise AssertionError(f"filter without a query: {flt}")


def filter_fields(flt: dict[str, Any]) -> list[str]:
    meta = flt["meta"]
    if meta["type"] != "custom":
        return [meta["key"]]
    query = flt["query"]
    clause = next(iter(query.values()))
    return list(clause)


def bool_query(filters: list[dict[str, Any]]) -> dict[str, Any]:
    """How Dashboards combines enabled pills: positive ones in filter, negated ones in must_not."""
    active = [f for f in filters if not f["meta"].get("disabled")]
    return {
        "bool": {
            "filter": [filter_query(f) for f in active if not f["meta"]["negate"]],
            "must_not": [filter_query(f) for f in active if f["meta"]["negate"]],
        }
    }


def vis_aggs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(obj["attributes"]["visState"])["aggs"]


def fields_used(obj: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(field, aggregation type or None) for every field a visualization, search or index pattern names."""
    kind, attrs = obj["type"], obj["attributes"]
    if kind == "index-pattern":
        formats = json.loads(attrs.get("fieldFormatMap") or "{}")
        return [(attrs["timeFieldName"], "date_histogram")] + [(f, None) for f in formats]
    if kind == "dashboard":
        return []
    used: list[tuple[str, str | None]] = [(f, None) for flt in search_source(obj)["filter"] for f in filter_fields(flt)]
    if kind == "search":
        used += [(c, None) for c in attrs["columns"]] + [(s[0], None) for s in attrs["sort"]]
    else:
        used += [(a["params"]["field"], a["type"]) for a in vis_aggs(obj) if "field" in a["params"]]
    return used


def _merge(into: dict[str, Any], mappings: dict[str, Any]) -> None:
    for key, value in mappings.items():
        if key == "properties":
            props = into.setdefault("properties", {})
            for name, sub in value.items():
                _merge(props.setdefault(name, {}), sub)
        elif key == "dynamic_templates":
            into.setdefault("dynamic_templates", []).extend(value)
        else:
            into[key] = value


def composed_mapping(index_name: str, prefix: str = "siem") -> dict[str, Any]:
    """The mapping an index gets from index_templates/: its highest-priority template, components first."""
    components, indexes = load_templates(prefix)
    matching = [t for t in indexes.values() if any(fnmatch.fnmatch(index_name, p) for p in t["index_patterns"])]
    assert matching, f"no index template matches {index_name}"
    template = max(matching, key=lambda t: t.get("priority", 0))
    mapping: dict[str, Any] = {}
    for name in template.get("composed_of", []):
        _merge(mapping, components[name].get("template", {}).get("mappings", {}))
    _merge(mapping, template.get("template", {}).get("mappings", {}))
    return mapping


def resolve(mapping: dict[str, Any], field: str) -> tuple[str, str]:
    """(type, how): how is "explicit", "dynamic:<template>" or "missing" (strict mapping, or nothing matches)."""
    node: dict[str, Any] = mapping
    parts = field.split(".")
    for i, part in enumerate(parts):
        props = node.get("properties", {})
        if part in props:
            node = props[part]
            continue
        multi = node.get("fields", {})
        if part in multi and i == len(parts) - 1:
            return multi[part]["type"], "explicit"
        if node.get("type") == "flat_object":
            return "flat_object", "explicit"
        if mapping.get("dynamic") == "strict" or node.get("dynamic") == "strict":
            return "none", "missing"
        break
    else:
        return node.get("type", "object"), "explicit"
    for entry in mapping.get("dynamic_templates", []):
        ((name, rule),) = entry.items()
        if "path_match" in rule and not fnmatch.fnmatch(field, rule["path_match"]):
            continue
        return rule["mapping"]["type"], f"dynamic:{name}"
    return "none", "missing"


def catalog_fields() -> set[str]:
    """Every field our documents carry (siem/detect/fields.txt, generated from the samples)."""
    lines = FIELDS_CATALOG.read_text(encoding="utf-8").splitlines()
    return {line.split()[1] for line in lines if line.strip() and not line.startswith("#")}


def _bucket_dsl(agg: dict[str, Any], count_metric: bool) -> dict[str, Any]:
    p = agg["params"]
    if agg["type"] == "date_histogram":  # "auto" depends on the picked time range; a month suits the samples
        return {"date_histogram": {"field": p["field"], "fixed_interval": "30d", "min_doc_count": p["min_doc_count"]}}
    if agg["type"] == "terms":
        order = {"_count": p["order"]} if count_metric else {"1": p["order"]}  # orderBy "1": the metric
        return {"terms": {"field": p["field"], "size": p["size"], "order": order}}
    if agg["type"] == "range":
        return {"range": {"field": p["field"], "ranges": [{"from": r["from"], "to": r["to"]} for r in p["ranges"]]}}
    return {"geohash_grid": {"field": p["field"], "precision": p["precision"]}}


def vis_request(obj: dict[str, Any]) -> dict[str, Any]:
    """The search body Dashboards sends for a visualization (no time range: the samples span years)."""
    aggs = [a for a in vis_aggs(obj) if a["enabled"]]
    metric = next(a for a in aggs if a["schema"] == "metric")
    leaf = {} if metric["type"] == "count" else {"1": {metric["type"]: {"field": metric["params"]["field"]}}}
    body: dict[str, Any] = leaf
    for agg in reversed([a for a in aggs if a["type"] in BUCKETS]):
        node = _bucket_dsl(agg, metric["type"] == "count")
        if body:
            node["aggs"] = body
        body = {agg["id"]: node}
    return {"size": 0, "track_total_hits": True, "query": bool_query(search_source(obj)["filter"]), "aggs": body}


def first_filled_path(aggregations: dict[str, Any]) -> list[Any] | None:
    """Keys from the outer bucket to the innermost of one branch with documents, or None if all are empty."""
    bucket_aggs = {k: v for k, v in aggregations.items() if isinstance(v, dict) and "buckets" in v}
    if not bucket_aggs:
        return []
    ((_, agg),) = bucket_aggs.items()
    buckets = agg["buckets"].values() if isinstance(agg["buckets"], dict) else agg["buckets"]
    for bucket in buckets:
        if bucket["doc_count"] > 0:
            rest = first_filled_path(bucket)
            if rest is not None:
                return [bucket.get("key_as_string", bucket.get("key")), *rest]
    return None
