"""kubernetes.container: the node's files (Docker json-file, CRI) and fluentd / fluent-bit kubernetes
records, parsed through the real pipeline; one pod line must give the same fields whichever wrote it."""

from __future__ import annotations

import copy
import io
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from _property_cases import FUZZ, JSON_VALUES, assert_well_formed, damaged
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import parse_bytes

from siem.formats import k8s_container
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, parse_object
from siem.sources import SourceObject

SAMPLES = Path(__file__).resolve().parent / "data" / "samples" / "logs" / "k8s_container"
POD, NAMESPACE, CONTAINER = "shop-api-7d9f8-x2x4q", "shop", "api"
DOCKER_ID = "c053db7370be9c33d64677f9759863d850ebe35104069bec241cd1bb4674bd19"
NODE_FILE = f"var/log/containers/{POD}_{NAMESPACE}_{CONTAINER}-{DOCKER_ID}.log"
RUNTIME_TIME = "2024-01-02T03:04:09.123456789Z"  # the container runtime's time of every line below
RUNTIME_EPOCH = 1704164649.123456  # the same instant as fluent-bit's `date` (epoch, µs)
LOGRAGE = (
    '{"method":"POST","path":"/orders?ref=mail","format":"json","controller":"OrdersController","action":"create",'
    '"status":201,"duration":12.5,"time":"2024-01-02T12:04:05.678+09:00","remote_ip":"203.0.113.7",'
    '"request_id":"req-42","user_id":42,"trace_id":"Root=1-65937d45-0123456789abcdef01234567","params":{"sku":"A1"}}'
)
ECS_LINE = (
    '{"@timestamp":"2024-01-02T03:04:06.250Z","log.level":"warn","message":"login failed","ecs.version":"1.6.0",'
    '"service.name":"auth","user":{"name":"alice"},"source":{"ip":"198.51.100.9"},"attempt":3}'
)
NGINX = '198.51.100.20 - bob [02/Jan/2024:03:04:07 +0000] "GET /cart HTTP/1.1" 404 12 "-" "curl/8.0"'
TEXT = "Puma starting in single mode..."
LINES = (LOGRAGE, ECS_LINE, NGINX, TEXT)
LABELS = {"app": "shop-api", "pod-template-hash": "7d9f8"}


def parse(data: bytes, path: str = "objects/any.log", options: ParseOptions | None = None) -> list[Any]:
    obj = SourceObject(path, f"test:{path}", partial(io.BytesIO, data))
    return list(parse_object(obj, Router(), options or ParseOptions(), ingested="2024-01-03T00:00:00Z"))


def events(data: bytes, path: str = "objects/any.log") -> list[dict[str, Any]]:
    items = parse(data, path)
    assert [i for i in items if isinstance(i, DeadLetter)] == []
    return [i.doc for i in items if isinstance(i, Event)]


def ndjson(records: list[dict[str, Any]] | list[bytes]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)


def docker(line: str) -> dict[str, Any]:
    return {"log": line + "\n", "stream": "stdout", "time": RUNTIME_TIME}


def fluentd(line: str) -> dict[str, Any]:
    """fluentd-kubernetes-daemonset: in_tail docker parser, kubernetes_metadata filter, time injected."""
    return {
        "log": line + "\n",
        "stream": "stdout",
        "docker": {"container_id": DOCKER_ID},
        "kubernetes": {
            "container_name": CONTAINER,
            "namespace_name": NAMESPACE,
            "pod_name": POD,
            "container_image": "registry.example:5000/shop/api:1.4.2",
            "pod_id": "5ac76e2f-17d2-11e8-b34e-080027749cbc",
            "host": "ip-10-0-1-5.ec2.internal",
            "labels": LABELS,
            "master_url": "https://10.96.0.1:443/api",
            "namespace_id": "8e0f2c1a-0000-4000-8000-000000000001",
        },
        "tag": f"kubernetes.{NODE_FILE.replace('/', '.')}",
        "time": "2024-01-02T03:04:09.123456789+00:00",
    }


