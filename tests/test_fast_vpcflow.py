"""The VPC flow fast path (siem/fast/vpcflow.py) against the reference (siem/formats/vpcflow.py):
same documents (byte-identical after key ordering), IDs, skipped header lines and dead letters on
every sample file, the property tests' damaged sample, generated records whose every field varies,
header and header-less objects, custom layouts (always the reference) and edge lines.
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


def test_custom_layout_header_sends_every_record_to_the_reference() -> None:
    header = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    record = "2 eni-1 203.0.113.12 10.0.1.5 49152 443 6 10 8400 1748736000 1748736060 ACCEPT OK"
    assert assert_same(f"{header}\n{record}\n{record}\n".encode()) == (0, 2)


def test_a_second_header_switches_the_layout_mid_object() -> None:
    custom = "version srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    data = "\n".join([RECORD, custom, "2 1.2.3.4 5.6.7.8 1 2 6 1 1 1748736000 1748736060 ACCEPT OK", HEADER, RECORD])
    assert assert_same(data.encode() + b"\n") == (2, 1)


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
