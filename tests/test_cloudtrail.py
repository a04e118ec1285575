"""CloudTrail against Elastic's oracle, every delivery shape, damaged objects and routing."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from _property_cases import FUZZ, JSON_VALUES, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import SAMPLES, assert_fields, expected, get, instant, parse_file, sample

from siem.formats.base import ParseOptions, Skipped
from siem.formats.cloudtrail import LOG_TYPE, iter_records
from siem.formats.routing import Router
from siem.pipeline import parse_object
from siem.sources.local import local_objects

ORACLE_FILES = sorted(p.name for p in (SAMPLES / "cloudtrail").glob("test-*-json.log") if "digest" not in p.name)
ORACLE_FIELDS = [
    "@timestamp",
    "source.ip",
    "source.address",
    "user.id",
    "user.target.name",
    "user.target.id",
    "user.changes.name",
    "group.name",
    "group.id",
    "event.kind",
    "event.action",
    "event.outcome",
    "event.provider",
    "event.id",
    "cloud.region",
    "user_agent.original",
    "aws.cloudtrail.event_version",
    "aws.cloudtrail.event_type",
    "aws.cloudtrail.event_category",
    "aws.cloudtrail.recipient_account_id",
    "aws.cloudtrail.request_id",
    "aws.cloudtrail.read_only",
    "aws.cloudtrail.api_version",
    "aws.cloudtrail.management_event",
    "aws.cloudtrail.error_code",
    "aws.cloudtrail.error_message",
    "aws.cloudtrail.user_identity.type",
    "aws.cloudtrail.user_identity.arn",
    "aws.cloudtrail.user_identity.access_key_id",
    "aws.cloudtrail.user_identity.invoked_by",
    "aws.cloudtrail.user_identity.session_context.mfa_authenticated",
    "aws.cloudtrail.user_identity.session_context.session_issuer.type",
    "aws.cloudtrail.user_identity.session_context.session_issuer.arn",
    "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id",
    "aws.cloudtrail.user_identity.session_context.session_issuer.account_id",
    "aws.cloudtrail.console_login.additional_eventdata.login_to",
    "aws.cloudtrail.console_login.additional_eventdata.mfa_used",
    "aws.cloudtrail.console_login.additional_eventdata.mobile_version",
]
PAYLOADS = ["request_parameters", "response_elements", "additional_eventdata", "service_event_details"]


def _prune(value: Any) -> Any:
    """Elastic's pipeline drops null, "" and empty containers everywhere; we drop only nulls."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})} or None
    if isinstance(value, list):
        items = [v for v in (_prune(v) for v in value) if v not in (None, "", [], {})]
        return items or None
    return value


def _records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sample(f"cloudtrail/{name}").read_text().splitlines() if line.strip()]


def _items(data: bytes) -> list[Any]:
    return list(iter_records(io.BytesIO(data)))


