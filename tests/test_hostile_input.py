"""Hostile input against the real OpenSearch node: nothing is lost, every request stays bounded.

* one out-of-range integer must not crash serialisation and lose the batch (and later objects);
* bulk requests are sized by bytes, so big events or many dead letters never hit HTTP 413;
* an over-long leaf string in a flat_object payload must not make the event unindexable;
* free-form fluentd keys must not explode the mapping, and a read timeout must not multiply load.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from typing import Any, ClassVar

import orjson
import pytest
from oracle import REPO, sample

from siem.formats.base import ParseOptions
from siem.pipeline import DeadLetter, Event, run
from siem.sinks.opensearch import OpenSearchStore, StoreUnavailable
from siem.sources.local import local_objects
from siem.templates import install_templates

HUGE = "99999999999999999999999"
ALB_LINE = (REPO / "tests/data/alb/test-alb.log").read_text().splitlines()[0]


@pytest.fixture
def store(opensearch_client, index_prefix) -> OpenSearchStore:
    install_templates(opensearch_client, index_prefix)
    return OpenSearchStore(opensearch_client, index_prefix, refresh=True, initial_backoff=0.05)


def _hits(client: Any, prefix: str, query: dict[str, Any], index: str = "events-*") -> list[dict[str, Any]]:
    client.indices.refresh(index=f"{prefix}-*", params={"ignore_unavailable": "true"})
    body = {"query": query, "size": 100}
    response = client.search(index=f"{prefix}-{index}", body=body, params={"ignore_unavailable": "true"})
    return [hit["_source"] for hit in response["hits"]["hits"]]


def _count(client: Any, prefix: str, index: str = "events-*") -> int:
    client.indices.refresh(index=f"{prefix}-*", params={"ignore_unavailable": "true"})
    return int(client.count(index=f"{prefix}-{index}", params={"ignore_unavailable": "true"})["count"])


# --- 1. integers beyond 64 bits -------------------------------------------------------------------


def _alb_with_received_bytes(value: str) -> str:
    fields = ALB_LINE.split(" ")
    fields[10] = value  # received_bytes (the first 12 fields are never quoted)
    return " ".join(fields)


def test_out_of_range_integer_is_kept_as_text_and_later_objects_are_indexed(store, opensearch_client, tmp_path):
    """Before: orjson raised `Integer exceeds 64-bit range` in the sink, the batch and every later
    object were never indexed. Now the value is kept as text in siem.overflow and all is indexed."""
    alb = tmp_path / "alb"
    alb.mkdir()
    (alb / "a.log.gz").write_bytes(gzip.compress((_alb_with_received_bytes(HUGE) + "\n" + ALB_LINE + "\n").encode()))
    (alb / "b.log.gz").write_bytes(gzip.compress((ALB_LINE + "\n").encode()))
    summary = run(local_objects(alb), store, dataset="aws.alb")
    assert (summary.events, summary.written, summary.dead_lettered) == (3, 3, 0), summary.render()

    web = '203.0.113.9 - alice [10/Oct/2023:13:55:36 +0000] "GET /x HTTP/1.1" 200 {size} "-" "curl/8.0"\n'
    for dataset in ("nginx.access", "apache.access"):
        path = tmp_path / f"{dataset}.log"
        path.write_text(web.format(size=HUGE) + web.format(size="12"))
        summary = run(local_objects(path), store, dataset=dataset)
        assert (summary.written, summary.dead_lettered) == (2, 0), summary.render()

    flagged = _hits(opensearch_client, store.prefix, {"exists": {"field": "siem.overflow"}})
    assert len(flagged) == 3
    for doc in flagged:
        assert any(entry.endswith(f"={HUGE}") for entry in doc["siem"]["overflow"]), doc["siem"]
    assert _count(opensearch_client, store.prefix) == 7


def test_unserialisable_event_is_one_dead_letter_not_a_lost_batch(store, opensearch_client):
    """An event that reaches the sink unnormalised (2**70 in it) is a dead letter; the rest is indexed."""
    events = [_event(i, {}) for i in range(3)]
    events[1].doc["source"] = {"bytes": 2**70}
    rejected = store.write(events)
    assert len(rejected) == 1 and rejected[0].id == "hostile-1" and "serialis" in rejected[0].reason
    assert _count(opensearch_client, store.prefix) == 2


# --- 4. over-long strings in flat_object payloads -------------------------------------------------


def _policy(size: int) -> str:
    statements = [
        {"Effect": "Allow", "Action": f"s3:GetObject{i}", "Resource": f"arn:aws:s3:::bucket-{i}/*"}
        for i in range(size // 80)
    ]
    return orjson.dumps({"Version": "2012-10-17", "Statement": statements}).decode()


def test_cloudtrail_100kb_policy_document_is_indexed_and_found(store, opensearch_client, tmp_path):
    """Before: the policyDocument leaf (100 KB) was an immense term; the event was rejected, unsearchable."""
    record = orjson.loads(sample("cloudtrail/test-assume-role-json.log").read_bytes().splitlines()[0])
    record["eventName"] = "PutRolePolicy"
    record["eventSource"] = "iam.amazonaws.com"
    policy = _policy(100_000)
    assert len(policy) >= 100_000
    record["requestParameters"] = {"roleName": "admin", "policyName": "all", "policyDocument": policy}
    path = tmp_path / "trail.json"
    path.write_bytes(orjson.dumps(record) + b"\n")
    summary = run(local_objects(path), store, dataset="aws.cloudtrail")
    assert (summary.written, summary.dead_lettered) == (1, 0), summary.render()
    hits = _hits(opensearch_client, store.prefix, {"term": {"event.action": "PutRolePolicy"}})
    assert len(hits) == 1
    doc = hits[0]
    assert doc["siem"]["truncated"] == ["aws.cloudtrail.request_parameters.policyDocument"]
    params = doc["aws"]["cloudtrail"]["request_parameters"]
    assert params["roleName"] == "admin" and policy.startswith(params["policyDocument"])
    # the payload stays searchable by its other leaves
    found = _hits(opensearch_client, store.prefix, {"term": {"aws.cloudtrail.request_parameters.roleName": "admin"}})
    assert len(found) == 1


def test_kubernetes_configmap_in_request_object_is_indexed(store, opensearch_client, tmp_path):
    event = orjson.loads(sample("k8s_audit/exec_pod.json").read_bytes().splitlines()[0])
    event["verb"] = "create"
    event["auditID"] = "hostile-configmap-1"
    event["objectRef"] = {"resource": "configmaps", "namespace": "default", "name": "big", "apiVersion": "v1"}
    event["requestObject"] = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"script.sh": "echo x; " * 20_000}}
    path = tmp_path / "audit.log"
    path.write_bytes(orjson.dumps(event) + b"\n")
    summary = run(local_objects(path), store, dataset="kubernetes.audit")
    assert (summary.written, summary.dead_lettered) == (1, 0), summary.render()
    hits = _hits(opensearch_client, store.prefix, {"term": {"kubernetes.audit.auditID": "hostile-configmap-1"}})
    assert len(hits) == 1 and hits[0]["siem"]["truncated"] == ["kubernetes.audit.requestObject.data.script.sh"]


# --- 2. requests sized by bytes -------------------------------------------------------------------


def _event(i: int, extra: dict[str, Any]) -> Event:
    doc = {
        "@timestamp": "2024-03-01T00:00:00Z",
        "event": {"dataset": "aws.alb", "kind": "event", "ingested": "2024-03-01T00:00:00Z", **extra},
        "log": {"file": {"path": "s3://b/k"}, "offset": i},
    }
    return Event(f"hostile-{i}", "aws.alb", doc)


def test_big_events_are_sent_in_requests_bounded_by_bytes(store, opensearch_client, monkeypatch):
    """30 events of 4 MB: one 120 MB request was refused with HTTP 413 (the run exited 2, nothing stored)."""
    sizes: list[int] = []
    bulk = store._bulk

    def spy(body: bytes) -> dict[str, Any]:
        sizes.append(len(body))
        return bulk(body)

    monkeypatch.setattr(store, "_bulk", spy)
    events = [_event(i, {"original": f"{i:04d}" + "x" * (4 << 20)}) for i in range(30)]
    assert store.write(events) == []
    assert _count(opensearch_client, store.prefix) == 30
    assert len(sizes) >= 12 and max(sizes) <= (10 << 20) + (4 << 20) + 1024, sizes


def test_a_413_splits_the_request(opensearch_client, index_prefix):
    """Even with a byte bound above the cluster's limit, a 413 halves the request instead of failing the run."""
    install_templates(opensearch_client, index_prefix)
    store = OpenSearchStore(opensearch_client, index_prefix, refresh=True, max_bulk_bytes=1 << 30)
    events = [_event(i, {"original": "y" * (4 << 20)}) for i in range(30)]
    assert store.write(events) == []
    assert _count(opensearch_client, index_prefix) == 30


