"""GeoIP and ASN enrichment (issue 10, "Enrichment") from tiny MaxMind-format databases built here.

The databases are written with mmdb-writer and read back by the real maxminddb reader; the enriched
events go through the real pipeline into the real node and the embedded store.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from siem.config import load_settings
from siem.enrich.geoip import GeoIpEnricher, from_settings
from siem.formats.base import ParseOptions
from siem.pipeline import run
from siem.sinks import EventQuery
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.sources.local import local_objects
from siem.templates import install_templates

SAMPLES = Path(__file__).parent / "data" / "samples" / "logs"
VPC_SAMPLE = SAMPLES / "vpcflow" / "test-extra-samples.log"  # 89.160.20.156 as source and as destination
IP = "89.160.20.156"
IPV6 = "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"
LINKOPING = {
    "city_name": "Linköping",
    "country_iso_code": "SE",
    "country_name": "Sweden",
    "continent_code": "EU",
    "continent_name": "Europe",
    "region_iso_code": "SE-E",
    "region_name": "Östergötland County",
    "timezone": "Europe/Stockholm",
    "location": {"lat": 58.4167, "lon": 15.6167},
}
BREDBAND2 = {"number": 29518, "organization": {"name": "Bredband2 AB"}}


def _city(name: str, iso: str, country: str, lat: float, lon: float) -> dict:
    return {
        "city": {"names": {"en": name}},
        "country": {"iso_code": iso, "names": {"en": country}},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "location": {"latitude": lat, "longitude": lon},
    }


@pytest.fixture(scope="module")
def dbs(tmp_path_factory) -> tuple[Path, Path]:
    """A City and an ASN database: two public networks, and a private one no event may be given."""
    folder = tmp_path_factory.mktemp("mmdb")
    city = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"])
    linkoping = _city("Linköping", "SE", "Sweden", 58.4167, 15.6167)
    linkoping["continent"] = {"code": "EU", "names": {"en": "Europe"}}
    linkoping["location"]["time_zone"] = "Europe/Stockholm"
    linkoping["subdivisions"] = [{"iso_code": "E", "names": {"en": "Östergötland County"}}]
    city.insert_network(IPSet(["89.160.20.0/24"]), linkoping)
    city.insert_network(IPSet(["2a02:cf40:add:4002::/64"]), _city("Frankfurt am Main", "DE", "Germany", 50.11, 8.68))
    city.insert_network(IPSet(["172.16.0.0/12"]), _city("Private", "ZZ", "Nowhere", 0.0, 0.0))
    city.to_db_file(str(folder / "city.mmdb"))
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN", languages=["en"])
    asn.insert_network(
        IPSet(["89.160.20.0/24"]), {"autonomous_system_number": 29518, "autonomous_system_organization": "Bredband2 AB"}
    )
    asn.insert_network(
        IPSet(["172.16.0.0/12"]), {"autonomous_system_number": 64512, "autonomous_system_organization": "Private"}
    )
    asn.to_db_file(str(folder / "asn.mmdb"))
    return folder / "city.mmdb", folder / "asn.mmdb"


def test_public_ips_get_geo_and_as_private_ones_nothing(dbs) -> None:
    enrich = GeoIpEnricher(str(dbs[0]), str(dbs[1]))
    doc = {"source": {"ip": IP}, "destination": {"ip": "172.31.16.139"}}
    enrich(doc)
    assert doc["source"]["geo"] == LINKOPING
    assert doc["source"]["as"] == BREDBAND2
    assert doc["destination"] == {"ip": "172.31.16.139"}  # in the database, but private: not looked up
    v6 = {"source": {"ip": "192.0.2.1"}, "destination": {"ip": IPV6}}
    enrich(v6)
    assert v6["destination"]["geo"]["city_name"] == "Frankfurt am Main"
    assert "as" not in v6["destination"]  # not in the ASN database
    assert v6["source"] == {"ip": "192.0.2.1"}


def test_geo_set_by_the_log_type_is_kept_whole_and_lookups_are_cached(dbs) -> None:
    enrich = GeoIpEnricher(str(dbs[0]), str(dbs[1]), cache_size=16)
    waf = {"source": {"ip": IP, "geo": {"country_iso_code": "AU"}}}
    enrich(waf)
    assert waf["source"]["geo"] == {"country_iso_code": "AU"}  # not AU with Linköping's city
    assert waf["source"]["as"] == BREDBAND2
    first, second = {"source": {"ip": IP}}, {"source": {"ip": IP}}
    enrich(first)
    enrich(second)
    first["source"]["geo"]["location"]["lat"] = 0.0  # a later stage changing one event changes no other
    assert second["source"]["geo"]["location"] == {"lat": 58.4167, "lon": 15.6167}
    info = enrich._lookup.cache_info()  # type: ignore[attr-defined]
    assert (info.misses, info.hits) == (1, 2)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "siem.enrich.geoip"]


def test_missing_database_is_one_warning_and_the_load_goes_on(tmp_path: Path, caplog) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    settings = load_settings(env={"SIEM_ENRICH_GEOIP_CITY": str(missing)})
    with caplog.at_level(logging.WARNING):
        options = settings.parse_options()
        assert settings.parse_options().enrich is None  # opened once: no second warning
    assert options.enrich is None
    assert _warnings(caplog) == [f"GeoIP enrichment off for enrich.geoip_city: {missing}: no such file"]
    summary = run(local_objects(VPC_SAMPLE), EmbeddedStore(tmp_path / "data"), options=options)
    assert (summary.written, summary.dead_lettered) == (7, 0)


def test_corrupt_database_is_one_warning_and_the_other_database_still_works(dbs, tmp_path: Path, caplog) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"\x00\x01not a maxmind database" * 50)
    with caplog.at_level(logging.WARNING):
        enrich = from_settings({"geoip_city": str(junk), "geoip_asn": str(dbs[1]), "geoip_cache": 10})
    [warning] = _warnings(caplog)
    assert warning.startswith(f"GeoIP enrichment off for enrich.geoip_city: {junk}: not a readable MaxMind database")
    assert enrich is not None
    doc = {"source": {"ip": IP}}
    enrich(doc)
    assert doc["source"] == {"ip": IP, "as": BREDBAND2}
    with caplog.at_level(logging.WARNING):
        assert from_settings({"geoip_city": str(junk), "geoip_asn": None, "geoip_cache": 10}) is None


def test_database_found_corrupt_at_lookup_turns_off_with_one_warning(dbs, tmp_path: Path, caplog) -> None:
    """A valid header and search tree over a data section overwritten with 0xFF: open succeeds, the first
    lookup fails inside the reader."""
    data = bytearray(dbs[0].read_bytes())
    meta = maxminddb.open_database(str(dbs[0])).metadata()
    tree_end = meta.node_count * meta.record_size * 2 // 8 + 16
    marker = bytes(data).rfind(b"\xab\xcd\xefMaxMind.com")
    data[tree_end:marker] = b"\xff" * (marker - tree_end)
    bad = tmp_path / "bad-data.mmdb"
    bad.write_bytes(bytes(data))
    enrich = GeoIpEnricher(str(bad), str(dbs[1]))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            doc = {"source": {"ip": IP}}
            enrich(doc)
            assert doc["source"] == {"ip": IP, "as": BREDBAND2}
        other = {"source": {"ip": "89.160.20.157"}}
        enrich(other)
    [warning] = _warnings(caplog)
    assert warning.startswith(f"GeoIP enrichment off for enrich.geoip_city: {bad}: corrupt database")


@pytest.fixture(scope="module")
def loaded(dbs, opensearch_client, tmp_path_factory):
    """The VPC flow sample, enriched, in a prefix of our own on the real node and in an embedded store."""
    prefix = f"tgeo{uuid.uuid4().hex[:8]}"
    options = ParseOptions(enrich=GeoIpEnricher(str(dbs[0]), str(dbs[1])))
    embedded = EmbeddedStore(tmp_path_factory.mktemp("geo-data"))
    try:
        install_templates(opensearch_client, prefix)
        store = OpenSearchStore(opensearch_client, prefix=prefix, refresh=True)
        summary = run(local_objects(VPC_SAMPLE), store, options=options)
        assert (summary.written, summary.dead_lettered) == (7, 0), summary.render()
        summary = run(local_objects(VPC_SAMPLE), embedded, options=options)
        assert (summary.written, summary.dead_lettered) == (7, 0), summary.render()
        yield prefix, store, embedded
    finally:
        embedded.close()
        opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for name in ("events", "deadletter", "alerts"):
            opensearch_client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
        for name in ("settings", "ecs"):
            opensearch_client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


def _count(client, prefix: str, query: dict) -> int:
    return client.count(index=f"{prefix}-events-*", body={"query": query})["count"]


def test_enriched_fields_are_mapped_and_searchable_on_the_node(loaded, opensearch_client) -> None:
    prefix = loaded[0]
    mapping = opensearch_client.indices.get_mapping(index=f"{prefix}-events-aws.vpcflow-2015")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    for side in ("source", "destination"):
        assert props[side]["properties"]["geo"]["properties"]["location"]["type"] == "geo_point"
        assert props[side]["properties"]["geo"]["properties"]["city_name"]["type"] == "keyword"
        assert props[side]["properties"]["as"]["properties"]["number"]["type"] == "long"
    assert _count(opensearch_client, prefix, {"term": {"source.geo.city_name": "Linköping"}}) == 3
    assert _count(opensearch_client, prefix, {"term": {"destination.geo.country_iso_code": "SE"}}) == 3
    assert _count(opensearch_client, prefix, {"term": {"source.as.number": 29518}}) == 3
    assert _count(opensearch_client, prefix, {"term": {"source.as.organization.name": "Bredband2 AB"}}) == 3
    assert _count(opensearch_client, prefix, {"term": {"destination.geo.city_name": "Frankfurt am Main"}}) == 1


def test_geo_distance_and_bounding_box_queries_work_on_the_node(loaded, opensearch_client) -> None:
    prefix = loaded[0]

    def near(lat: float, lon: float) -> int:
        query = {"geo_distance": {"distance": "50km", "source.geo.location": {"lat": lat, "lon": lon}}}
        return _count(opensearch_client, prefix, query)

    assert near(58.41, 15.62) == 3  # Linköping
    assert near(59.33, 18.07) == 0  # Stockholm, ~170 km away
    box = {"top_left": {"lat": 60.0, "lon": 5.0}, "bottom_right": {"lat": 45.0, "lon": 20.0}}
    assert _count(opensearch_client, prefix, {"geo_bounding_box": {"destination.geo.location": box}}) == 4


def test_embedded_store_keeps_the_enriched_fields(loaded) -> None:
    embedded = loaded[2]
    docs = embedded.search(EventQuery(ip=IP, size=50))
    by_source = [d for d in docs if d["source"]["ip"] == IP]
    assert len(by_source) == 3
    assert all(d["source"]["geo"] == LINKOPING and d["source"]["as"] == BREDBAND2 for d in by_source)
    assert next(d for d in docs if d["source"]["ip"] == "172.31.16.139")["destination"]["geo"] == LINKOPING


def test_siem_parse_enriches_from_the_configured_databases(dbs, monkeypatch, capsys) -> None:
    import orjson

    from siem.cli import main

    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    monkeypatch.setenv("SIEM_ENRICH_GEOIP_CITY", str(dbs[0]))
    monkeypatch.setenv("SIEM_ENRICH_GEOIP_ASN", str(dbs[1]))
    assert main(["parse", str(VPC_SAMPLE)]) == 0
    docs = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    cities = [d["source"]["geo"]["city_name"] for d in docs if "geo" in d.get("source", {})]
    assert cities == ["Frankfurt am Main", "Linköping", "Linköping", "Linköping"]