@pytest.mark.parametrize("name", ORACLE_FILES)
def test_matches_elastic_oracle(name: str) -> None:
    events, letters = parse_file(sample(f"cloudtrail/{name}"))
    oracle = expected(sample(f"cloudtrail/{name}-expected.json"))
    assert not letters
    assert len(events) == len(oracle)
    for i, (ours, theirs, raw) in enumerate(zip(events, oracle, _records(name), strict=True)):
        label = f"{name} record {i}"
        assert ours["event"]["dataset"] == "aws.cloudtrail"
        assert_fields(ours, theirs, ORACLE_FIELDS, label=label)
        if get(theirs, "aws.cloudtrail.user_identity.type") == "AssumedRole":
            # Deliberate: the session is the user, the role is user.roles (Elastic: the role as user.name).
            session = raw["userIdentity"]["arn"].rsplit("/", 1)[-1]
            assert ours["user"]["name"] == session, label
            assert ours["user"]["roles"] == [get(theirs, "user.name")], label
            assert session in ours["related"]["user"], label
        else:
            assert_fields(ours, theirs, ["user.name", "related.user"], label=label)
        if get(theirs, "cloud.account.id") is not None:
            assert_fields(ours, theirs, ["cloud.account.id"], label=label)
        else:  # Deliberate: Insight events carry only recipientAccountId, which we use.
            assert ours["cloud"]["account"]["id"] == raw["recipientAccountId"], label
        if get(theirs, "event.category") is not None:
            assert_fields(ours, theirs, ["event.category", "event.type"], label=label)
        else:  # Deliberate: calls Elastic leaves uncategorised are ECS "api" events.
            assert ours["event"]["category"] == ["api"], label
        created = get(theirs, "aws.cloudtrail.user_identity.session_context.creation_date")
        if created:
            ours_created = get(ours, "aws.cloudtrail.user_identity.session_context.creation_date")
            assert instant(ours_created) == instant(created), label
        for payload in PAYLOADS:
            # Deliberate: the API payloads are objects (flat_object), not toString() strings + a copy.
            mine = get(ours, f"aws.cloudtrail.{payload}")
            assert _prune(mine) == _prune(get(theirs, f"aws.cloudtrail.flattened.{payload}")), f"{label} {payload}"
            assert mine is None or isinstance(mine, dict)


def test_digest_is_skipped_with_a_reason() -> None:
    """Deliberate: a digest file is integrity metadata, not activity; Elastic indexes it as an event."""
    objs = list(local_objects(sample("cloudtrail/test-cloudtrail-digest-json.log")))
    items = list(parse_object(objs[0], Router(), ParseOptions()))
    assert len(items) == 1 and isinstance(items[0], Skipped)
    assert "digest" in items[0].reason


def test_insight_event() -> None:
    events, _ = parse_file(sample("cloudtrail/test-insight-json.log"))
    insight = events[0]["aws"]["cloudtrail"]["insight_details"]
    assert insight["event_name"] == "AttachUserPolicy" and insight["state"] == "End"
    assert insight["insight_type"] == "ApiCallRateInsight" and insight["event_source"] == "iam.amazonaws.com"
    assert "action" not in events[0]["event"]  # the insight is about AttachUserPolicy calls, it is not one
    assert events[0]["aws"]["cloudtrail"]["event_category"] == "Insight"


def test_records_file_from_s3() -> None:
    events, letters = parse_file(sample("cloudtrail/cloudtrail_log.json"))
    assert not letters and len(events) == 7
    start, create, publish, insight, failed, sso_login, service = events
    assert start["user"] == {"name": "Mateo", "id": "EXAMPLE6E4XEGITWATV6R"}
    assert start["source"] == {"ip": "192.0.2.0", "address": "192.0.2.0"}
    assert start["tls"] == {
        "version": "1.2",
        "version_protocol": "tls",
        "cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "client": {"server_name": "ec2.us-east-1.amazonaws.com"},
    }
    assert start["aws"]["cloudtrail"]["request_parameters"]["instancesSet"]["items"][0]["instanceId"]
    assert start["log"]["offset"] == 0 and failed["log"]["offset"] == 4
    assert create["user"]["target"] == {"name": "Richard", "id": "AIDA6ON6E4XEP7EXAMPLE"}
    assert create["event"]["category"] == ["iam"] and create["event"]["type"] == ["user", "creation"]
    assert create["related"]["user"] == ["Mary", "Richard"]
    assert publish["aws"]["cloudtrail"]["event_category"] == "Data"
    assert publish["aws"]["cloudtrail"]["resources"] == [
        {
            "arn": "arn:aws:sns:us-east-1:123456789012:ExampleSNSTopic",
            "account_id": "123456789012",
            "type": "AWS::SNS::Topic",
        }
    ]
    assert publish["user"]["roles"] == ["ExampleUser"]
    assert insight["aws"]["cloudtrail"]["insight_details"]["insight_context"]["statistics"]["insight"] == {
        "average": 669
    }
    assert failed["event"]["outcome"] == "failure"
    assert failed["error"]["code"] == "TrailNotFoundException"
    assert failed["cloud"]["account"]["id"] == "111122223333"
    assert sso_login["event"]["category"] == ["authentication"] and sso_login["event"]["outcome"] == "success"
    assert sso_login["user"] == {"name": "identity-center-user", "id": "d-12345abcde"}
    assert sso_login["aws"]["cloudtrail"]["console_login"]["additional_eventdata"]["mfa_used"] is True
    assert service["source"] == {"address": "AWS Internal"}  # not an IP: no source.ip
    assert "user" not in service and "ip" not in service.get("related", {})
    assert service["aws"]["cloudtrail"]["service_event_details"]["rotationType"] == "AUTOMATIC"


