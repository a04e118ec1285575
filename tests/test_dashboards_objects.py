"""The committed saved objects, checked without a Dashboards server (none can run here).

Each object must parse and have the shape Dashboards 2.19 imports; every reference must point at an
object in the file; every field a visualization, search, filter or index pattern names must exist in
index_templates/ (the composed templates, resolved as OpenSearch composes them) with an aggregatable
type where it is aggregated; and the file must be exactly what `python -m siem.dashboards.build`
generates from the spec, so a hand edit cannot drift from the reviewed source.
"""

from __future__ import annotations

import json

import pytest
from _dashboards_check import (
    AGGREGATABLE,
    NDJSON,
    NEEDS,
    by_id,
    catalog_fields,
    composed_mapping,
    fields_used,
    objects,
    pattern_of,
    resolve,
    search_source,
    vis_aggs,
)

from siem.dashboards.build import build_objects, to_ndjson

OBJECTS = objects()
INDEX_OF_PATTERN = {
    "siem-events": "siem-events-aws.waf-2024.01",
    "siem-alerts": "siem-alerts",
    "siem-deadletter": "siem-deadletter",
}
JSON_STRINGS = {
    "visualization": ("visState", "uiStateJSON"),
    "dashboard": ("panelsJSON", "optionsJSON"),
    "index-pattern": ("fieldFormatMap",),
    "search": (),
}


def test_committed_ndjson_is_what_the_spec_generates():
    assert NDJSON.read_text(encoding="utf-8") == to_ndjson(build_objects()), (
        "dashboards/siem.ndjson differs from siem/dashboards/spec.py: run `python -m siem.dashboards.build`"
    )


def test_the_file_holds_the_dashboards_searches_and_patterns_the_soc_needs():
    titles = {o["type"]: set() for o in OBJECTS}
    for o in OBJECTS:
        titles[o["type"]].add(o["attributes"]["title"])
    assert titles["dashboard"] == {
        "SIEM: SOC overview",
        "SIEM: ALB, WAF and web servers",
        "SIEM: CloudTrail",
        "SIEM: EKS / Kubernetes audit",
        "SIEM: Linux auth.log and auditd",
        "SIEM: VPC flow, DNS and Network Firewall",
        "SIEM: Alerts",
    }
    assert titles["index-pattern"] == {"siem-events-*", "siem-alerts", "siem-deadletter"}
    assert {"Everything about an IP", "Everything about a user"} <= titles["search"]


def test_every_object_has_the_saved_object_shape():
    seen = set()
    for o in OBJECTS:
        assert set(o) == {"type", "id", "attributes", "references", "migrationVersion"}, o["id"]
        assert o["type"] in JSON_STRINGS and o["migrationVersion"].keys() == {o["type"]}, o["id"]
        assert (o["type"], o["id"]) not in seen, f"duplicate {o['type']} {o['id']}"
        seen.add((o["type"], o["id"]))
        assert isinstance(o["attributes"]["title"], str) and o["attributes"]["title"], o["id"]
        for key in JSON_STRINGS[o["type"]]:
            json.loads(o["attributes"][key])
        if o["type"] != "index-pattern":
            source = search_source(o)
            assert "index" not in source, f"{o['id']}: inline index id instead of a reference"
            assert source["query"] == {"query": "", "language": "kuery"}, o["id"]
        if o["type"] == "visualization":
            state = json.loads(o["attributes"]["visState"])
            assert state["title"] == o["attributes"]["title"]
            assert state["type"] in {"histogram", "pie", "table", "metric", "tagcloud", "tile_map"}
            assert [a["schema"] for a in state["aggs"]].count("metric") == 1, o["id"]
            assert len({a["id"] for a in state["aggs"]}) == len(state["aggs"]), o["id"]