def fluentd_cri(line: str) -> dict[str, Any]:
    """The same on containerd: fluent-plugin-parser-cri puts the line in `message` (and the P/F flag in `logtag`)."""
    record = fluentd(line)
    del record["log"]
    return {"logtag": "F", "message": line, **record}


def fluent_bit(line: str, keep_log: bool = True) -> dict[str, Any]:
    """fluent-bit: tail + cri parser (time consumed), kubernetes filter Merge_Log On, out_s3 `date`."""
    record: dict[str, Any] = {"date": RUNTIME_EPOCH, "stream": "stdout", "_p": "F"}
    if keep_log:
        record["log"] = line
    if line.startswith("{"):
        record.update(orjson.loads(line))
    record["kubernetes"] = {
        "pod_name": POD,
        "namespace_name": NAMESPACE,
        "pod_id": "5ac76e2f-17d2-11e8-b34e-080027749cbc",
        "labels": LABELS,
        "host": "ip-10-0-1-5.ec2.internal",
        "container_name": CONTAINER,
        "docker_id": DOCKER_ID,
        "container_image": "registry.example:5000/shop/api:1.4.2",
    }
    return record


# --- the shared samples -------------------------------------------------------------------------


def test_docker_json_sample_apache_line_is_mapped_by_the_apache_parser() -> None:
    (doc,) = events((SAMPLES / "docker-json-apache.log").read_bytes(), "samples/docker-json-apache.log")
    assert doc["event"]["dataset"] == "apache.access"
    assert doc["@timestamp"] == "2018-02-21T17:26:53Z"  # the line's own time (CLF), not Docker's .36
    assert doc["source"]["ip"] == "20.38.166.115"
    assert doc["http"]["request"]["method"] == "GET"
    assert doc["http"]["response"]["status_code"] == 500
    assert doc["url"]["path"] == "/intra-abdominally"
    assert doc["log"]["iostream"] == "stdout"


def test_docker_json_sample_istio_proxy_line_is_mapped_by_the_istio_builtin() -> None:
    (doc,) = events((SAMPLES / "docker-json-istio-proxy.log").read_bytes(), "samples/istio.log")
    assert doc["event"]["dataset"] == "kubernetes.container"
    assert doc["@timestamp"] == "2018-09-21T02:56:05.979833Z"  # the proxy's `time`, not Docker's 02:56:06
    assert doc["source"]["ip"] == "10.244.1.131"
    assert doc["destination"]["ip"] == "10.244.0.78"
    assert doc["log"]["level"] == "info"
    assert doc["related"]["ip"] == ["10.244.1.131", "10.244.0.78"]
    fields = doc["app"]["fields"]
    assert fields["destinationWorkload"] == "user-db" and fields["sentBytes"] == 424
    assert "sourceIp" not in fields and "time" not in fields  # mapped keys are not repeated
    assert "siem" not in doc  # nothing required was missing


def test_fluent_bit_sample_kubernetes_metadata_and_merged_json() -> None:
    (doc,) = events((SAMPLES / "fluentbit-k8s-json-logs.out").read_bytes(), "samples/fluentbit.out")
    assert doc["event"]["dataset"] == "kubernetes.container"
    assert doc["@timestamp"] == "2018-02-22T13:14:50.773975Z"
    assert doc["container"] == {"name": "json-logs", "id": DOCKER_ID}
    assert doc["orchestrator"] == {
        "type": "kubernetes",
        "namespace": "default",
        "resource": {"type": "pod", "name": "json-logs", "id": "5ac76e2f-17d2-11e8-b34e-080027749cbc"},
    }
    assert doc["host"] == {"name": "minikube"}
    assert doc["kubernetes"] == {"pod": {"name": "json-logs"}, "namespace": "default", "labels": {"run": "json-logs"}}
    assert doc["app"] == {"fields": {"message_id": 1, "word": "eagers"}}


