"""Turn the spec into OpenSearch Dashboards 2.19 saved objects and write them as NDJSON.

The output is what Dashboards' own export produces after its migrations (references instead of
inline ids, ``migrationVersion`` at the current level), so an import needs no migration guesswork
and an export of untouched objects (``siem dashboards export``) gives the same lines back: every
JSON string inside an object is serialised with sorted keys, and objects are sorted by type and id.

    python -m siem.dashboards.build            # rewrite dashboards/siem.ndjson from spec.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from siem.dashboards import spec
from siem.dashboards.model import Agg, Dashboard, Filter, IndexPattern, Search, Vis

NDJSON = Path(__file__).resolve().parents[2] / "dashboards" / "siem.ndjson"
PANEL_VERSION = "2.19.0"
MIGRATION = {"index-pattern": "7.6.0", "search": "7.9.3", "visualization": "7.10.0", "dashboard": "7.9.3"}
TYPE_ORDER = tuple(MIGRATION)  # an object's references come before it: a reader sees patterns first
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
EMPTY_QUERY = {"query": "", "language": "kuery"}


def dumps(value: Any) -> str:
    """The one serialisation used for every embedded JSON string and every line: stable for git diffs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def filter_dsl(f: Filter) -> dict[str, Any]:
    """The Query DSL a filter pill runs (without negation: Dashboards puts negated pills in must_not)."""
    if f.kind == "phrase":
        return {"match_phrase": {f.field: f.value}}
    if f.kind == "phrases":
        return {"bool": {"should": [{"match_phrase": {f.field: v}} for v in f.value], "minimum_should_match": 1}}
    if f.kind == "exists":
        return {"exists": {"field": f.field}}
    if f.kind == "range":
        return {"range": {f.field: f.value}}
    if f.kind == "custom" and f.query:
        return f.query
    raise ValueError(f"unknown filter kind {f.kind!r}")


def _filter(f: Filter, position: int) -> dict[str, Any]:
    """A filter as Dashboards stores it: ``meta`` for the pill, the DSL beside it, the index as a reference."""
    meta: dict[str, Any] = {
        "alias": f.alias,
        "disabled": False,
        "negate": f.negate,
        "key": f.field,
        "type": f.kind,
        "indexRefName": f"kibanaSavedObjectMeta.searchSourceJSON.filter[{position}].meta.index",
    }
    dsl = filter_dsl(f)
    if f.kind == "phrase":
        meta["params"] = {"query": f.value}
    elif f.kind == "phrases":
        meta["params"] = list(f.value)
        meta["value"] = ", ".join(map(str, f.value))
    elif f.kind == "exists":
        meta["value"] = "exists"
    elif f.kind == "range":
        meta["params"] = f.value
    else:  # custom: the pill shows the DSL; the key is "query" as Dashboards' own custom filters have it
        meta["key"] = "query"
        meta["value"] = dumps(dsl)
    body = {"meta": meta, "$state": {"store": "appState"}}
    if f.kind in ("exists", "range"):  # Dashboards keeps these two at the top level, not under "query"
        body.update(dsl)
    else:
        body["query"] = dsl
    return body


def _search_source(pattern: str, filters: tuple[Filter, ...]) -> tuple[str, list[dict[str, str]]]:
    source = {"query": EMPTY_QUERY, "filter": [_filter(f, i) for i, f in enumerate(filters)], "indexRefName": INDEX_REF}
    refs = [{"name": INDEX_REF, "type": "index-pattern", "id": pattern}]
    refs += [{"name": flt["meta"]["indexRefName"], "type": "index-pattern", "id": pattern} for flt in source["filter"]]
    return dumps(source), refs


def _agg(agg: Agg, agg_id: str, schema: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if agg.type == "date_histogram":
        params = {
            "field": agg.field,
            "interval": "auto",
            "min_doc_count": 1,
            "extended_bounds": {},
            "drop_partials": False,
        }
    elif agg.type == "terms":
        params = {
            "field": agg.field,
            "size": agg.size,
            "order": "desc",
            "orderBy": "1",
            "otherBucket": False,
            "otherBucketLabel": "Other",
            "missingBucket": False,
            "missingBucketLabel": "Missing",
        }
    elif agg.type == "range":
        params = {"field": agg.field, "ranges": [{"from": lo, "to": hi, "label": text} for lo, hi, text in agg.ranges]}
    elif agg.type == "geohash_grid":
        params = {
            "field": agg.field,
            "autoPrecision": True,
            "precision": 2,
            "useGeocentroid": True,
            "isFilteredByCollar": True,
        }
    elif agg.field:
        params = {"field": agg.field}
    if agg.label:
        params["customLabel"] = agg.label
    return {"id": agg_id, "enabled": True, "type": agg.type, "schema": schema, "params": params}


def _schema(vis: Vis, position: int) -> str:
    """Which editor slot a bucket fills: chart axes and series, table rows, pie slices, map grid."""
    if vis.chart == "bars":
        return "segment" if position == 0 else "group"
    if vis.chart == "table":
        return "bucket"
    return "segment"


def _bar_chart(label: str) -> dict[str, Any]:
    """A vertical bar chart, stacked: time on the x axis, one colour per split value."""
    return {
        "type": "histogram",
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": label},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": "histogram",
                "mode": "stacked",
                "data": {"label": label, "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "lineWidth": 2,
                "showCircles": True,
            }
        ],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "labels": {"show": False},
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }


def _params(vis: Vis, label: str) -> dict[str, Any]:
    if vis.chart == "bars":
        return _bar_chart(label)
    if vis.chart == "table":
        return {
            "perPage": 10,
            "showPartialRows": False,
            "showMetricsAtAllLevels": False,
            "showTotal": False,
            "totalFunc": "sum",
            "percentageCol": "",
        }
    if vis.chart == "pie":
        legend = {"legendPosition": "right", "isDonut": True}
        return {
            "type": "pie",
            "addTooltip": True,
            "addLegend": True,
            **legend,
            "labels": {"show": False, "values": True, "last_level": True, "truncate": 100},
        }
    if vis.chart == "tagcloud":
        return {"scale": "linear", "orientation": "single", "minFontSize": 18, "maxFontSize": 72, "showLabel": True}
    if vis.chart == "metric":
        return {
            "type": "metric",
            "addTooltip": True,
            "addLegend": False,
            "metric": {
                "percentageMode": False,
                "useRanges": False,
                "colorSchema": "Green to Red",
                "metricColorMode": "None",
                "colorsRange": [{"from": 0, "to": 10000}],
                "labels": {"show": True},
                "invertColors": False,
                "style": {"bgFill": "#000", "bgColor": False, "labelColor": False, "subText": "", "fontSize": 60},
            },
        }
    return {  # map: scaled circles on Dashboards' default base map
        "mapType": "Scaled Circle Markers",
        "colorSchema": "Yellow to Red",
        "isDesaturated": True,
        "addTooltip": True,
        "heatClusterSize": 1.5,
        "legendPosition": "bottomright",
        "mapZoom": 2,
        "mapCenter": [0, 0],
        "wms": {"enabled": False, "options": {"format": "image/png", "transparent": True}},
    }


VIS_TYPES = {
    "bars": "histogram",
    "pie": "pie",
    "table": "table",
    "metric": "metric",
    "tagcloud": "tagcloud",
    "map": "tile_map",
}


def visualization(vis: Vis) -> dict[str, Any]:
    label = vis.metric.label or "Count"
    aggs = [_agg(vis.metric, "1", "metric")]
    aggs += [_agg(b, str(i + 2), _schema(vis, i)) for i, b in enumerate(vis.buckets)]
    state = {"title": vis.title, "type": VIS_TYPES[vis.chart], "params": _params(vis, label), "aggs": aggs}
    source, refs = _search_source(vis.pattern, vis.filters)
    attributes = {
        "title": vis.title,
        "description": vis.description,
        "visState": dumps(state),
        "uiStateJSON": "{}",
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": source},
    }
    return _object("visualization", vis.id, attributes, refs)


def search(s: Search) -> dict[str, Any]:
    source, refs = _search_source(s.pattern, s.filters)
    attributes = {
        "title": s.title,
        "description": s.description,
        "hits": 0,
        "columns": list(s.columns),
        "sort": [["@timestamp", "desc"]],
        "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": source},
    }
    return _object("search", s.id, attributes, refs)


def index_pattern(p: IndexPattern) -> dict[str, Any]:
    attributes = {"title": p.title, "timeFieldName": p.time_field, "fieldFormatMap": dumps(p.formats)}
    return _object("index-pattern", p.id, attributes, [])


def _width(panel: Vis | Search) -> int:
    """Out of Dashboards' 48 columns: time charts span the row, a metric a quarter, the rest half."""
    if isinstance(panel, Search):
        return 48
    if panel.chart == "bars":
        return 48
    return 12 if panel.chart == "metric" else 24


def dashboard(d: Dashboard, panels_by_id: dict[str, Vis | Search]) -> dict[str, Any]:
    panels, refs = [], []
    x = y = row_height = 0
    for i, panel_id in enumerate(d.panels):
        panel = panels_by_id[panel_id]
        w, h = _width(panel), 15
        if x + w > 48:
            x, y, row_height = 0, y + row_height, 0
        panels.append(
            {
                "version": PANEL_VERSION,
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                "panelIndex": str(i + 1),
                "embeddableConfig": {},
                "panelRefName": f"panel_{i}",
            }
        )
        refs.append(
            {"name": f"panel_{i}", "type": "search" if isinstance(panel, Search) else "visualization", "id": panel_id}
        )
        x, row_height = x + w, max(row_height, h)
    attributes = {
        "title": d.title,
        "description": d.description,
        "hits": 0,
        "panelsJSON": dumps(panels),
        "optionsJSON": dumps({"hidePanelTitles": False, "useMargins": True}),
        "version": 1,
        "timeRestore": True,
        "timeFrom": d.time_from,
        "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 0},
        "kibanaSavedObjectMeta": {"searchSourceJSON": dumps({"query": EMPTY_QUERY, "filter": []})},
    }
    return _object("dashboard", d.id, attributes, refs)


def _object(kind: str, object_id: str, attributes: dict[str, Any], refs: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": kind,
        "id": object_id,
        "attributes": attributes,
        "references": refs,
        "migrationVersion": {kind: MIGRATION[kind]},
    }


def sort_key(obj: dict[str, Any]) -> tuple[int, str]:
    return (TYPE_ORDER.index(obj["type"]) if obj["type"] in TYPE_ORDER else len(TYPE_ORDER), obj["id"])


def build_objects() -> list[dict[str, Any]]:
    panels: dict[str, Vis | Search] = {v.id: v for v in spec.VISUALIZATIONS}
    panels.update({s.id: s for s in spec.SEARCHES})
    objects = [index_pattern(p) for p in spec.INDEX_PATTERNS]
    objects += [search(s) for s in spec.SEARCHES]
    objects += [visualization(v) for v in spec.VISUALIZATIONS]
    objects += [dashboard(d, panels) for d in spec.DASHBOARDS]
    return sorted(objects, key=sort_key)


def to_ndjson(objects: list[dict[str, Any]]) -> str:
    return "".join(dumps(obj) + "\n" for obj in objects)


def main(argv: list[str] | None = None) -> int:
    NDJSON.write_text(to_ndjson(build_objects()), encoding="utf-8")
    print(f"wrote {NDJSON}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
