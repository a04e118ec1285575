"""The VPC flow fast path (siem/fast/vpcflow.py) against the reference (siem/formats/vpcflow.py):
same documents (byte-identical after key ordering), IDs, skipped header lines and dead letters on
every sample file, the property tests' damaged sample, generated records whose every field varies,
header and header-less objects, custom layouts (v3-v5 and every documented field, mapped fast too),
the header-less 21- and 29-field layouts, and edge lines.
"""

from __future__ import annotations

from pathlib import Path

import _fast_cases as cases
import pytest
from _property_cases import damaged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import SAMPLES

from siem import formats

REPO = Path(__file__).resolve().parents[1]
VPC = formats.get("aws.vpcflow")
DIFF = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
RECORD = (
    "2 123456789012 eni-0a1b2c3d4e5f67890 203.0.113.12 10.0.1.5 49152 443 6 10 8400 1748736000 1748736060 ACCEPT OK"
)


def assert_same(data: bytes, name: str = "flows.log") -> tuple[int, int]:
    return cases.assert_same_bytes(data, VPC, name=name)


SAMPLE_FILES = sorted(
    p
    for folder in (REPO / "tests/data/samples/logs/vpcflow", SAMPLES / "vpcflow")
    for p in folder.iterdir()
    if not p.name.endswith(("-expected.json", ".yml"))
)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_vpcflow_sample_maps_identically(path: Path) -> None:
    assert_same(path.read_bytes())


def test_default_layout_with_and_without_header_takes_the_fast_path() -> None:
    records = [RECORD.replace("49152", str(1024 + i)) for i in range(500)]
    assert assert_same(("\n".join(records) + "\n").encode()) == (500, 0)
    assert assert_same(("\n".join([HEADER, *records]) + "\n").encode()) == (500, 0)


def test_a_custom_layout_named_by_its_header_takes_the_fast_path() -> None:
    header = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    record = "2 eni-1 203.0.113.12 10.0.1.5 49152 443 6 10 8400 1748736000 1748736060 ACCEPT OK"
    assert assert_same(f"{header}\n{record}\n{record}\n".encode()) == (2, 0)


def test_a_layout_whose_records_start_with_a_lower_case_field_is_not_taken_for_headers() -> None:
    header = "interface-id srcaddr dstaddr srcport dstport protocol start end action"
    record = "eni-0a1b2c 203.0.113.12 10.0.1.5 49152 443 6 1748736000 1748736060 ACCEPT"
    assert assert_same(f"{header}\n{record}\n{record}\n".encode()) == (2, 0)


def test_a_second_header_switches_the_layout_mid_object() -> None:
    custom = "version srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    data = "\n".join([RECORD, custom, "2 1.2.3.4 5.6.7.8 1 2 6 1 1 1748736000 1748736060 ACCEPT OK", HEADER, RECORD])
    assert assert_same(data.encode() + b"\n") == (3, 0)


_VALUES: dict[int, list[str]] = {
    0: ["2", "5", "-", "02", "x"],
    1: ["123456789012", "unknown", "-"],
    2: ["eni-0a1b2c3d4e5f67890", "-"],
    3: ["203.0.113.12", "-", "10.0.1.5", "2001:db8::1", "010.0.0.1", "host"],
    4: ["10.0.1.5", "-", "203.0.113.12", "fe80::1"],
    5: ["49152", "-", "0", "65536", "007"],
    6: ["443", "-", "0"],
    7: ["6", "17", "1", "58", "-", "300", "99999999999999999999"],
    8: ["10", "-", "0", "123456789012345678901"],
    9: ["8400", "-"],
    10: ["1748736000", "-", "253402300800", "0"],
    11: ["1748736060", "-", "x"],
    12: ["ACCEPT", "REJECT", "-", "OTHER"],
    13: ["OK", "NODATA", "SKIPDATA", "-"],
}


def _record(choices: dict[int, str]) -> str:
    fields = RECORD.split(" ")
    for index, value in choices.items():
        fields[index] = value
    return " ".join(fields)


@DIFF
@given(
    lines=st.lists(
        st.fixed_dictionaries({}, optional={i: st.sampled_from(v) for i, v in _VALUES.items()}).map(_record),
        min_size=1,
        max_size=6,
    ),
    header=st.booleans(),
)
def test_records_with_every_field_varied_map_identically(lines: list[str], header: bool) -> None:
    assert_same(("\n".join([HEADER, *lines] if header else lines) + "\n").encode())


_SAMPLE = (REPO / "tests/data/samples/logs/vpcflow/test-extra-samples.log").read_bytes() + RECORD.encode() + b"\n"


@DIFF
@given(data=damaged(_SAMPLE, [b"", b"9" * 5000, b" -" * 3000, "é".encode() * 200, b"\r\t"]))
def test_damaged_samples_map_identically(data: bytes) -> None:
    assert_same(data)


def test_edge_lines_map_identically() -> None:
    edges = [RECORD, RECORD + "\r", RECORD.replace(" ", "  ", 1), "\t" + RECORD, RECORD + " extra", "", "   ", "x"]
    data = "\n".join(edges).encode() + b"\n" + RECORD.encode().replace(b"OK", b"\xff\xfe") + b"\n" + RECORD.encode()
    assert assert_same(data) == (2, 6)  # the plain record and the last one (no final newline)


