"""CloudWatch Logs subscription payloads: Powertools' Lambda/Kinesis/Firehose events, OTel's decoded
VPC flow DATA_MESSAGE, and Firehose-style S3 objects built from them (no public sample of an EKS
audit export exists, so those wrap falco's audit Events in a DATA_MESSAGE, as SOURCES.md advises).
None of these has an Elastic oracle: the important fields are asserted explicitly."""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path

import orjson
import pytest
from _property_cases import FUZZ, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import parse_file, sample

from siem import formats
from siem.formats.base import BadRecord, ParseOptions, Skipped
from siem.formats.cloudwatch_logs import LOG_TYPE, iter_json_documents
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, parse_object
from siem.sources.local import local_objects

CW = "cloudwatch_logs"
SAMPLE_NAMES = [
    "cloudWatchLogEvent.json",
    "cloudWatchLogEventWithPolicyLevel.json",
    "kinesisFirehosePutEvent.json",
    "kinesisStreamCloudWatchLogsEvent.json",
    "valid_vpc_flow_cw.json",
]
AUDIT_FILES = ["exec_pod.json", "create_secret.json", "create_nginx_pod_privileged.json"]


def _audit_messages() -> list[str]:
    return [sample(f"k8s_audit/{name}").read_text().splitlines()[0] for name in AUDIT_FILES]


def _data_message(group: str, messages: list[str], start_ms: int = 1700000000000) -> dict:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": group,
        "logStream": "kube-apiserver-audit-0123456789abcdef",
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": f"id{i}", "timestamp": start_ms + i, "message": message} for i, message in enumerate(messages)
        ],
    }


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _parse_all(path: Path, dataset: str | None = None) -> tuple[list[dict], list[DeadLetter], list[Skipped]]:
    forced = formats.get(dataset) if dataset else None
    events, letters, skipped = [], [], []
    for obj in local_objects(path):
        for item in parse_object(obj, Router(), ParseOptions(), forced):
            if isinstance(item, Event):
                events.append(item.doc)
            elif isinstance(item, DeadLetter):
                letters.append(item)
            else:
                skipped.append(item)
    return events, letters, skipped


@pytest.mark.parametrize("name", ["cloudWatchLogEvent.json", "cloudWatchLogEventWithPolicyLevel.json"])
def test_lambda_awslogs_event_gzip_and_zlib(name: str) -> None:
    events, letters = parse_file(sample(f"{CW}/{name}"))
    assert not letters
    assert [e["message"] for e in events] == ["[ERROR] First test message", "[ERROR] Second test message"]
    first, second = events
    assert first["@timestamp"] == "2015-08-24T19:03:07Z"
    assert second["@timestamp"] == "2015-08-24T19:03:07.001000Z"
    assert first["event"] == {
        "kind": "event",
        "id": "eventId1",
        "dataset": "aws.cloudwatch_logs",
        "ingested": first["event"]["ingested"],
    }
    assert first["aws"]["cloudwatch"] == {
        "log_group": "testLogGroup",
        "log_stream": "testLogStream",
        "owner": "123456789123",
        "id": "eventId1",
        "timestamp": "2015-08-24T19:03:07Z",
        "subscription_filters": ["testFilter"],
    }
    assert first["cloud"] == {"provider": "aws", "account": {"id": "123456789123"}}
    assert [e["log"]["offset"] for e in events] == [0, 1]


def test_kinesis_records_count_log_events_across_the_object() -> None:
    events, letters = parse_file(sample(f"{CW}/kinesisStreamCloudWatchLogsEvent.json"))
    assert not letters
    assert [e["log"]["offset"] for e in events] == list(range(6))
    assert events[0]["message"] == "START RequestId: 06e46194-f277-454e-88d3-1dd7e3860eaa Version: $LATEST"
    assert events[2]["message"].startswith("REPORT RequestId: 06e46194") and events[2]["message"].endswith("\t")
    assert events[3]["aws"]["cloudwatch"]["log_stream"] == "2022/11/10/[$LATEST]6749cb3ec3b34895986d592d7421cab2"
    assert all(e["cloud"]["region"] == "eu-west-1" and e["cloud"]["account"]["id"] == "231436140809" for e in events)
    assert events[0]["@timestamp"] == "2022-11-10T15:10:27.015000Z"


def test_firehose_transformation_event_without_cloudwatch_payload_is_dead_lettered() -> None:
    events, letters = parse_file(sample(f"{CW}/kinesisFirehosePutEvent.json"))
    assert not events
    assert [d.reason for d in letters] == [
        "document at byte 0 records[0]: data is not a CloudWatch Logs payload",
        "document at byte 0 records[1]: not a CloudWatch Logs payload (keys: Hello)",
    ]
    assert letters[0].raw == "Hello World"