def test_many_dead_letters_are_all_stored_in_bounded_requests(store, opensearch_client, tmp_path, monkeypatch):
    """7000 unparseable 16 KB lines: the dead letters (~115 MB) were one request → HTTP 413, exit 2,
    zero dead letters stored. Now they are written while the run goes, in bounded requests."""
    path = tmp_path / "garbage.log"
    with path.open("wb") as out:
        for i in range(7000):
            out.write(b"garbage %05d " % i + b"z" * (16 * 1024 - 15) + b"\n")
    calls: list[int] = []
    write_dead_letters = store.write_dead_letters

    def spy(letters: list[DeadLetter]) -> None:
        calls.append(len(letters))
        write_dead_letters(letters)

    monkeypatch.setattr(store, "write_dead_letters", spy)
    summary = run(local_objects(path), store, dataset="aws.alb")
    assert summary.dead_lettered == 7000 and summary.written == 0
    assert _count(opensearch_client, store.prefix, "deadletter") == 7000
    assert max(calls) <= 1000, calls


# --- 7. mapping explosion and timeouts ------------------------------------------------------------


def test_fluentd_6000_unique_keys_load_in_seconds_and_the_mapping_stays_small(store, opensearch_client, tmp_path):
    path = tmp_path / "app" / "fluentd.log"
    path.parent.mkdir()
    with path.open("wb") as out:
        for i in range(6000):
            record = {"time": "2024-03-01T10:00:00Z", "tag": "app.worker", f"key_{i}": f"value {i}"}
            out.write(orjson.dumps(record) + b"\n")
    started = time.monotonic()
    summary = run(local_objects(path), store, dataset="fluentd")
    elapsed = time.monotonic() - started
    assert (summary.written, summary.dead_lettered) == (6000, 0), summary.render()
    assert elapsed < 60, f"6000 unique keys took {elapsed:.0f} s"
    mapping = opensearch_client.indices.get_mapping(index=f"{store.prefix}-events-app-*")
    fields = orjson.dumps(mapping).count(b'"type"')
    assert fields < 300, f"{fields} mapped fields"
    # each key is still searchable, inside the one flat_object field
    hits = _hits(opensearch_client, store.prefix, {"term": {"fluentd.fields.key_4242": "value 4242"}})
    assert len(hits) == 1