def _compact_records_file(count: int = 3) -> tuple[bytes, list[dict[str, Any]]]:
    records = json.loads(sample("cloudtrail/cloudtrail_log.json").read_text())["Records"][:count]
    return b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}", records


def test_every_shape_gives_the_same_events(tmp_path: Path) -> None:
    compact, records = _compact_records_file(7)
    shapes = {
        "compact.json": compact,
        "pretty.json": sample("cloudtrail/cloudtrail_log.json").read_bytes(),
        "array.json": orjson.dumps(records, option=orjson.OPT_INDENT_2),
        "lines.json": b"\n".join(orjson.dumps(r) for r in records) + b"\n",
        "keys-reordered.json": orjson.dumps({"Other": 1, "Records": records}),
        "eventbridge.json": b"\n".join(
            orjson.dumps({"version": "0", "detail-type": "AWS API Call via CloudTrail", "detail": r}) for r in records
        ),
    }
    reference = None
    for name, data in shapes.items():
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if name == "compact.json" else data)
        events, letters = parse_file(path, "aws.cloudtrail")
        assert not letters, name
        ids = [e["event"].get("id") for e in events]
        assert len(ids) == 7, name
        reference = reference or ids
        assert ids == reference, name


def test_truncated_records_file_keeps_every_complete_record() -> None:
    compact, records = _compact_records_file(7)
    starts = [i for i in range(len(compact)) if compact.startswith(b'{"eventVersion"', i)]
    cut = (starts[4] + starts[5]) // 2
    events, letters = parse_bytes(compact[:cut], "aws.cloudtrail")
    assert [e["event"]["id"] for e in events] == [r["eventID"] for r in records[:4]]
    assert len(letters) == 1 and letters[0].stage == "frame" and letters[0].offset == 4
    assert "truncated" in letters[0].reason and letters[0].raw.startswith('{"eventVersion"')
    # Cut between records: everything is kept and the unclosed array is reported.
    events, letters = parse_bytes(compact[: starts[3]], "aws.cloudtrail")
    assert len(events) == 3 and len(letters) == 1 and "array is closed" in letters[0].reason


def test_corrupt_record_in_the_middle_does_not_lose_the_rest() -> None:
    compact, records = _compact_records_file(7)
    at = compact.index(b'"eventSource"', compact.index(records[2]["eventID"].encode()))
    events, letters = parse_bytes(compact[:at] + b"@@" + compact[at:], "aws.cloudtrail")
    assert len(events) == 6 and len(letters) == 1
    assert letters[0].offset == 3 and letters[0].reason.startswith("invalid JSON")
    assert records[3]["eventID"] in letters[0].raw and records[4]["eventID"] not in letters[0].raw
    assert [e["event"].get("id") for e in events] == [r.get("eventID") for i, r in enumerate(records) if i != 3]


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        (b'{"Records":[{"eventVersion":"1","x":NaN},{"eventVersion":"2"}]}', ["bad", "ok"]),
        (b'[{"eventVersion":"1","x":"\\ud800"}, {"eventVersion":"2"}]', ["bad", "ok"]),
        (b'{"eventVersion":"1","x":1e999}\n{"eventVersion":"2"}\n', ["bad", "ok"]),
        (b'{"Records": 5}', ["bad"]),
        (b'{"Records": []}\n', []),
        (b'{"Records": [{"eventVersion":"1"}] } trailing', ["ok", "bad"]),
        (b'{"Records": [{"eventVersion":"1"} {"eventVersion":"2"}]}', ["ok", "bad", "ok"]),
        (b'[1, "x", null, {"eventVersion":"1"}]', ["bad", "bad", "bad", "ok"]),
        (b"   \n  ", []),
    ],
)
def test_framing_edge_cases(data: bytes, shape: list[str]) -> None:
    """Values orjson would refuse (the sink could not serialise them) are dead-lettered alone."""
    items = _items(data)
    assert ["ok" if isinstance(i, tuple) else "bad" for i in items] == shape
    assert [i[0] if isinstance(i, tuple) else i.offset for i in items] == list(range(len(items)))
    assert all(i.reason for i in items if not isinstance(i, tuple))


