"""A Sigma search of a whole CloudTrail payload (``requestParameters|contains: x``) on every engine.

SigmaHQ's "AWS S3 Bucket Versioning Disable" (author: Sean Johnstone | Unit 42, DRL 1.1) searches the whole
``requestParameters`` object. It maps to ``aws.cloudtrail.request_parameters.**``: every value below
the payload. The two records (written for this test) differ only in the versioning status.
"""

from __future__ import annotations

import io
import logging
from functools import partial
from pathlib import Path

import pytest
from oracle import SHARED

from siem.detect.engines import Scope
from siem.detect.engines.duckdb import DuckDBEngine
from siem.detect.engines.memory import MemoryEngine
from siem.detect.engines.opensearch import OpenSearchEngine
from siem.detect.rules import load_file
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import Event, parse_object
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.sources import SourceObject
from siem.templates import install_templates

REPO = Path(__file__).resolve().parents[1]
SIGMAHQ = SHARED / "sigmahq" / "rules" / "cloud" / "aws" / "cloudtrail"
RECORDS = REPO / "tests" / "data" / "detect" / "put-bucket-versioning.json"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    data = RECORDS.read_bytes()
    obj = SourceObject("put-bucket-versioning.json", "test:pbv", partial(io.BytesIO, data))
    found = [e for e in parse_object(obj, Router(), ParseOptions()) if isinstance(e, Event)]
    assert [e.doc["event"]["action"] for e in found] == ["PutBucketVersioning", "PutBucketVersioning"]
    return found


@pytest.fixture(scope="module")
def rule():
    logging.getLogger("sigma").setLevel(logging.ERROR)
    (loaded,) = load_file(SIGMAHQ / "aws_disable_bucket_versioning.yml")
    assert loaded.runnable, loaded.problems
    return loaded


def suspended_id(events: list[Event]) -> str:
    (hit,) = [e.id for e in events if e.doc["@timestamp"] == "2024-05-01T10:00:00Z"]
    return hit


def test_offline_engine_finds_only_the_suspended_versioning(rule, events) -> None:
    engine = MemoryEngine([(e.id, e.doc) for e in events])
    assert [i for i, _ in engine.select(rule, Scope())] == [suspended_id(events)]


def test_duckdb_finds_only_the_suspended_versioning(rule, events, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    try:
        store.write(events)
        assert [i for i, _ in DuckDBEngine(store).select(rule, Scope())] == [suspended_id(events)]
    finally:
        store.close()


def test_opensearch_finds_only_the_suspended_versioning(rule, events, opensearch_client, index_prefix) -> None:
    install_templates(opensearch_client, index_prefix)
    store = OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    assert store.write(events) == []
    store.refresh()
    assert [i for i, _ in OpenSearchEngine(store).select(rule, Scope())] == [suspended_id(events)]
