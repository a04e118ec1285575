"""Kubernetes audit events: falco's captured Events (no Elastic oracle exists for them, so the
important fields are asserted explicitly), the framings kube-apiserver and tools produce, and
hostile input."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest
from _property_cases import FUZZ, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import SAMPLES, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.k8s_audit import LOG_TYPE
from siem.formats.routing import Router

ALL_SAMPLES = sorted(p.name for p in (SAMPLES / "k8s_audit").glob("*.json"))
EXEC = "k8s_audit/exec_pod.json"


def _event(name: str) -> dict:
    return orjson.loads(sample(f"k8s_audit/{name}").read_bytes().splitlines()[0])


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_maps_without_dead_letters(name: str) -> None:
    raw = sample(f"k8s_audit/{name}").read_bytes()
    events, letters = parse_file(sample(f"k8s_audit/{name}"))
    assert not letters
    assert len(events) == len([line for line in raw.splitlines() if line.strip()])
    for doc in events:
        assert doc["event"]["dataset"] == "kubernetes.audit"
        assert doc["event"]["category"] == ["api"]
        assert doc["event"]["action"] == doc["kubernetes"]["audit"]["verb"]
        assert doc["event"]["id"] == doc["kubernetes"]["audit"]["auditID"]
        assert doc["user"]["name"] == doc["kubernetes"]["audit"]["user"]["username"]
        assert doc["source"]["ip"] == doc["kubernetes"]["audit"]["sourceIPs"][0]
        assert doc["@timestamp"].endswith("Z")
        assert doc["orchestrator"]["type"] == "kubernetes"
        assert "original" not in doc["event"]


def test_human_kubectl_exec_is_findable() -> None:
    events, _ = parse_file(sample(EXEC))
    (doc,) = events
    assert doc["event"]["action"] == "create"
    assert doc["kubernetes"]["audit"]["objectRef"]["subresource"] == "exec"
    assert not doc["user"]["name"].startswith("system:")
    assert doc["user"]["name"] == "minikube-user"
    assert doc["kubernetes"]["audit"]["user"]["groups"] == ["system:masters", "system:authenticated"]
    assert doc["source"] == {"ip": "192.168.99.1", "address": "192.168.99.1"}
    assert doc["related"] == {"ip": ["192.168.99.1"], "user": ["minikube-user"]}
    # requestReceivedTimestamp is @timestamp (same for every stage of one request); the stage time is event.end
    assert doc["@timestamp"] == "2018-10-26T13:38:34.867116Z"
    assert doc["event"]["start"] == "2018-10-26T13:38:34.867116Z"
    assert doc["event"]["end"] == "2018-10-26T13:38:34.902914Z"
    assert doc["http"]["response"]["status_code"] == 101
    assert doc["event"]["outcome"] == "success"
    assert doc["event"]["type"] == ["creation", "allowed"]
    assert doc["orchestrator"] == {
        "type": "kubernetes",
        "namespace": "default",
        "resource": {"type": "pods", "name": "nginx-deployment-7998647bdf-phvq7"},
        "api_version": "v1",
    }
    assert doc["url"]["path"] == "/api/v1/namespaces/default/pods/nginx-deployment-7998647bdf-phvq7/exec"
    assert doc["url"]["query"].startswith("command=bash&container=nginx1")
    assert doc["process"] == {"args": ["bash"], "command_line": "bash", "name": "bash"}
    assert doc["container"] == {"name": "nginx1"}
    assert doc["kubernetes"]["audit"]["annotations"] == {
        "authorization_k8s_io/decision": "allow",
        "authorization_k8s_io/reason": "",
    }


def test_v1_event_with_user_agent_and_secret() -> None:
    events, _ = parse_file(sample("k8s_audit/create_secret.json"))
    (doc,) = events
    assert doc["user_agent"] == {"original": "kubectl/v1.17.3 (darwin/amd64) kubernetes/06ad960"}
    assert doc["kubernetes"]["audit"]["apiVersion"] == "audit.k8s.io/v1"
    assert doc["kubernetes"]["audit"]["level"] == "Metadata"
    assert doc["kubernetes"]["audit"]["stage"] == "ResponseComplete"
    assert doc["orchestrator"]["resource"] == {"type": "secrets", "name": "example-secret"}
    assert doc["url"] == {
        "original": "/api/v1/namespaces/default/secrets",
        "path": "/api/v1/namespaces/default/secrets",
    }
    assert doc["@timestamp"] == "2020-04-21T17:57:05.541358Z"
    assert "requestObject" not in doc["kubernetes"]["audit"]


def test_service_account_over_ipv6_loopback() -> None:
    events, _ = parse_file(sample("k8s_audit/create_nginx_pod_privileged.json"))
    (doc,) = events
    assert doc["user"]["name"] == "system:serviceaccount:kube-system:replicaset-controller"
    assert doc["source"]["ip"] == "::1"
    spec = doc["kubernetes"]["audit"]["requestObject"]["spec"]
    assert spec["containers"][0]["securityContext"]["privileged"] is True
    assert doc["kubernetes"]["audit"]["apiVersion"] == "audit.k8s.io/v1beta1"


def test_rbac_object_api_version_and_deletion() -> None:
    events, _ = parse_file(sample("k8s_audit/attach_cluster_admin_role.json"))
    assert events[0]["orchestrator"]["api_version"] == "rbac.authorization.k8s.io/v1"
    assert events[0]["orchestrator"]["resource"]["type"] == "clusterrolebindings"
    assert events[0]["kubernetes"]["audit"]["requestObject"]["roleRef"]["name"] == "cluster-admin"
    deleted, _ = parse_file(sample("k8s_audit/delete_secret.json"))
    assert deleted[0]["event"]["type"] == ["deletion", "allowed"]
    assert deleted[0]["http"]["response"]["status_code"] == 200


def test_impersonation_forbidden_and_proxied_source(tmp_path: Path) -> None:
    event = _event("exec_pod.json")
    event["impersonatedUser"] = {"username": "jane", "groups": ["dev"], "extra": {"a.b/c": ["x"]}}
    event["sourceIPs"] = ["203.0.113.9", "not-an-ip", "10.0.0.1", "203.0.113.9"]
    event["responseStatus"] = {"code": 403, "status": "Failure", "reason": "Forbidden", "metadata": {}}
    event["annotations"] = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": "no RBAC"}
    event["user"]["extra"] = {"authentication.kubernetes.io/pod-name": ["p"], "arn": ["arn:aws:iam::1:role/x"]}
    events, letters = parse_file(_write(tmp_path, "a.json", orjson.dumps(event)))
    assert not letters
    doc = events[0]
    assert doc["user"] == {"name": "minikube-user", "effective": {"name": "jane"}}
    assert doc["related"]["user"] == ["minikube-user", "jane"]
    assert doc["source"]["ip"] == "203.0.113.9"
    assert doc["related"]["ip"] == ["203.0.113.9", "10.0.0.1"]
    assert doc["kubernetes"]["audit"]["sourceIPs"] == ["203.0.113.9", "not-an-ip", "10.0.0.1", "203.0.113.9"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["type"] == ["creation", "denied"]
    assert doc["event"]["reason"] == "no RBAC"
    assert doc["kubernetes"]["audit"]["responseStatus"] == {"code": 403, "status": "Failure", "reason": "Forbidden"}
    assert doc["kubernetes"]["audit"]["impersonatedUser"]["extra"] == {"a_b/c": ["x"]}
    assert doc["kubernetes"]["audit"]["user"]["extra"] == {
        "authentication_kubernetes_io/pod-name": ["p"],
        "arn": ["arn:aws:iam::1:role/x"],
    }


def test_pretty_printed_document_event_list_and_array(tmp_path: Path) -> None:
    a, b = _event("exec_pod.json"), _event("create_secret.json")
    pretty = orjson.dumps(a, option=orjson.OPT_INDENT_2) + b"\n" + orjson.dumps(b, option=orjson.OPT_INDENT_2)
    events, letters = parse_file(_write(tmp_path, "pretty.json", b"\n\n" + pretty + b"\n"))
    assert not letters
    assert [e["event"]["id"] for e in events] == [a["auditID"], b["auditID"]]
    assert events[0]["log"]["offset"] == 2  # the byte offset of the document
    event_list = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [a, b]}
    listed, letters = parse_file(_write(tmp_path, "list.json", orjson.dumps(event_list, option=orjson.OPT_INDENT_2)))
    assert not letters and [e["event"]["id"] for e in listed] == [a["auditID"], b["auditID"]]
    assert [e["log"]["offset"] for e in listed] == [0, 1]
    arrayed, letters = parse_file(_write(tmp_path, "array.json", orjson.dumps([a, b])), "kubernetes.audit")
    assert not letters and len(arrayed) == 2


def test_pretty_printed_broken_document_does_not_swallow_the_next(tmp_path: Path) -> None:
    a, b = _event("exec_pod.json"), _event("create_secret.json")
    broken = orjson.dumps(a, option=orjson.OPT_INDENT_2)[:200]
    data = broken + b"\n" + orjson.dumps(b, option=orjson.OPT_INDENT_2) + b"\n"
    events, letters = parse_file(_write(tmp_path, "broken.json", data), "kubernetes.audit")
    assert [e["event"]["id"] for e in events] == [b["auditID"]]
    assert len(letters) == 1 and letters[0].offset == 0 and letters[0].reason


def test_non_object_request_object_is_wrapped(tmp_path: Path) -> None:
    event = _event("create_secret.json")
    event["requestObject"] = "raw-body"
    event["responseObject"] = [1, 2]
    events, _ = parse_file(_write(tmp_path, "x.json", orjson.dumps(event)))
    assert events[0]["kubernetes"]["audit"]["requestObject"] == {"value": "raw-body"}
    assert events[0]["kubernetes"]["audit"]["responseObject"] == {"value": [1, 2]}


def test_garbage_lines_and_wrong_types_are_dead_letters_with_positions(tmp_path: Path) -> None:
    good = sample("k8s_audit/create_secret.json").read_bytes().splitlines()[0]
    no_time = _event("create_secret.json")
    del no_time["requestReceivedTimestamp"], no_time["stageTimestamp"]
    odd_types = _event("create_secret.json")
    odd_types.update(user="root", sourceIPs="1.2.3.4", responseStatus=[], objectRef=7, annotations=None, verb=3)
    lines = [
        good,
        b'{"kind":"Event","auditID":"x", trunc',
        orjson.dumps(no_time),
        orjson.dumps(odd_types),
        b"[1]",
        good,
    ]
    data = b"\n".join(lines) + b"\n"
    events, letters = parse_file(_write(tmp_path, "mixed.log", data), "kubernetes.audit")
    assert len(events) == 3
    assert "user" not in events[1] and "source" not in events[1] and "action" not in events[1]["event"]
    offsets = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    assert [(d.offset, d.stage) for d in letters] == [(offsets[1], "frame"), (offsets[2], "map"), (offsets[4], "map")]
    assert "invalid JSON" in letters[0].reason
    assert "no valid requestReceivedTimestamp" in letters[1].reason
    assert "not an object" in letters[2].reason


def test_kind_other_than_event_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an audit Event"):
        LOG_TYPE.to_ecs({"kind": "Pod", "requestReceivedTimestamp": "2020-01-01T00:00:00Z"}, ParseOptions())


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_sniffing_picks_kubernetes_audit(name: str) -> None:
    head = sample(f"k8s_audit/{name}").read_bytes()[:65536]
    assert Router().choose("/no/known/path", head).dataset == "kubernetes.audit"


def test_sniffing_pretty_printed_and_not_core_events() -> None:
    pretty = orjson.dumps(_event("exec_pod.json"), option=orjson.OPT_INDENT_2)
    assert LOG_TYPE.sniff(pretty)
    core_event = {"kind": "Event", "apiVersion": "v1", "reason": "Pulled", "involvedObject": {"kind": "Pod"}}
    assert not LOG_TYPE.sniff(orjson.dumps(core_event))
    assert not LOG_TYPE.sniff(orjson.dumps(core_event, option=orjson.OPT_INDENT_2))
    assert not LOG_TYPE.sniff(b'{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}\n')
    long_line = (
        sample("k8s_audit/create_secret.json").read_bytes().replace(b'"level"', b'"x":"' + b"y" * 70000 + b'","level"')
    )
    assert LOG_TYPE.sniff(long_line[:65536])


@pytest.mark.parametrize(
    "path",
    [
        "/var/log/kubernetes/audit.log",
        "/var/log/kubernetes/kube-apiserver-audit.log",
        "/var/log/kube-apiserver/audit-2024-01-01T00-00-00.000.log.gz",
        "s3://bucket/nodes/cp-1/var/log/kubernetes/kube-apiserver-audit.log",
        "/var/lib/rancher/k3s/server/logs/audit.log",
    ],
)
def test_key_layouts_pick_kubernetes_audit(path: str) -> None:
    assert Router().choose(path, b"").dataset == "kubernetes.audit"


_SEED = sample(EXEC).read_bytes() + sample("k8s_audit/create_configmap_sensitive_values.json").read_bytes()
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=20),
    st.lists(st.text(max_size=3), max_size=3),
    st.just({}),
)


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(_SEED)),
    insert_at=st.integers(min_value=0, max_value=len(_SEED)),
    noise=st.binary(max_size=40),
    key=st.sampled_from(["user", "sourceIPs", "objectRef", "responseStatus", "annotations", "verb", "kind", "items"]),
    junk=_JUNK,
    pretty=st.booleans(),
    huge=st.integers(min_value=0, max_value=200_000),
)
def test_hostile_input_never_raises(cut, insert_at, noise, key, junk, pretty, huge) -> None:
    event = _event("exec_pod.json")
    event[key] = junk
    event["requestURI"] = "/" + "a" * huge
    mutated = orjson.dumps(event, option=orjson.OPT_INDENT_2 if pretty else 0)
    data = _SEED[:cut] + noise + _SEED[insert_at:] + b"\n" + mutated + b"\n"
    events, letters = parse_bytes(data, "kubernetes.audit")
    assert events or letters
    assert_well_formed(events, letters, "kubernetes.audit")


def test_mutation_does_not_touch_the_input() -> None:
    event = _event("create_configmap_sensitive_values.json")
    before = copy.deepcopy(event)
    LOG_TYPE.to_ecs(event, ParseOptions())
    assert event == before