def test_firehose_transformation_event_with_cloudwatch_payload(tmp_path: Path) -> None:
    payload = gzip.compress(orjson.dumps(_data_message("/aws/eks/prod/cluster", _audit_messages()[:1])))
    event = {
        "invocationId": "x",
        "deliveryStreamArn": "arn:aws:firehose:us-east-2:111122223333:deliverystream/s",
        "region": "us-east-2",
        "records": [{"recordId": "r1", "approximateArrivalTimestamp": 1, "data": base64.b64encode(payload).decode()}],
    }
    events, letters = parse_file(_write(tmp_path, "event.json", orjson.dumps(event, option=orjson.OPT_INDENT_2)))
    assert not letters
    assert events[0]["event"]["dataset"] == "kubernetes.audit"
    assert events[0]["cloud"]["region"] == "us-east-2"


def test_vpc_flow_lines_are_mapped_as_vpc_flow() -> None:
    events, letters = parse_file(sample(f"{CW}/valid_vpc_flow_cw.json"))
    assert not letters and len(events) == 2
    accept, reject = events
    assert accept["event"]["dataset"] == "aws.vpcflow"
    assert accept["source"]["ip"] == "172.31.16.139" and accept["source"]["port"] == 20641
    assert accept["destination"]["ip"] == "172.31.16.21" and accept["destination"]["port"] == 22
    assert accept["@timestamp"] == "2014-12-14T04:07:50Z"  # the flow's own time, not the log event's
    assert accept["aws"]["cloudwatch"]["log_group"] == "/aws/vpc/flowlogs"
    assert accept["aws"]["cloudwatch"]["timestamp"] == "2014-12-14T04:06:50Z"
    assert accept["aws"]["vpcflow"]["interface_id"] == "eni-1235b8ca123456789"
    assert accept["cloud"]["account"]["id"] == "123456789010"
    assert reject["event"]["outcome"] == "failure" and reject["destination"]["port"] == 3389
    assert "message" not in accept