class _SlowBulk(http.server.BaseHTTPRequestHandler):
    """Answers nothing in time: every request is logged, then the handler sleeps past the client timeout."""

    arrivals: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).arrivals.append(time.monotonic())
        time.sleep(1.5)
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"took":1,"errors":false,"items":[]}')
        except OSError:
            pass

    def log_message(self, *args: Any) -> None:
        pass


def test_a_read_timeout_is_resent_once_after_a_backoff() -> None:
    """Before: the client's own retries (max_retries x retry_on_timeout) times ours re-sent the same
    bulk body 24 times to a node that was still working on it. Now: one resend, after a backoff."""
    from opensearchpy import OpenSearch

    _SlowBulk.arrivals = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowBulk)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = OpenSearch(hosts=[url], timeout=0.3, max_retries=3, retry_on_timeout=True)
        store = OpenSearchStore(client, "t", max_retries=5, initial_backoff=0.5)
        with pytest.raises(StoreUnavailable, match="timed out"):
            store.write([_event(1, {})])
    finally:
        server.shutdown()
        server.server_close()
    arrivals = _SlowBulk.arrivals
    assert len(arrivals) == 2, f"{len(arrivals)} bulk requests for one batch"
    assert arrivals[1] - arrivals[0] >= 0.3 + 0.5 - 0.05  # the timeout, then the backoff


def test_parse_options_carry_the_record_limits() -> None:
    options = ParseOptions()
    assert options.max_record_bytes == 1 << 20 and options.max_inflate_ratio == 200