def test_every_reference_points_at_an_object_in_the_file_and_every_ref_name_is_declared():
    ids = {(o["type"], o["id"]) for o in OBJECTS}
    for o in OBJECTS:
        names = [r["name"] for r in o["references"]]
        assert len(names) == len(set(names)), o["id"]
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{o['id']} references missing {ref['type']} {ref['id']}"
        wanted: list[str] = []
        if o["type"] in ("visualization", "search"):
            source = search_source(o)
            wanted = [source["indexRefName"]] + [f["meta"]["indexRefName"] for f in source["filter"]]
        if o["type"] == "dashboard":
            wanted = [p["panelRefName"] for p in json.loads(o["attributes"]["panelsJSON"])]
        assert sorted(wanted) == sorted(names), o["id"]


def test_dashboard_panels_do_not_overlap_and_fit_the_grid():
    for o in (o for o in OBJECTS if o["type"] == "dashboard"):
        cells = set()
        for p in json.loads(o["attributes"]["panelsJSON"]):
            g = p["gridData"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 48, (o["id"], g)
            cell = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & cell, (o["id"], g)
            cells |= cell


@pytest.mark.parametrize("obj", [o for o in OBJECTS if o["type"] != "dashboard"], ids=lambda o: o["id"])
def test_every_field_used_exists_in_the_index_templates_and_is_aggregatable_where_aggregated(obj):
    pattern = obj["id"] if obj["type"] == "index-pattern" else pattern_of(obj)
    mapping = composed_mapping(INDEX_OF_PATTERN[pattern])
    catalog = catalog_fields()
    for field, agg in fields_used(obj):
        kind, how = resolve(mapping, field)
        assert how != "missing", f"{obj['id']}: {field} is not in the {pattern} templates"
        if how == "dynamic:strings_as_keyword":  # mapped on first sight: it must be a field our documents carry
            assert field in catalog, f"{obj['id']}: {field} is neither mapped nor carried by any document"
        if agg:
            assert kind in NEEDS.get(agg, AGGREGATABLE), f"{obj['id']}: {agg} on {field}, mapped as {kind}"


def test_the_field_check_catches_typos_text_fields_and_strict_mappings():
    events, dead = composed_mapping("siem-events-aws.waf-2024.01"), composed_mapping("siem-deadletter")
    assert resolve(events, "source.ip") == ("ip", "explicit")
    assert resolve(events, "url.original.text") == ("match_only_text", "explicit")
    assert resolve(events, "message")[0] not in AGGREGATABLE
    assert resolve(events, "aws.waf.action") == ("keyword", "dynamic:strings_as_keyword")
    assert "aws.waf.acton" not in catalog_fields()
    assert resolve(dead, "reason") == ("text", "explicit")
    assert resolve(dead, "no_such_field") == ("none", "missing")
    assert resolve(composed_mapping("siem-alerts"), "alert.group_key") == ("keyword", "explicit")


def test_the_map_uses_a_geo_point_the_template_declares():
    mapping = composed_mapping("siem-events-aws.waf-2024.01")
    maps = [
        o
        for o in OBJECTS
        if o["type"] == "visualization" and json.loads(o["attributes"]["visState"])["type"] == "tile_map"
    ]
    assert [m["id"] for m in maps] == ["siem-vis-source-map"]
    (grid,) = [a for a in vis_aggs(maps[0]) if a["type"] == "geohash_grid"]
    assert resolve(mapping, grid["params"]["field"]) == ("geo_point", "explicit")


def test_pivot_searches_carry_a_filter_to_fill_in_on_the_related_fields():
    objs = by_id(OBJECTS)
    (ip_filter,) = search_source(objs["siem-search-ip"])["filter"]
    assert ip_filter["meta"]["key"] == "related.ip" and ip_filter["meta"]["type"] == "phrase"
    (user_filter,) = search_source(objs["siem-search-user"])["filter"]
    assert user_filter["query"] == {"term": {"related.user": {"value": "change-me", "case_insensitive": True}}}


def test_index_patterns_format_ips_bytes_and_urls():
    formats = json.loads(by_id(OBJECTS)["siem-events"]["attributes"]["fieldFormatMap"])
    assert formats["source.ip"] == {"id": "ip"} and formats["related.ip"] == {"id": "ip"}
    assert formats["http.response.body.bytes"] == {"id": "bytes"} and formats["source.bytes"] == {"id": "bytes"}
    assert formats["url.original"]["id"] == "url"
