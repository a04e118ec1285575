"""OpenSearch store behaviour: rejects become dead letters (real node), 429s are retried.

The 429 path is exercised with a scripted client because a single real node cannot be made to
reject a bulk item with 429 on demand; everything else here runs against the real node.
"""

from __future__ import annotations

from typing import Any

import pytest

from siem.pipeline import Event
from siem.sinks import EventQuery
from siem.sinks.opensearch import OpenSearchStore, StoreUnavailable, redact_url
from siem.templates import install_templates


def _event(i: int, **extra: Any) -> Event:
    doc = {
        "@timestamp": f"2024-03-0{1 + i % 9}T00:00:00Z",
        "event": {"dataset": "aws.alb", "ingested": "2024-03-10T00:00:00Z"},
        "source": {"ip": f"192.0.2.{i}"},
        "related": {"ip": [f"192.0.2.{i}"], "user": ["alice"]},
        "log": {"file": {"path": "s3://b/k"}, "offset": i * 100},
        **extra,
    }
    return Event(f"id-{i}", "aws.alb", doc)


def test_mapping_rejection_is_dead_lettered_not_lost(opensearch_client, index_prefix: str) -> None:
    install_templates(opensearch_client, index_prefix)
    store = OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    bad = _event(7)
    bad.doc["source"] = {"ip": "not-an-ip"}
    rejected = store.write([_event(1), bad, _event(2)])
    assert [r.id for r in rejected] == ["id-7"]
    assert rejected[0].stage == "index" and "mapper_parsing_exception" in rejected[0].reason
    assert rejected[0].path == "s3://b/k" and rejected[0].offset == 700
    store.write_dead_letters(rejected)
    store.refresh()
    assert store.count(EventQuery()) == 2
    letters = store.dead_letters()
    assert len(letters) == 1 and letters[0]["event_id"] == "id-7" and '"not-an-ip"' in letters[0]["raw"]
    # idempotent: the same dead letter twice is one document
    store.write_dead_letters(rejected)
    store.refresh()
    assert len(store.dead_letters()) == 1


def test_query_by_user_time_and_dataset(opensearch_client, index_prefix: str) -> None:
    install_templates(opensearch_client, index_prefix)
    store = OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    store.write([_event(i) for i in range(1, 6)])
    assert store.count(EventQuery(user="alice")) == 5
    assert store.count(EventQuery(user="bob")) == 0
    assert store.count(EventQuery(start="2024-03-03T00:00:00Z", end="2024-03-05T00:00:00Z")) == 2
    assert store.count(EventQuery(ip="192.0.2.0/24", datasets=("aws.alb",))) == 5
    # a hostile value is a term value, never query syntax
    assert store.count(EventQuery(user='alice" OR *:*')) == 0
    names = opensearch_client.indices.get(index=f"{index_prefix}-events-*")
    assert set(names) == {f"{index_prefix}-events-aws.elb-2024"}  # ALB is in the aws.elb family, yearly


class ScriptedClient:
    """Answers bulk requests from a script: item statuses per call."""

    def __init__(self, script: list[list[int]]) -> None:
        self.script = script
        self.bodies: list[bytes] = []

    def bulk(self, body: bytes, params: dict[str, str]) -> dict[str, Any]:
        self.bodies.append(body)
        statuses = self.script.pop(0)
        items = [
            {
                "index": {
                    "status": s,
                    **({"error": {"type": "es_rejected_execution_exception", "reason": "busy"}} if s >= 300 else {}),
                }
            }
            for s in statuses
        ]
        return {"errors": any(s >= 300 for s in statuses), "items": items}


def test_429_items_are_retried_alone_with_backoff() -> None:
    client = ScriptedClient([[201, 429, 201], [429], [201]])
    store = OpenSearchStore(client, max_retries=3, initial_backoff=0.001)  # type: ignore[arg-type]
    assert store.write([_event(1), _event(2), _event(3)]) == []
    assert len(client.bodies) == 3
    assert client.bodies[1] == client.bodies[2]
    assert b'"id-2"' in client.bodies[1] and b'"id-1"' not in client.bodies[1]


def test_429_after_retries_is_dead_lettered_with_reason() -> None:
    client = ScriptedClient([[429], [429], [429]])
    store = OpenSearchStore(client, max_retries=2, initial_backoff=0.001)  # type: ignore[arg-type]
    rejected = store.write([_event(1)])
    assert len(rejected) == 1 and "still rejected after 2 retries" in rejected[0].reason


def test_unreachable_cluster_is_a_clear_error() -> None:
    from opensearchpy import OpenSearch

    store = OpenSearchStore(OpenSearch(hosts=["http://127.0.0.1:9"], timeout=2), max_retries=1, initial_backoff=0.001)
    with pytest.raises(StoreUnavailable, match="after 1 retries"):
        store.write([_event(1)])


def test_credentials_are_redacted_from_urls() -> None:
    assert redact_url("https://user:s3cret@search.example:9200/x?y=1") == "https://search.example:9200/x"