@pytest.mark.parametrize(
    "name", ["docker-json-apache.log", "docker-json-istio-proxy.log", "fluentbit-k8s-json-logs.out"]
)
def test_each_sample_line_gives_the_same_fields_from_cri_fluentd_and_fluent_bit(name: str) -> None:
    """The sample as shipped, and its line re-wrapped as the other shippers would write it."""
    original = (SAMPLES / name).read_bytes()
    raw = orjson.loads(original)
    line, when = raw["log"].rstrip("\n"), raw["time"]
    epoch = datetime.fromisoformat(when[:26] + "Z").timestamp()  # fluent-bit's `date`: µs, as out_s3 writes it
    meta = {"pod_name": "p", "namespace_name": "ns", "container_name": "c", "host": "node-1"}
    merged = orjson.loads(line) if line.startswith("{") else {}
    shapes = {
        "as shipped": original,
        "cri": f"{when} stdout F {line}\n".encode(),
        "fluentd": ndjson([{"log": line + "\n", "stream": "stdout", "time": when, "kubernetes": meta}]),
        "fluent-bit": ndjson([{"date": epoch, "log": line, "stream": "stdout", **merged, "kubernetes": meta}]),
    }
    parsed = {shape: [_line_fields(d) for d in events(data, f"samples/{name}")] for shape, data in shapes.items()}
    assert len(parsed["as shipped"]) == 1
    for shape, docs in parsed.items():
        assert docs == parsed["as shipped"], shape


# --- one line, four shippers --------------------------------------------------------------------


def _line_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """What the pod line itself gave: the container context and the envelope left out."""
    doc = copy.deepcopy(doc)
    for key in ("container", "orchestrator", "kubernetes", "host", "data_stream"):
        doc.pop(key, None)
    doc["log"].pop("file")
    doc["log"].pop("offset")
    doc["event"].pop("ingested")
    return doc


@pytest.fixture(scope="module")
def by_shipper() -> dict[str, list[dict[str, Any]]]:
    cri = "".join(f"{RUNTIME_TIME} stdout F {line}\n" for line in LINES).encode()
    split = LOGRAGE[:40], LOGRAGE[40:90], LOGRAGE[90:]  # the first line written as P, P, F
    cri_split = "".join(f"{RUNTIME_TIME} stdout {tag} {part}\n" for tag, part in zip("PPF", split, strict=True))
    cri_split += "".join(f"{RUNTIME_TIME} stdout F {line}\n" for line in LINES[1:])
    out_file = [
        f"2024-01-02T03:04:09Z\t{r['tag']}\t".encode() + orjson.dumps({k: v for k, v in r.items() if k != "tag"})
        for r in map(fluentd, LINES)
    ]
    return {
        "docker": events(ndjson([docker(line) for line in LINES]), NODE_FILE),
        "cri": events(cri, NODE_FILE.replace(".log", ".cri.log")),
        "cri-partials": events(cri_split.encode(), NODE_FILE),
        "fluentd-json": events(ndjson([fluentd(line) for line in LINES]), "fluentd/2024/01/02/k8s_0.gz"),
        "fluentd-out_file": events(ndjson(out_file), "fluentd/2024/01/02/k8s_1.gz"),
        "fluentd-cri": events(ndjson([fluentd_cri(line) for line in LINES]), "fluentd/2024/01/02/k8s_2.gz"),
        "fluent-bit": events(ndjson([fluent_bit(line) for line in LINES]), "fluent-bit-logs/kube/2024/01/02/a"),
        "fluent-bit-keep-log-off": events(
            ndjson([fluent_bit(line, keep_log=not line.startswith("{")) for line in LINES]), "fb/b"
        ),
    }


def test_every_shipper_gives_the_same_line_fields(by_shipper) -> None:
    reference = [_line_fields(d) for d in by_shipper["docker"]]
    assert len(reference) == len(LINES)
    for shipper, docs in by_shipper.items():
        assert [_line_fields(d) for d in docs] == reference, shipper


def test_fluentd_and_fluent_bit_give_identical_documents(by_shipper) -> None:
    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        doc["log"].pop("file")
        doc["log"].pop("offset")
        return doc

    reference = [strip(d) for d in by_shipper["fluentd-json"]]
    for shipper in ("fluentd-out_file", "fluentd-cri", "fluent-bit", "fluent-bit-keep-log-off"):
        assert [strip(d) for d in by_shipper[shipper]] == reference, shipper
    meta = reference[0]
    assert meta["container"] == {
        "name": "api",
        "id": DOCKER_ID,
        "image": {"name": "registry.example:5000/shop/api", "tag": ["1.4.2"]},
    }
    assert meta["orchestrator"]["namespace"] == "shop"
    assert meta["orchestrator"]["resource"]["name"] == POD
    assert meta["host"]["name"] == "ip-10-0-1-5.ec2.internal"
    assert meta["kubernetes"]["labels"] == LABELS


