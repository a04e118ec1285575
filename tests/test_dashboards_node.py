"""The committed dashboards run on the real OpenSearch node over the bundled samples.

The samples are loaded once for the module with `siem load tests/data/samples/logs` into a prefix of
our own, and a few shipped detections are run over them (`siem detect run --once --since ...`) so
the alerts index has documents. Then, for every object in dashboards/siem.ndjson: its filters
validate with `_validate/query`; every field it names is mapped on the node with the type the
templates declare (aggregatable where it is aggregated, per `_field_caps`); and every
visualization's aggregations, translated as Dashboards sends them, return at least one non-empty
bucket at every level.

No GeoIP database is bundled (licence): the load runs the real GeoIP/ASN enrichment with a tiny
City and ASN database built here (one network, 89.160.20.0/24), so the map and the ASN panel show
sample events the way they would with a MaxMind database configured; the map's `geohash_grid` runs on
the node (its `geo` module, which every distribution and Amazon OpenSearch Service ship).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _dashboards_check import (
    AGGREGATABLE,
    NEEDS,
    REPO,
    bool_query,
    by_id,
    composed_mapping,
    fields_used,
    first_filled_path,
    objects,
    pattern_of,
    resolve,
    search_source,
    vis_request,
)
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from siem.cli import main

SAMPLES = REPO / "tests" / "data" / "samples" / "logs"
RULES = [
    REPO / "detections" / "aws" / "cloudtrail" / "aws_cloudtrail_trail_stopped_or_deleted.yml",
    REPO / "detections" / "aws" / "iam" / "aws_iam_access_key_created_for_another_user.yml",
    REPO / "detections" / "kubernetes" / "k8s_human_exec_into_pod.yml",
    REPO / "detections" / "linux" / "auth" / "linux_root_shell_via_sudo_or_su.yml",
]
LINKOPING = {"lat": 58.4167, "lon": 15.6167}
OBJECTS = objects()
PANELS = [o for o in OBJECTS if o["type"] in ("visualization", "search")]
VISUALIZATIONS = [o for o in OBJECTS if o["type"] == "visualization"]


def _geoip_databases(folder: Path) -> tuple[Path, Path]:
    """A City and an ASN database (MaxMind format) placing 89.160.20.0/24 in Linköping, AS29518."""
    city = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"])
    linkoping = {
        "city": {"names": {"en": "Linköping"}},
        "country": {"iso_code": "SE", "names": {"en": "Sweden"}},
        "location": {"latitude": LINKOPING["lat"], "longitude": LINKOPING["lon"]},
    }
    city.insert_network(IPSet(["89.160.20.0/24"]), linkoping)
    city.to_db_file(str(folder / "city.mmdb"))
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN", languages=["en"])
    network = {"autonomous_system_number": 29518, "autonomous_system_organization": "Bredband2 AB"}
    asn.insert_network(IPSet(["89.160.20.0/24"]), network)
    asn.to_db_file(str(folder / "asn.mmdb"))
    return folder / "city.mmdb", folder / "asn.mmdb"


@pytest.fixture(scope="module")
def prefix(opensearch_client, opensearch_url, tmp_path_factory):
    """The samples (GeoIP-enriched) and four detections' alerts in a prefix of this module's own."""
    name = f"t{uuid.uuid4().hex[:10]}"
    city, asn = _geoip_databases(tmp_path_factory.mktemp("geoip"))
    mp = pytest.MonkeyPatch()
    mp.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    mp.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", name)
    mp.setenv("SIEM_ENRICH_GEOIP_CITY", str(city))
    mp.setenv("SIEM_ENRICH_GEOIP_ASN", str(asn))
    try:
        assert main(["load", str(SAMPLES)]) in (0, 1)  # 1: the samples hold a few malformed records on purpose
        until = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        hunt = ["detect", "run", "--once", "--rules", *map(str, RULES), "--since", "2000-01-01T00:00:00Z"]
        assert main([*hunt, "--until", until]) == 0
        opensearch_client.indices.refresh(index=f"{name}-*")
        yield name
    finally:
        mp.undo()
        opensearch_client.indices.delete(index=f"{name}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for template in ("events", "deadletter", "alerts", "outbox"):
            opensearch_client.indices.delete_index_template(name=f"{name}-{template}", params={"ignore": 404})
        for template in ("settings", "ecs"):
            opensearch_client.cluster.delete_component_template(name=f"{name}-{template}", params={"ignore": 404})


def _index(obj: dict, prefix: str) -> str:
    return {
        "siem-events": f"{prefix}-events-*",
        "siem-alerts": f"{prefix}-alerts",
        "siem-deadletter": f"{prefix}-deadletter",
    }[pattern_of(obj)]


def test_every_filter_and_query_validates_on_the_node(opensearch_client, prefix):
    invalid = {}
    for obj in PANELS:
        query = bool_query(search_source(obj)["filter"])
        answer = opensearch_client.indices.validate_query(
            index=_index(obj, prefix), body={"query": query}, params={"explain": "true"}
        )
        if not answer["valid"]:
            invalid[obj["id"]] = answer.get("explanations")
    assert invalid == {}


def test_every_field_used_is_mapped_on_the_node_as_the_templates_say(opensearch_client, prefix):
    problems = []
    for obj in PANELS:
        index = _index(obj, prefix)
        used = fields_used(obj)
        caps = opensearch_client.field_caps(index=index, params={"fields": ",".join(sorted({f for f, _ in used}))})[
            "fields"
        ]
        mapping = composed_mapping(index.replace(prefix, "siem").replace("*", "aws.waf-2024.01"))
        for field, agg in used:
            types = caps.get(field, {})
            declared, _how = resolve(mapping, field)
            if list(types) != [declared]:
                problems.append(f"{obj['id']}: {field} is {sorted(types)} on the node, {declared} in the templates")
            elif agg and (declared not in NEEDS.get(agg, AGGREGATABLE) or not types[declared]["aggregatable"]):
                problems.append(f"{obj['id']}: {agg} on {field} ({declared}) is not aggregatable")
    assert problems == []


@pytest.mark.parametrize("obj", VISUALIZATIONS, ids=lambda o: o["id"])
def test_every_visualization_returns_non_empty_buckets_on_the_samples(opensearch_client, prefix, obj):
    answer = opensearch_client.search(index=_index(obj, prefix), body=vis_request(obj))
    assert answer["hits"]["total"]["value"] > 0, f"{obj['id']}: its filters match no sample document"
    path = first_filled_path(answer.get("aggregations", {}))
    assert path is not None, f"{obj['id']}: every bucket is empty: {json.dumps(answer.get('aggregations'))[:500]}"


def test_everything_about_an_ip_finds_it_in_nine_datasets_and_takes_a_cidr(opensearch_client, prefix):
    (pill,) = search_source(by_id(OBJECTS)["siem-search-ip"])["filter"]
    datasets = {"size": 0, "aggs": {"d": {"terms": {"field": "event.dataset", "size": 50}}}}

    def hits(value: str) -> dict[str, int]:
        filled = {
            **pill,
            "meta": {**pill["meta"], "params": {"query": value}},
            "query": {"match_phrase": {"related.ip": value}},
        }
        answer = opensearch_client.search(index=f"{prefix}-events-*", body={**datasets, "query": bool_query([filled])})
        return {b["key"]: b["doc_count"] for b in answer["aggregations"]["d"]["buckets"]}

    assert hits("192.0.2.1") == {"aws.cloudtrail": 1}  # the placeholder (TEST-NET-1) names one sample event
    found = hits("89.160.20.156")
    assert set(found) == {
        "aws.vpcflow",
        "aws.cloudtrail",
        "linux.auditd",
        "apache.access",
        "aws.waf",
        "apache.error",
        "linux.auth",
        "aws.network_firewall",
        "aws.route53_resolver",
    }
    assert sum(hits("89.160.0.0/16").values()) > sum(found.values())  # 89.160.20.112 is in the CIDR too


def test_everything_about_a_user_matches_whatever_the_case_typed(opensearch_client, prefix):
    (pill,) = search_source(by_id(OBJECTS)["siem-search-user"])["filter"]
    counts = []
    for typed in ("alice", "ALICE", "Alice"):
        filled = {
            **pill,
            "query": {"term": {"related.user": {**pill["query"]["term"]["related.user"], "value": typed}}},
        }
        answer = opensearch_client.count(index=f"{prefix}-events-*", body={"query": bool_query([filled])})
        counts.append(answer["count"])
    assert counts == [23, 23, 23]  # the CloudTrail samples name Alice 23 times


def test_the_map_places_enriched_sample_events_in_linkopings_grid_cell(opensearch_client, prefix):
    request = vis_request(by_id(OBJECTS)["siem-vis-source-map"])
    (name, grid), *_ = request["aggs"].items()
    field = grid["geohash_grid"]["field"]
    cells = opensearch_client.search(index=f"{prefix}-events-*", body={**request, "size": 0})["aggregations"][name]
    assert [b["key"][:2] for b in cells["buckets"]] == ["u6"]  # Linköping (58.4 N, 15.6 E) is in geohash cell u6
    world = {"top_left": {"lat": 90, "lon": -180}, "bottom_right": {"lat": -90, "lon": 180}}
    query = {"bool": {"filter": [request["query"], {"geo_bounding_box": {field: world}}]}}
    body = {"size": 0, "query": query, "aggs": {"ip": {"terms": {"field": "source.ip"}}}}
    answer = opensearch_client.search(index=f"{prefix}-events-*", body=body)
    located = {b["key"] for b in answer["aggregations"]["ip"]["buckets"]}
    assert located == {"89.160.20.156", "89.160.20.112"}  # the two sample IPs in the database's 89.160.20.0/24
    hit = opensearch_client.search(index=f"{prefix}-events-*", body={"query": query, "size": 1})["hits"]["hits"][0]
    assert hit["_source"]["source"]["geo"]["location"] == LINKOPING