def test_aws_key_context_maps_identically() -> None:
    key = "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2025/06/01/flows.log"
    unknown = RECORD.replace("123456789012", "unknown")  # the key's account, not the record's
    assert assert_same(f"{HEADER}\n{RECORD}\n{unknown}\n".encode(), name=key) == (2, 0)


# Every field AWS documents (flow log versions 2-10), with the values each takes in real logs and odd ones
V10_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
    "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path ecs-cluster-arn "
    "ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id ecs-second-container-id "
    "ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id reject-reason resource-id encryption-status"
)
_V10_VALUES: dict[str, list[str]] = {
    "version": ["10", "5", "-", "07"],
    "account-id": ["123456789012", "unknown", "-"],
    "srcaddr": ["203.0.113.12", "10.0.1.5", "-", "2001:db8::1", "1.2.3.04"],
    "dstaddr": ["10.0.1.5", "203.0.113.12", "-", "fe80::1"],
    "srcport": ["49152", "0", "-", "65536"],
    "dstport": ["443", "-", "0"],
    "protocol": ["6", "17", "1", "58", "50", "-", "256"],
    "packets": ["10", "0", "-", "123456789012345678"],
    "bytes": ["8400", "-", "1234567890123456789"],
    "start": ["1748736000", "-", "253402300799", "253402300800"],
    "end": ["1748736060", "-", "0"],
    "action": ["ACCEPT", "REJECT", "-", "OTHER"],
    "log-status": ["OK", "NODATA", "SKIPDATA", "-"],
    "instance-id": ["i-0123456789abcdef0", "-"],
    "tcp-flags": ["2", "18", "19", "0", "-", "3"],
    "type": ["IPv4", "IPv6", "EFA", "-"],
    "pkt-srcaddr": ["203.0.113.12", "10.9.9.9", "-", "2001:db8::2", "01.1.1.1"],
    "pkt-dstaddr": ["10.0.1.5", "203.0.113.12", "-", "host"],
    "region": ["eu-west-1", "-"],
    "az-id": ["euw1-az1", "-"],
    "sublocation-type": ["wavelength", "outpost", "-"],
    "sublocation-id": ["op-1", "-"],
    "pkt-src-aws-service": ["S3", "AMAZON", "-"],
    "pkt-dst-aws-service": ["DYNAMODB", "-"],
    "flow-direction": ["ingress", "egress", "-", "sideways"],
    "traffic-path": ["1", "8", "-", "x"],
    "reject-reason": ["BPA", "-"],
    "encryption-status": ["0", "1", "2", "-"],
}
_V10_KEYS = V10_HEADER.split(" ")
_V10_PLAIN = {
    "interface-id": "eni-0a1b2c3d4e5f67890",
    "vpc-id": "vpc-0abc",
    "subnet-id": "subnet-0abc",
    "ecs-cluster-arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
    "ecs-cluster-name": "prod",
    "ecs-container-instance-arn": "-",
    "ecs-container-instance-id": "-",
    "ecs-container-id": "3f2a",
    "ecs-second-container-id": "-",
    "ecs-service-name": "web",
    "ecs-task-definition-arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7",
    "ecs-task-arn": "arn:aws:ecs:eu-west-1:123456789012:task/prod/abc",
    "ecs-task-id": "abc",
    "resource-id": "tgw-attach-1",
}


def _v10_record(choices: dict[str, str]) -> str:
    return " ".join(choices.get(k, _V10_VALUES[k][0] if k in _V10_VALUES else _V10_PLAIN[k]) for k in _V10_KEYS)


@DIFF
@given(
    records=st.lists(
        st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _V10_VALUES.items()}).map(_v10_record),
        min_size=1,
        max_size=6,
    ),
    fields=st.lists(st.sampled_from(range(len(_V10_KEYS))), min_size=2, max_size=12, unique=True),
)
def test_custom_layouts_of_every_documented_field_map_identically(records: list[str], fields: list[int]) -> None:
    """The whole v10 field list, and a random subset in a random order (what a custom format may be)."""
    assert_same(("\n".join([V10_HEADER, *records]) + "\n").encode())
    header = " ".join(_V10_KEYS[i] for i in fields)
    subset = [" ".join(r.split(" ")[i] for i in fields) for r in records]
    assert_same(("\n".join([header, *subset]) + "\n").encode())


def test_plain_v10_records_take_the_fast_path() -> None:
    records = [_v10_record({"srcport": str(1024 + i)}) for i in range(200)]
    assert assert_same(("\n".join([V10_HEADER, *records]) + "\n").encode()) == (200, 0)


def test_the_header_less_21_and_29_field_layouts_take_the_fast_path() -> None:
    v3 = (
        "3 vpc-1 subnet-1 i-1 eni-1 123456789012 IPv4 203.0.113.12 10.0.1.5 49152 443 203.0.113.12 10.0.1.5 "
        "6 8400 10 1748736000 1748736060 ACCEPT 18 OK"
    )
    v5 = RECORD + " vpc-1 subnet-1 i-1 19 IPv4 203.0.113.12 10.0.1.5 eu-west-1 euw1-az1 - - S3 - ingress 1"
    assert assert_same(f"{v3}\n{v3}\n{v5}\n".encode()) == (3, 0)