def test_node_file_name_gives_pod_namespace_container(by_shipper) -> None:
    doc = by_shipper["docker"][3]
    assert doc["container"] == {"name": "api", "id": DOCKER_ID}
    assert doc["orchestrator"] == {"type": "kubernetes", "namespace": "shop", "resource": {"type": "pod", "name": POD}}


def test_lograge_line_fields(by_shipper) -> None:
    doc = by_shipper["cri-partials"][0]
    assert doc["@timestamp"] == "2024-01-02T03:04:05.678000Z"  # +09:00 in the line, UTC here
    assert doc["source"]["ip"] == "203.0.113.7"
    assert doc["user"] == {"id": "42"}
    assert doc["http"]["request"] == {"method": "POST", "id": "req-42"}
    assert doc["http"]["response"] == {"status_code": 201}
    assert doc["url"]["path"] == "/orders" and doc["url"]["query"] == "ref=mail"
    assert doc["trace"] == {"id": "Root=1-65937d45-0123456789abcdef01234567"}
    assert doc["event"]["outcome"] == "success"
    assert doc["app"]["fields"] == {
        "format": "json",
        "controller": "OrdersController",
        "action": "create",
        "duration": 12.5,
        "params": {"sku": "A1"},
    }


def test_ecs_line_passes_through(by_shipper) -> None:
    doc = by_shipper["fluent-bit"][1]
    assert doc["@timestamp"] == "2024-01-02T03:04:06.250000Z"
    assert doc["log"]["level"] == "warn"
    assert doc["message"] == "login failed"
    assert doc["service"] == {"name": "auth"}
    assert doc["user"] == {"name": "alice"} and doc["related"]["user"] == ["alice"]
    assert doc["source"] == {"ip": "198.51.100.9"}
    assert doc["ecs"] == {"version": "1.6.0"}
    assert doc["app"] == {"fields": {"attempt": 3}}
    assert doc["event"]["dataset"] == "kubernetes.container"


def test_access_and_text_lines(by_shipper) -> None:
    web, text = by_shipper["cri"][2], by_shipper["cri"][3]
    assert web["event"]["dataset"] == "nginx.access"
    assert web["@timestamp"] == "2024-01-02T03:04:07Z"
    assert web["source"]["ip"] == "198.51.100.20" and web["user"] == {"name": "bob"}
    assert text["message"] == TEXT
    assert text["@timestamp"] == "2024-01-02T03:04:09.123456Z"  # no time in the line: the runtime's
    assert text["event"]["dataset"] == "kubernetes.container"


# --- framing limits, routing ----------------------------------------------------------------------


def test_cri_partials_beyond_the_record_cap_are_one_dead_letter_and_the_rest_is_kept() -> None:
    options = ParseOptions(max_record_bytes=1000)
    parts = [f"{RUNTIME_TIME} stdout P {'x' * 600}\n" for _ in range(4)] + [f"{RUNTIME_TIME} stdout F end\n"]
    data = "".join([*parts, f"{RUNTIME_TIME} stderr F after\n"]).encode()
    items = parse(data, NODE_FILE, options)
    letters = [i for i in items if isinstance(i, DeadLetter)]
    docs = [i.doc for i in items if isinstance(i, Event)]
    assert len(letters) == 1
    assert "2403 bytes (joined partials) exceeds the 1000-byte record limit" in letters[0].reason
    assert letters[0].offset == 0
    assert [d["message"] for d in docs] == ["after"]
    assert docs[0]["log"]["iostream"] == "stderr"