def test_ndjson_bad_lines_and_wrong_types(tmp_path: Path) -> None:
    good = _records("test-create-group-json.log")
    lines = [
        orjson.dumps(good[0]),
        b"this is not json",
        orjson.dumps({**good[1], "eventTime": 1578535323}),
        orjson.dumps({**good[1], "userIdentity": "Alice", "requestParameters": "groupName=x", "resources": {"a": 1}}),
        b'"a string"',
        orjson.dumps({**good[0], "eventTime": "2020-01-09T10:48:44+09:00", "readOnly": "true"}),
    ]
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    events, letters = parse_file(path, "aws.cloudtrail")
    assert len(events) == 3
    assert [(d.offset, d.stage) for d in letters] == [(1, "frame"), (2, "map"), (4, "frame")]
    assert "eventTime" in letters[1].reason and all(d.reason for d in letters)
    odd = events[1]
    assert "user" not in odd or "name" not in odd["user"]
    assert odd["aws"]["cloudtrail"]["request_parameters"] == {"value": "groupName=x"}
    assert events[2]["@timestamp"] == "2020-01-09T01:48:44Z"
    assert events[2]["aws"]["cloudtrail"]["read_only"] is True


def _base_record(**changes: Any) -> dict[str, Any]:
    record = _records("test-create-user-json.log")[0]
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("identity", "name", "user_id", "roles"),
    [
        (
            {"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root"},
            "root",
            "123456789012",
            None,
        ),
        ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "ec2.amazonaws.com", None, None),
        (
            {"type": "FederatedUser", "principalId": "123456789012:bob", "arn": "arn:aws:sts::1:federated-user/bob"},
            "bob",
            "123456789012:bob",
            None,
        ),
        ({"type": "IAMUser", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS", "principalId": "x"}, None, "x", None),
        (
            {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:alice@example.com",
                "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_abc/alice@example.com",
                "sessionContext": {
                    "sourceIdentity": "alice",
                    "sessionIssuer": {"type": "Role", "userName": "AWSReservedSSO_Admin_abc"},
                },
            },
            "alice@example.com",
            "AROAEXAMPLE:alice@example.com",
            ["AWSReservedSSO_Admin_abc"],
        ),
        (
            {"type": "AWSAccount", "principalId": "AIDAEXAMPLE:session-x", "accountId": "210987654321"},
            "session-x",
            "AIDAEXAMPLE:session-x",
            None,
        ),
    ],
)
def test_identity_types(
    tmp_path: Path, identity: dict, name: str | None, user_id: str | None, roles: list | None
) -> None:
    path = tmp_path / "identity.log"
    path.write_bytes(orjson.dumps(_base_record(userIdentity=identity)))
    events, letters = parse_file(path, "aws.cloudtrail")
    assert not letters
    user = events[0]["user"]
    assert user.get("name") == name and user.get("id") == user_id and user.get("roles") == roles
    related = events[0]["related"]["user"]
    assert (name in related) if name else related == ["Bob"]
    if identity.get("sessionContext", {}).get("sourceIdentity"):
        assert "alice" in related


