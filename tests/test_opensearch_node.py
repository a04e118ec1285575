"""The dev/CI OpenSearch node is the real thing: version, plugins, analysis."""

from __future__ import annotations


def test_version_is_2_19(opensearch_client) -> None:
    assert opensearch_client.info()["version"]["number"].startswith("2.19.")


def test_plugins_are_loaded(opensearch_client) -> None:
    rows = opensearch_client.cat.plugins(format="json")
    names = {row["component"] for row in rows}
    assert {
        "analysis-common",
        "lang-painless",
        "mapper-extras",
        "reindex",
        "ingest-common",
        "opensearch-job-scheduler",
    } <= names


def test_lowercase_normalizer_works(opensearch_client, index_prefix: str) -> None:
    index = f"{index_prefix}-norm"
    opensearch_client.indices.create(
        index=index,
        body={
            "settings": {"analysis": {"normalizer": {"lc": {"type": "custom", "filter": ["lowercase"]}}}},
            "mappings": {"properties": {"user": {"type": "keyword", "normalizer": "lc"}}},
        },
    )
    opensearch_client.index(index=index, body={"user": "Alice"}, params={"refresh": "true"})
    hits = opensearch_client.search(index=index, body={"query": {"term": {"user": "ALICE"}}})
    assert hits["hits"]["total"]["value"] == 1


def test_painless_script_runs(opensearch_client, index_prefix: str) -> None:
    index = f"{index_prefix}-painless"
    opensearch_client.index(index=index, body={"n": 41}, params={"refresh": "true"})
    body = {"query": {"match_all": {}}, "script_fields": {"m": {"script": {"source": "doc['n'].value + 1"}}}}
    hit = opensearch_client.search(index=index, body=body)["hits"]["hits"][0]
    assert hit["fields"]["m"] == [42]
