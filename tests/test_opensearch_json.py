"""OpenSearch answers decode to exactly what ``json.loads`` returns, orjson or not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from siem.sinks.opensearch_json import ExactSerializer, loads_exactly

TEXTS = [
    '{"a": 18446744073709551616}',  # 2**64: orjson alone would read a float
    '{"a": -9223372036854775809, "b": [1, 2.5, -0.0]}',
    '{"n": 9223372036854775807, "s": "1234567890123456789012"}',  # 19+ digits inside a string
    '{"x": NaN, "y": Infinity, "z": -Infinity}',
    '{"big": 1e400}',
    '{"u": "caf\\u00e9 \\ud83d\\ude00", "lone": "\\ud800"}',
    '{"k": 1, "k": 2}',
    '{"f": 0.1, "g": 1.0000000000000002, "h": 123456789012345678.5}',
    '{"hits": {"hits": [{"_id": "a", "_source": {"event": {"id": 42}}}]}}',
]


def _typed(value: Any) -> Any:
    """The value with each number's type kept beside it (1 and 1.0 compare equal otherwise)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", TEXTS)
def test_an_answer_decodes_to_the_objects_json_returns(text: str) -> None:
    assert _typed(loads_exactly(text)) == _typed(json.loads(text))


def test_an_integer_beyond_64_bits_in_a_stored_document_comes_back_whole(opensearch_client, index_prefix) -> None:
    from opensearchpy import OpenSearch

    index = f"{index_prefix}-numbers"
    opensearch_client.indices.create(index=index, body={"mappings": {"properties": {"id": {"type": "keyword"}}}})
    opensearch_client.index(index=index, id="1", body={"id": 2**64 + 1, "small": 7}, params={"refresh": "true"})
    url = "http://{host}:{port}".format(**opensearch_client.transport.hosts[0])
    exact = OpenSearch(hosts=[url], serializer=ExactSerializer())
    source = exact.search(index=index, body={"query": {"term": {"id": str(2**64 + 1)}}})["hits"]["hits"][0]["_source"]
    assert source == {"id": 18446744073709551617, "small": 7} and isinstance(source["id"], int)