def test_s3_data_event_is_searchable_by_bucket_and_object(tmp_path: Path) -> None:
    record = _base_record(
        eventSource="s3.amazonaws.com",
        eventName="DeleteObject",
        eventCategory="Data",
        requestParameters={"bucketName": "evidence", "key": "reports/2024/q1.pdf", "Host": "evidence.s3.amazonaws.com"},
        responseElements=None,
        resources=[
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::evidence/reports/2024/q1.pdf"},
            {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::evidence"},
            {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::evidence"},
        ],
    )
    path = tmp_path / "s3.log"
    path.write_bytes(orjson.dumps(record))
    doc = parse_file(path, "aws.cloudtrail")[0][0]
    assert doc["file"] == {
        "path": "s3://evidence/reports/2024/q1.pdf",
        "directory": "s3://evidence/reports/2024",
        "name": "q1.pdf",
    }
    assert doc["event"]["category"] == ["file"] and doc["event"]["type"] == ["deletion"]
    assert [r["arn"] for r in doc["aws"]["cloudtrail"]["resources"]] == [
        "arn:aws:s3:::evidence/reports/2024/q1.pdf",
        "arn:aws:s3:::evidence",
    ]
    assert doc["aws"]["cloudtrail"]["request_parameters"]["key"] == "reports/2024/q1.pdf"


def test_records_are_read_incrementally() -> None:
    """A big single-line Records file is framed a chunk at a time, never read whole."""
    record = orjson.dumps(json.loads(sample("cloudtrail/cloudtrail_log.json").read_text())["Records"][0])
    count = 8 * 1024 * 1024 // len(record)
    data = b'{"Records":[' + b",".join([record] * count) + b"]}"

    class Counting(io.BytesIO):
        high = 0

        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            Counting.high = self.tell()
            return chunk

    stream = Counting(data)
    records = iter_records(stream)
    first = next(records)
    assert isinstance(first, tuple) and Counting.high <= 2 * 1024 * 1024
    assert sum(1 for _ in records) + 1 == count


def test_sniffing_and_key_layouts() -> None:
    router = Router()
    for path in (SAMPLES / "cloudtrail").iterdir():
        if path.suffix in (".log", ".json") and not path.name.endswith("-expected.json"):
            assert router.choose("/no/known/path", path.read_bytes()[:65536]).dataset == "aws.cloudtrail", path.name
    for key in (
        "s3://t/AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0000Z_a.json.gz",
        "s3://t/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/02/123456789012_CloudTrail-Digest_x.json.gz",
        "s3://t/AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/01/02/123456789012_CloudTrail-Insight_x.json.gz",
        "s3://t/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2024/01/02/f.json.gz",
    ):
        assert router.choose(key, b"").dataset == "aws.cloudtrail", key
    s3_notification = b'{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",'
    s3_notification += b'"eventTime":"2024-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{}}]}'
    assert not LOG_TYPE.sniff(s3_notification)
    escaped = orjson.dumps(
        {"messageType": "DATA_MESSAGE", "logEvents": [{"message": orjson.dumps(_base_record()).decode()}]}
    )
    assert not LOG_TYPE.sniff(escaped)
    assert not LOG_TYPE.sniff(sample("waf/test-waf.log").read_bytes())


def test_org_trail_path_context(tmp_path: Path) -> None:
    layout = tmp_path / "AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2024/01/02"
    layout.mkdir(parents=True)
    path = layout / "123456789012_CloudTrail_eu-west-1_20240102T0000Z_a.json.gz"
    record = _base_record(recipientAccountId="210987654321")
    bare = {k: v for k, v in record.items() if k not in ("recipientAccountId", "awsRegion", "userIdentity")}
    path.write_bytes(gzip.compress(orjson.dumps({"Records": [record, bare]})))
    events, letters = parse_file(path)
    assert not letters and len(events) == 2
    # The record names the account and region of the call; the key only fills what it lacks.
    assert events[0]["cloud"]["account"]["id"] == "210987654321" and events[0]["cloud"]["region"] == "us-east-2"
    assert events[1]["cloud"]["account"]["id"] == "123456789012" and events[1]["cloud"]["region"] == "eu-west-1"


_PRETTY = sample("cloudtrail/cloudtrail_log.json").read_bytes()


def _record_ends(text: str) -> list[int]:
    """Where each record of a Records file ends (just after its closing brace)."""
    decoder, ends = json.JSONDecoder(), []
    pos = text.index("[") + 1
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return ends
        pos = decoder.raw_decode(text, pos)[1]
        ends.append(pos)


_RECORD_ENDS = _record_ends(_PRETTY.decode("ascii"))
_ARRAY_END = _PRETTY.rindex(b"]")
_FIELDS = [
    "eventTime",
    "userIdentity",
    "eventName",
    "sourceIPAddress",
    "requestParameters",
    "responseElements",
    "resources",
    "tlsDetails",
    "readOnly",
    "insightDetails",
    "errorCode",
    "additionalEventData",
]


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(_PRETTY)))
def test_truncation_keeps_exactly_the_complete_records(cut: int) -> None:
    events, letters = parse_bytes(_PRETTY[:cut], "aws.cloudtrail")
    complete = sum(1 for end in _RECORD_ENDS if end <= cut)
    assert len(events) == complete
    assert_well_formed(events, letters, "aws.cloudtrail")
    if _PRETTY[:cut].strip() and cut <= _ARRAY_END:
        assert letters, "a cut inside the Records array must be reported"