def test_firehose_object_of_eks_audit_payloads(tmp_path: Path) -> None:
    """Firehose concatenates gzipped subscription payloads; S3 decompression yields them back to back."""
    messages = _audit_messages()
    documents = [
        orjson.dumps(_data_message("/aws/eks/prod/cluster", messages[:2])),
        orjson.dumps({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": []}),
        orjson.dumps(_data_message("/aws/eks/prod/cluster", [messages[2], "plain text line\n"], 1700000001000)),
    ]
    key = "firehose/2024/01/02/03/eks-audit-1-2024-01-02-03-04-05-abcd"
    events, letters, skipped = _parse_all(_write(tmp_path, key.replace("/", "_"), gzip.compress(b"".join(documents))))
    assert not letters
    assert len(skipped) == 1 and "CONTROL_MESSAGE" in skipped[0].reason
    assert [e["log"]["offset"] for e in events] == [0, 1, 2, 3]
    exec_doc, secret, pod, plain = events
    assert [e["event"]["dataset"] for e in events] == ["kubernetes.audit"] * 3 + ["aws.cloudwatch_logs"]
    assert exec_doc["kubernetes"]["audit"]["objectRef"]["subresource"] == "exec"
    assert exec_doc["user"]["name"] == "minikube-user"
    assert exec_doc["@timestamp"] == "2018-10-26T13:38:34.867116Z"  # the audit event's own time
    assert exec_doc["event"]["id"] == "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"
    assert exec_doc["aws"]["cloudwatch"]["id"] == "id0"
    assert exec_doc["orchestrator"]["cluster"] == {"name": "prod"}
    assert exec_doc["orchestrator"]["resource"]["type"] == "pods"
    assert exec_doc["cloud"]["account"]["id"] == "111122223333"
    assert exec_doc["data_stream"] == {"dataset": "kubernetes.audit"}
    assert secret["source"]["ip"] == "192.168.64.1"
    assert pod["user"]["name"] == "system:serviceaccount:kube-system:replicaset-controller"
    assert plain["message"] == "plain text line"
    assert plain["@timestamp"] == "2023-11-14T22:13:21.001000Z"
    assert plain["event"]["id"] == "id1"


def test_cloudtrail_delivered_to_cloudwatch_logs_is_mapped_as_cloudtrail(tmp_path: Path) -> None:
    line = sample("cloudtrail/test-console-login-json.log").read_text().splitlines()[0]
    payload = _data_message("aws-cloudtrail-logs-111122223333", [line, '{"eventVersion":"1","note":"no eventName"}'])
    events, letters = parse_file(_write(tmp_path, "ct.json", orjson.dumps(payload)), "aws.cloudwatch_logs")
    assert not letters
    direct = formats.get("aws.cloudtrail").to_ecs(orjson.loads(line), ParseOptions())
    login, other = events
    assert login["event"]["dataset"] == "aws.cloudtrail"
    for field in ("@timestamp", "source", "user"):
        assert login[field] == direct[field], field
    assert login["event"]["action"] == "ConsoleLogin"
    assert login["aws"]["cloudwatch"]["log_group"] == "aws-cloudtrail-logs-111122223333"
    assert other["event"]["dataset"] == "aws.cloudwatch_logs"  # JSON that is not a CloudTrail record


def test_newline_separated_payloads_with_a_broken_one(tmp_path: Path) -> None:
    good = orjson.dumps(_data_message("/app", ["a", "b"]))
    data = good + b"\n" + good[: len(good) // 2] + b"\n" + good + b"\n" + good[:-1]
    events, letters = parse_file(_write(tmp_path, "cw.json", data), "aws.cloudwatch_logs")
    assert [e["message"] for e in events] == ["a", "b", "a", "b"]
    assert [e["log"]["offset"] for e in events] == [0, 1, 2, 3]
    assert [(d.offset, d.stage) for d in letters] == [(2, "frame"), (4, "frame")]
    assert letters[0].reason.startswith(f"document at byte {len(good) + 1}: ")


def test_bad_log_events_are_dead_letters_and_the_rest_survive(tmp_path: Path) -> None:
    doc = _data_message("/app", ["ok"])
    doc["logEvents"] += [
        {"id": "x", "timestamp": "yesterday", "message": "no time"},
        {"id": "y", "timestamp": 1, "message": 42},
        "not an object",
        {"id": "z", "timestamp": 1700000000000, "message": '{"auditID":"a","kind":"Event","verb":"get"}'},
        {"id": "w", "timestamp": 1700000000000, "message": "last"},
    ]
    events, letters = parse_file(_write(tmp_path, "cw.json", orjson.dumps(doc)), "aws.cloudwatch_logs")
    assert [e["message"] for e in events] == ["ok", "last"]
    assert [e["log"]["offset"] for e in events] == [0, 5]
    reasons = {d.offset: d.reason for d in letters}
    assert "no valid epoch-millisecond timestamp" in reasons[1]
    assert "not a string" in reasons[2]
    assert "not a JSON object" in reasons[3]
    assert "no valid requestReceivedTimestamp" in reasons[4]  # an audit Event: kubernetes.audit's own reason


def test_unknown_envelope_and_bad_base64(tmp_path: Path) -> None:
    data = b'{"awslogs":{"data":"!!!"}}{"foo":1}{"messageType":"NEW_KIND"}'
    events, letters = parse_file(_write(tmp_path, "x.json", data), "aws.cloudwatch_logs")
    assert not events
    assert "not base64" in letters[0].reason
    assert "not a CloudWatch Logs payload (keys: foo)" in letters[1].reason
    assert "unknown messageType 'NEW_KIND'" in letters[2].reason


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_document_splitting_does_not_depend_on_chunk_boundaries(chunk: int) -> None:
    docs = [{"messageType": "DATA_MESSAGE", "m": "x}{y"}, {"awslogs": {"data": "} {"}}, {"x": [1]}, {"a": {"b": {}}}]
    data = b"".join(orjson.dumps(d) for d in docs[:2]) + b"\n\n  " + orjson.dumps(docs[2]) + b" \n"
    data += orjson.dumps(docs[3], option=orjson.OPT_INDENT_2) + b"\n" + b'{"messageType": "trunc'
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    out = list(iter_json_documents(chunks, re.compile(rb'\{"messageType"')))
    values = [item[1] for item in out if not isinstance(item, BadRecord)]
    assert values == docs
    (bad,) = [item for item in out if isinstance(item, BadRecord)]
    assert bad.offset == len(data) - len(b'{"messageType": "trunc')


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sniffing_picks_cloudwatch_logs(name: str) -> None:
    head = sample(f"{CW}/{name}").read_bytes()[:65536]
    assert Router().choose("/no/known/path", head).dataset == "aws.cloudwatch_logs"


def test_sniffing_does_not_claim_plain_json() -> None:
    assert not LOG_TYPE.sniff(b'{"Records":[{"eventVersion":"1.08","eventSource":"s3.amazonaws.com"}]}')
    assert not LOG_TYPE.sniff(sample("k8s_audit/exec_pod.json").read_bytes())
    assert not LOG_TYPE.sniff(b'{"message":"hello","logGroup":"x"}\n')


_SEED = sample(f"{CW}/valid_vpc_flow_cw.json").read_bytes() + orjson.dumps(
    _data_message("/aws/eks/c/cluster", _audit_messages()[:2])
)
_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20), st.just([]))


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(_SEED)),
    insert_at=st.integers(min_value=0, max_value=len(_SEED)),
    noise=st.binary(max_size=40),
    key=st.sampled_from(["messageType", "logEvents", "owner", "logGroup", "subscriptionFilters"]),
    event_key=st.sampled_from(["timestamp", "message", "id"]),
    junk=_JUNK,
    huge=st.integers(min_value=0, max_value=300_000),
    wrap=st.booleans(),
)
def test_hostile_input_never_raises(cut, insert_at, noise, key, event_key, junk, huge, wrap) -> None:
    mutated = _data_message("/x", ["m" * huge, "ok"])
    mutated["logEvents"][1][event_key] = junk
    if key != "logEvents" or not isinstance(junk, list):  # an empty list would leave nothing to check
        mutated[key] = junk
    body = orjson.dumps(mutated)
    if wrap:
        body = orjson.dumps({"awslogs": {"data": base64.b64encode(gzip.compress(body)[: max(cut, 10)]).decode()}})
    data = _SEED[:cut] + noise + _SEED[insert_at:] + body
    events, letters = parse_bytes(data, "aws.cloudwatch_logs")
    assert events or letters
    assert_well_formed(events, letters)  # the dataset is the inner log type's
