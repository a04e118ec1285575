"""Index templates: installable twice, and the mappings an analyst relies on."""

from __future__ import annotations

from siem.templates import install_templates, load_templates


def test_templates_load_and_name_by_prefix() -> None:
    components, indexes = load_templates("acme")
    assert set(components) == {"acme-settings", "acme-ecs"}
    assert indexes["acme-events"]["index_patterns"] == ["acme-events-*"]
    assert indexes["acme-events"]["composed_of"] == ["acme-settings", "acme-ecs"]


def test_install_is_idempotent_and_maps_ecs_types(opensearch_client, index_prefix: str) -> None:
    first = install_templates(opensearch_client, index_prefix)
    second = install_templates(opensearch_client, index_prefix)
    assert first == second
    index = f"{index_prefix}-events-aws.cloudtrail-2024.01"
    doc = {
        "@timestamp": "2024-01-02T03:04:05.123456Z",
        "event": {"ingested": "2024-01-02T03:05:00Z", "dataset": "aws.cloudtrail"},
        "source": {"ip": "2001:db8::1"},
        "related": {"ip": ["2001:db8::1", "10.0.0.1"], "user": ["alice"]},
        "client": {"geo": {"location": {"lat": 35.6, "lon": 139.7}}},
        "something": {"ip": "192.0.2.1", "text": "a string"},
        "aws": {"cloudtrail": {"request_parameters": {"bucketName": "b", "nested": {"deep": [1, "two", {"x": True}]}}}},
    }
    opensearch_client.index(index=index, body=doc, params={"refresh": "true"})
    # a conflicting payload shape in the flat_object field is accepted, not a mapping error
    doc2 = {**doc, "aws": {"cloudtrail": {"request_parameters": {"bucketName": {"not": "a string now"}}}}}
    opensearch_client.index(index=index, body=doc2, params={"refresh": "true"})
    mapping = opensearch_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["source"]["properties"]["ip"]["type"] == "ip"
    assert mapping["related"]["properties"]["ip"]["type"] == "ip"
    assert mapping["something"]["properties"]["ip"]["type"] == "ip"
    assert mapping["something"]["properties"]["text"]["type"] == "keyword"
    assert mapping["client"]["properties"]["geo"]["properties"]["location"]["type"] == "geo_point"
    assert mapping["aws"]["properties"]["cloudtrail"]["properties"]["request_parameters"]["type"] == "flat_object"
    assert mapping["event"]["properties"]["ingested"]["type"] == "date"
    settings = opensearch_client.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["number_of_replicas"] == "0"
    # CIDR search over an ip field works: the analyst can pivot on a subnet
    hits = opensearch_client.search(index=index, body={"query": {"term": {"related.ip": "10.0.0.0/8"}}})
    assert hits["hits"]["total"]["value"] == 2