@FUZZ
@given(
    noise=st.binary(max_size=40),
    at=st.integers(min_value=0, max_value=len(_PRETTY)),
    field=st.sampled_from(_FIELDS),
    value=JSON_VALUES,
    huge=st.integers(min_value=0, max_value=300_000),
    shape=st.sampled_from(["records", "lines", "array"]),
)
def test_never_raises_on_damaged_input(noise: bytes, at: int, field: str, value: Any, huge: int, shape: str) -> None:
    damaged = _PRETTY[:at] + noise + _PRETTY[at:]
    records = json.loads(_PRETTY)["Records"]
    records[1][field] = value
    records[2]["requestParameters"] = {"policyDocument": "x" * huge}
    if shape == "records":
        data = orjson.dumps({"Records": records})
    elif shape == "lines":
        data = b"\n".join(orjson.dumps(r) for r in records)
    else:
        data = orjson.dumps(records)
    assert_well_formed(*parse_bytes(damaged, "aws.cloudtrail"), "aws.cloudtrail")
    events, letters = parse_bytes(data, "aws.cloudtrail")
    assert_well_formed(events, letters, "aws.cloudtrail")
    assert len(events) + len(letters) == len(records)
    assert events[-1]["event"]["id"] == records[-1]["eventID"]
    for doc in events:
        datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("payload", "kept"),
    [
        ({"a": 1, "b": None, "c": {"d": None, "e": [None, 2, {"f": None}]}}, {"a": 1, "c": {"e": [2, {}]}}),
        ({"bucketName": "null", "key": "nullable/null.txt"}, {"bucketName": "null", "key": "nullable/null.txt"}),
        ({"name": "null", "gone": None}, {"name": "null"}),  # "null" text beside a real null
        ({"big": 2**70, "gone": None, "list": [None]}, {"big": 2**70, "list": []}),  # past 64 bits: walked
        ([None, {"x": None}], [{}]),
    ],
)
def test_request_parameters_lose_their_nulls_and_nothing_else(payload: Any, kept: Any) -> None:
    record = {"eventTime": "2024-05-01T00:00:00Z", "eventName": "PutObject", "requestParameters": payload}
    doc = LOG_TYPE.to_ecs(record, ParseOptions())
    expected_params = kept if isinstance(kept, dict) else {"value": kept}
    assert doc["aws"]["cloudtrail"]["request_parameters"] == expected_params
