"""VPC flow log parsing against Elastic's oracle, plus header-defined custom formats and bad input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from _property_cases import FUZZ, assert_well_formed, damaged, dead_letter_between
from hypothesis import given
from oracle import AWS_NETWORK_SAMPLES, compared_with_oracle, get, parse_bytes, parse_file, routed, sample, sniffed

from siem.formats.base import ParseOptions, Skipped
from siem.formats.routing import Router
from siem.formats.vpcflow import LOG_TYPE

ORACLE_FIELDS = [
    "@timestamp",
    "event.start",
    "event.end",
    "event.kind",
    "event.category",
    "event.outcome",
    "source.ip",
    "source.address",
    "source.port",
    "source.bytes",
    "source.packets",
    "destination.ip",
    "destination.address",
    "destination.port",
    "network.iana_number",
    "network.transport",
    "network.type",
    "network.bytes",
    "network.packets",
    "network.direction",
    "network.community_id",
    "cloud.account.id",
    "cloud.instance.id",
    "cloud.region",
    "cloud.availability_zone",
    "aws.vpcflow.version",
    "aws.vpcflow.account_id",
    "aws.vpcflow.interface_id",
    "aws.vpcflow.action",
    "aws.vpcflow.log_status",
    "aws.vpcflow.vpc_id",
    "aws.vpcflow.subnet_id",
    "aws.vpcflow.instance_id",
    "aws.vpcflow.type",
    "aws.vpcflow.pkt_srcaddr",
    "aws.vpcflow.pkt_dstaddr",
    "aws.vpcflow.pkt_src_service",
    "aws.vpcflow.pkt_dst_service",
    "aws.vpcflow.tcp_flags",
    "aws.vpcflow.tcp_flags_array",
    "aws.vpcflow.traffic_path",
]
ORACLES = ["vpcflow/test-extra-samples.log", "vpcflow/test-tcp-flag-sequence.log", "vpcflow/test-v5-all-fields.log"]
VERDICTS = {"allowed", "denied"}  # our addition to event.type (documented)


@pytest.mark.parametrize("name", ORACLES)
def test_matches_elastic_oracle(name: str) -> None:
    for ours, theirs in compared_with_oracle(name, "aws.vpcflow", ORACLE_FIELDS, auto_type=True):
        assert set(ours["event"]["type"]) - VERDICTS == set(theirs["event"]["type"])
        # related.ip: Elastic's source+destination, plus the packet-level addresses we add (documented)
        packet_ips = {get(ours, "aws.vpcflow.pkt_srcaddr"), get(ours, "aws.vpcflow.pkt_dstaddr")} - {None}
        assert set(ours.get("related", {}).get("ip", [])) == set(get(theirs, "related.ip") or []) | packet_ips


def test_accept_reject_verdicts() -> None:
    events, _ = parse_file(sample("vpcflow/test-extra-samples.log"))
    accepted, rejected = events[3], events[4]
    assert accepted["event"]["action"] == "accept"
    assert accepted["event"]["type"] == ["connection", "allowed"]
    assert rejected["event"]["action"] == "reject"
    assert rejected["event"]["outcome"] == "failure"
    assert rejected["event"]["type"] == ["connection", "denied"]
    assert rejected["destination"]["port"] == 3389


def test_nodata_records_are_kept_as_gap_markers() -> None:
    events, _ = parse_file(sample("vpcflow/test-extra-samples.log"))
    for gap, status in ((events[1], "NODATA"), (events[2], "SKIPDATA")):
        assert gap["aws"]["vpcflow"]["log_status"] == status
        assert "source" not in gap and "destination" not in gap and "network" not in gap
        assert "outcome" not in gap["event"] and "related" not in gap
        assert gap["@timestamp"] == "2015-05-10T18:02:14Z"


def test_s3_object_with_header_line() -> None:
    path = sample("vpcflow/valid_vpc_flow_log.log")
    items = list(LOG_TYPE.records(io.BytesIO(path.read_bytes()), ParseOptions()))
    assert isinstance(items[0], Skipped) and items[0].offset == 0
    events, letters = parse_file(path)
    assert not letters and len(events) == 1
    nodata = events[0]
    assert nodata["@timestamp"] == "2025-03-21T15:15:42Z"
    assert nodata["event"]["start"] == "2025-03-21T15:14:49Z"
    assert nodata["aws"]["vpcflow"] == {
        "version": 2,
        "account_id": "12345678910",
        "interface_id": "eni-0eb1e4178af74336c",
        "log_status": "NODATA",
    }
    assert nodata["cloud"]["account"]["id"] == "12345678910"


CUSTOM_HEADER = (
    "region az-id vpc-id subnet-id instance-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol "
    "packets bytes start end action tcp-flags flow-direction traffic-path reject-reason some-future-field\n"
)
CUSTOM_LINE = (
    "eu-west-1 euw1-az2 vpc-0a1b - i-0c2d 10.0.1.5 10.0.2.9 203.0.113.7 10.0.2.9 51000 443 6 "
    "12 3400 1700000000 1700000060 REJECT 18 egress 8 - something\n"
)


def test_header_defines_a_custom_layout() -> None:
    events, letters = parse_bytes((CUSTOM_HEADER + CUSTOM_LINE).encode(), "aws.vpcflow")
    assert not letters and len(events) == 1
    doc = events[0]
    assert doc["@timestamp"] == "2023-11-14T22:14:20Z"
    assert doc["source"] == {"address": "10.0.1.5", "ip": "10.0.1.5", "port": 51000, "packets": 12, "bytes": 3400}
    assert doc["destination"] == {"address": "10.0.2.9", "ip": "10.0.2.9", "port": 443}
    assert doc["network"]["direction"] == "egress" and doc["network"]["transport"] == "tcp"
    assert doc["cloud"] == {
        "region": "eu-west-1",
        "availability_zone": "euw1-az2",
        "instance": {"id": "i-0c2d"},
        "provider": "aws",
    }
    assert doc["event"]["outcome"] == "failure"
    vpc = doc["aws"]["vpcflow"]
    assert vpc["tcp_flags"] == 18 and vpc["tcp_flags_array"] == ["syn", "ack"]
    assert vpc["traffic_path"] == 8 and vpc["vpc_id"] == "vpc-0a1b"
    assert vpc["some_future_field"] == "something"
    assert "reject_reason" not in vpc  # "-" is never stored
    # the NAT'd packet source is pivotable too
    assert doc["related"]["ip"] == ["203.0.113.7", "10.0.2.9", "10.0.1.5"]


def test_header_state_is_per_object(tmp_path: Path) -> None:
    """A header in one object must not decide the layout of the next object."""
    (tmp_path / "a.log").write_text(CUSTOM_HEADER + CUSTOM_LINE)
    (tmp_path / "b.log").write_text(CUSTOM_LINE)
    events, letters = parse_file(tmp_path, "aws.vpcflow")
    assert len(events) == 1 and events[0]["log"]["file"]["path"].endswith("a.log")
    assert len(letters) == 1 and letters[0].path.endswith("b.log")
    assert "no header line" in letters[0].reason


def test_s3_key_layout_and_gzip(tmp_path: Path) -> None:
    key = tmp_path / "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2024/01/01/123456789012_vpcflowlogs_x.log.gz"
    key.parent.mkdir(parents=True)
    key.write_bytes(gzip.compress(sample("vpcflow/test-extra-samples.log").read_bytes()))
    events, letters = parse_file(key)
    assert not letters and len(events) == 7
    assert events[0]["cloud"]["region"] == "eu-west-1"  # from the key
    assert events[0]["cloud"]["account"]["id"] == "123456789010"  # the record's own account wins


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2 123456789010 eni-1 10.0.0.1 10.0.0.2 eighty 22 6 1 1 1418530010 1418530070 ACCEPT OK", "srcport"),
        ("2 123456789010 eni-1 10.0.0.1 10.0.0.2 80 22 6 1 1 99999999999999 1418530070 ACCEPT OK", "out of range"),
        ("2 123456789010 eni-1 - - - - - - - - - - NODATA", "no start or end"),
        ("2 123456789010 eni-1 10.0.0.1", "no header line"),
    ],
)
def test_bad_line_is_dead_lettered_and_the_rest_survives(bad: str, reason: str) -> None:
    good = sample("vpcflow/test-extra-samples.log").read_text().splitlines()[0]
    letter = dead_letter_between(good, bad, "aws.vpcflow")
    assert letter.stage == "map" and reason in letter.reason
    assert letter.raw == bad


def test_field_count_must_match_the_header() -> None:
    events, letters = parse_bytes((CUSTOM_HEADER + "eu-west-1 euw1-az2\n" + CUSTOM_LINE).encode(), "aws.vpcflow")
    assert len(events) == 1 and len(letters) == 1
    assert "header line names 22" in letters[0].reason


@pytest.mark.parametrize("name", [*ORACLES, "vpcflow/valid_vpc_flow_log.log"])
def test_content_sniffing_picks_vpcflow(name: str) -> None:
    assert sniffed(sample(name).read_bytes()) == "aws.vpcflow"


@pytest.mark.parametrize("other", [name for name in AWS_NETWORK_SAMPLES if not name.startswith("vpcflow/")])
def test_sniff_does_not_claim_other_formats(other: str) -> None:
    assert not LOG_TYPE.sniff(sample(other).read_bytes()[:4096])


@pytest.mark.parametrize(
    "key",
    [
        "s3://bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01/123456789012_vpcflowlogs_us-east-1_fl-0a_20240501T0000Z_ab.log.gz",
        "s3://bucket/prefix/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
        "year=2024/month=05/day=01/hour=00/x.log.gz",
    ],
)
def test_key_layout_routes_to_vpcflow(key: str) -> None:
    assert routed(key) == "aws.vpcflow"


def test_parquet_delivery_is_not_routed_as_text() -> None:
    key = "s3://bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01/x.log.parquet"
    assert Router().by_path(key) is not LOG_TYPE


_SAMPLE = sample("vpcflow/valid_vpc_flow_log.log").read_bytes() + sample("vpcflow/test-v5-all-fields.log").read_bytes()


@FUZZ
@given(data=damaged(_SAMPLE, [b"", b"9" * 5000, b" -" * 3000, "é".encode() * 2000]))
def test_never_raises_on_mangled_input(data: bytes) -> None:
    events, letters = parse_bytes(data, "aws.vpcflow")
    assert_well_formed(events, letters, "aws.vpcflow")