def test_unfinished_partial_at_the_end_is_kept_and_a_garbage_line_is_a_dead_letter() -> None:
    data = f"{RUNTIME_TIME} stdout F first\nnot a container record\n{RUNTIME_TIME} stdout P tail-".encode()
    items = parse(data, NODE_FILE)
    assert [i.doc["message"] for i in items if isinstance(i, Event)] == ["first", "tail-"]
    (letter,) = [i for i in items if isinstance(i, DeadLetter)]
    assert letter.reason.startswith("not a container log record")


def test_routing_by_key_and_by_content_and_fluentd_does_not_steal_out_file_k8s_records() -> None:
    router = Router()
    assert router.by_path(f"s3://logs/node-1/{NODE_FILE}").dataset == "kubernetes.container"
    assert router.by_path("fluent-bit-logs/kube.var.log.containers.a_b_c-0.log/2024/01/02/x").dataset == (
        "kubernetes.container"
    )
    fluentd_layout = f"nginx/kube.{NODE_FILE.replace('/', '.')}/2024/01/02/20240102_0.gz"  # fluentd's key layout too
    assert router.by_path(fluentd_layout).dataset == "kubernetes.container"
    assert router.by_path("nginx/web01/2024/01/02/20240102_0.gz").dataset == "fluentd"
    out_file = f"2024-01-02T03:04:09Z\tkubernetes.x\t{orjson.dumps(fluentd(TEXT)).decode()}\n".encode()
    assert router.choose("any/key", out_file).dataset == "kubernetes.container"
    plain_fluentd = b'2024-01-02T03:04:09Z\tsyslog.auth\t{"host":"h","ident":"sshd","message":"x"}\n'
    assert router.choose("any/key", plain_fluentd).dataset == "fluentd"
    assert router.choose("any/key", orjson.dumps(docker(TEXT)) + b"\n").dataset == "kubernetes.container"
    assert not k8s_container.LOG_TYPE.sniff(b'{"message": "hello", "time": "2024-01-02T03:04:05Z"}\n')


# --- hostile input --------------------------------------------------------------------------------

FEWER = settings(FUZZ, max_examples=60)  # two records per example, each through the whole pipeline


@FEWER
@given(values=st.lists(JSON_VALUES, min_size=12, max_size=12))
def test_any_value_under_a_mapped_key_is_one_event_never_an_error(values: list[Any]) -> None:
    keys = ("method", "path", "status", "controller", "action", "time", "remote_ip", "request_id", "user_id")
    app = dict(zip((*keys, "@timestamp", "ecs.version", "source"), values, strict=True))
    records = [fluent_bit(orjson.dumps(app).decode()), docker(orjson.dumps(app).decode())]
    events, letters = parse_bytes(ndjson(records), "kubernetes.container")
    assert_well_formed(events, letters)
    assert (len(events), letters) == (2, [])


@FEWER
@given(
    data=damaged(ndjson([docker(line) for line in LINES]) + f"{RUNTIME_TIME} stdout P x\n".encode(), [b"", b"x" * 5000])
)
def test_damaged_objects_never_raise(data: bytes) -> None:
    events, letters = parse_bytes(data, "kubernetes.container")
    assert_well_formed(events, letters)


def test_partial_record_whose_log_is_not_text_is_an_event_not_a_crash() -> None:
    records = [{"stream": "stdout", "_p": "P", "log": {"a": 1}, "date": 1704164649}, docker("done")]
    events, letters = parse_bytes(ndjson(records), "kubernetes.container")
    assert letters == []
    assert [e.get("message") for e in events] == [None, "done"]
    assert events[0]["app"] == {"fields": {"a": 1}}


@FEWER
@given(
    values=st.lists(JSON_VALUES, min_size=7, max_size=7),
    stream=st.sampled_from(["stdout", "stderr", "other"]),
    flag=st.sampled_from(["P", "F", None]),
)
def test_any_shipper_key_value_gives_one_event_or_one_dead_letter(values: list[Any], stream: str, flag: Any) -> None:
    keys = ("log", "time", "date", "kubernetes", "docker", "tag", "message")
    record = {**dict(zip(keys, values, strict=True)), "stream": stream, "_p": flag}
    events, letters = parse_bytes(orjson.dumps(record) + b"\n", "kubernetes.container")
    assert_well_formed(events, letters)
    assert len(events) + len(letters) == 1
