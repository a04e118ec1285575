"""AWS Network Firewall logs against Elastic's oracle, plus TLS logs, ICMP, IPv6 and bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _property_cases import FUZZ, LAX_JSON_VALUES, Parsed, dead_letter_between, parse_retyped_and_torn
from hypothesis import given
from hypothesis import strategies as st
from oracle import AWS_NETWORK_SAMPLES, compared_with_oracle, get, parse_bytes, parse_file, routed, sample, sniffed

from siem.formats._network import community_id
from siem.formats.network_firewall import LOG_TYPE

ORACLE_FIELDS = [
    "@timestamp",
    "event.kind",
    "event.category",
    "event.type",
    "event.severity",
    "cloud.availability_zone",
    "cloud.region",
    "observer.name",
    "observer.type",
    "observer.vendor",
    "observer.product",
    "source.ip",
    "source.address",
    "source.port",
    "destination.ip",
    "destination.address",
    "destination.port",
    "destination.domain",
    "network.transport",
    "network.type",
    "network.community_id",
    "rule.id",
    "rule.name",
    "rule.category",
    "http.request.method",
    "http.version",
    "url.original",
    "url.path",
    "user_agent.original",
    "related.ip",
    "aws.firewall.flow.id",
    "aws.firewall.flow.pkts",
    "aws.firewall.flow.bytes",
    "aws.firewall.flow.start",
    "aws.firewall.flow.end",
    "aws.firewall.flow.age",
    "aws.firewall.flow.min_ttl",
    "aws.firewall.flow.max_ttl",
    "aws.firewall.tcp_flags",
    "aws.firewall.tcp_flags_array",
]
LOG = "network_firewall/test-firewall.log"
ALERT = orjson.loads(sample(LOG).read_bytes().splitlines()[0])


def _parse(*records: dict[str, Any]) -> Parsed:
    return parse_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records), "aws.network_firewall")


def test_matches_elastic_oracle() -> None:
    for ours, theirs in compared_with_oracle(LOG, "aws.network_firewall", ORACLE_FIELDS, count=2, auto_type=True):
        # Elastic writes network.protocol "unknown" when Suricata named no app protocol; we leave it out
        if get(theirs, "network.protocol") == "unknown":
            assert get(ours, "network.protocol") is None
        else:
            assert get(ours, "network.protocol") == get(theirs, "network.protocol")


def test_alert_maps_rule_verdict_and_http() -> None:
    events, _ = parse_file(sample(LOG))
    alert, flow = events
    assert alert["event"]["kind"] == "alert" and alert["event"]["action"] == "blocked"
    assert alert["rule"] == {"id": "1000003", "name": "Deny all other TCP traffic", "version": "1"}
    assert alert["@timestamp"] == "2021-11-08T14:22:12.637611Z"  # sub-second precision kept
    assert alert["url"]["domain"] == "216.160.83.57"
    assert "related" not in alert or "hosts" not in alert["related"]  # an IP is not a host name
    # the netflow record counts one direction: it is the source's packets/bytes
    assert flow["source"]["packets"] == 1 and flow["source"]["bytes"] == 40
    assert flow["network"]["bytes"] == 40
    assert flow["event"]["start"] == "2021-11-08T18:18:11.990632Z"


def test_alert_with_flow_counters_tls_and_ipv6() -> None:
    event = {
        "timestamp": "2024-05-01T10:00:00.000001+0000",
        "flow_id": 1,
        "event_type": "alert",
        "src_ip": "2001:db8::10",
        "src_port": 50000,
        "dest_ip": "2001:db8::20",
        "dest_port": 443,
        "proto": "TCP",
        "app_proto": "tls",
        "alert": {
            "action": "allowed",
            "signature_id": 7,
            "rev": 2,
            "signature": "TLS to bad domain",
            "category": "Malware",
            "severity": 1,
        },
        "flow": {
            "pkts_toserver": 5,
            "pkts_toclient": 4,
            "bytes_toserver": 700,
            "bytes_toclient": 3000,
            "start": "2024-05-01T09:59:59.5+0000",
        },
        "tls": {"sni": "bad.example", "version": "TLS 1.3", "ja3": {"hash": "abc"}, "ja3s": {"hash": "def"}},
        "tls_inspected": True,
    }
    raw = {"firewall_name": "fw", "availability_zone": "eu-central-1b", "event_timestamp": "1714557600", "event": event}
    events, letters = _parse(raw)
    assert not letters
    doc = events[0]
    assert doc["event"]["type"] == ["connection", "allowed"]
    assert doc["rule"]["category"] == "Malware"
    assert doc["source"] == {"address": "2001:db8::10", "ip": "2001:db8::10", "port": 50000, "packets": 5, "bytes": 700}
    assert doc["destination"]["bytes"] == 3000 and doc["destination"]["domain"] == "bad.example"
    assert doc["network"]["bytes"] == 3700 and doc["network"]["packets"] == 9
    assert doc["network"]["type"] == "ipv6" and doc["network"]["protocol"] == "tls"
    assert doc["tls"] == {
        "client": {"server_name": "bad.example", "ja3": "abc"},
        "version_protocol": "tls",
        "version": "1.3",
        "server": {"ja3s": "def"},
    }
    assert doc["cloud"]["region"] == "eu-central-1"
    assert doc["related"]["hosts"] == ["bad.example"]
    assert doc["aws"]["firewall"]["tls_inspected"] is True
    assert doc["event"]["start"] == "2024-05-01T09:59:59.5Z"


def test_icmp_community_id_uses_type_and_code() -> None:
    event = {
        "timestamp": "2024-05-01T10:00:00Z",
        "event_type": "netflow",
        "src_ip": "10.0.0.1",
        "dest_ip": "10.0.0.2",
        "proto": "ICMP",
        "icmp_type": 8,
        "icmp_code": 0,
        "netflow": {"pkts": 1, "bytes": 84},
    }
    events, _ = _parse({"firewall_name": "fw", "event": event})
    doc = events[0]
    assert doc["network"]["transport"] == "icmp" and doc["network"]["iana_number"] == "1"
    assert doc["network"]["community_id"] == community_id("10.0.0.1", "10.0.0.2", 1, 8, 0)
    # the echo reply of the same exchange gets the same ID
    assert community_id("10.0.0.2", "10.0.0.1", 1, 0, 0) == doc["network"]["community_id"]


def test_tls_inspection_logs() -> None:
    error = {
        "firewall_name": "tls-fw",
        "availability_zone": "us-east-1d",
        "event_timestamp": 1719943304,
        "event": {
            "timestamp": "2024-07-02T18:01:44.412778Z",
            "src_ip": "10.0.2.53",
            "src_port": "59844",
            "dest_ip": "10.0.1.27",
            "dest_port": "443",
            "sni": "-",
            "tls_error": {"error_message": "Server name is not found in client hello."},
        },
    }
    revoked = {
        "firewall_name": "tls-fw",
        "availability_zone": "us-east-1d",
        "event_timestamp": 1719943400,
        "event": {
            "src_ip": "10.0.2.53",
            "src_port": "59846",
            "dest_ip": "198.51.100.9",
            "dest_port": "443",
            "sni": "revoked.example",
            "revocation_check": {"leaf_cert_fpr": "ab12", "status": "REVOKED", "action": "DROP"},
        },
    }
    events, letters = _parse(error, revoked)
    assert not letters
    err, rev = events
    assert err["source"] == {"address": "10.0.2.53", "ip": "10.0.2.53", "port": 59844}
    assert err["destination"]["port"] == 443 and "domain" not in err["destination"]
    assert err["event"]["outcome"] == "failure" and err["event"]["kind"] == "event"
    assert err["error"]["message"] == "Server name is not found in client hello."
    assert rev["@timestamp"] == "2024-07-02T18:03:20Z"  # no event.timestamp: event_timestamp (epoch) is used
    assert rev["event"]["action"] == "drop" and rev["event"]["type"] == ["connection", "denied"]
    assert rev["tls"]["client"]["server_name"] == "revoked.example"
    assert rev["aws"]["firewall"]["revocation_check"]["status"] == "REVOKED"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"firewall_name": "fw", "event": "text"}', "no 'event' object"),
        (b'{"firewall_name": "fw", "event": {"src_ip": "10.0.0.1"}}', "event_timestamp"),
        (b'{"firewall_name": "fw", "event": {"timestamp": "soon"}}', "bad event.timestamp"),
        (b'{"firewall_name": "fw", "event_timestamp": "99999999999999", "event": {}}', "out of range"),
        (b'{"firewall_name": "fw", "event": {"timest', "invalid JSON"),
    ],
)
def test_bad_record_is_dead_lettered_and_the_rest_survives(bad: bytes, reason: str) -> None:
    good = sample(LOG).read_bytes().splitlines()[0]
    assert reason in dead_letter_between(good, bad, "aws.network_firewall").reason


def test_content_sniffing_and_key_layout() -> None:
    assert sniffed(sample(LOG).read_bytes()) == "aws.network_firewall"
    for kind in ("flow", "alert", "tls"):
        key = f"s3://b/AWSLogs/123456789012/network-firewall/{kind}/us-east-1/fw/2024/05/01/10/x.log.gz"
        assert routed(key) == "aws.network_firewall"


@pytest.mark.parametrize("other", [name for name in AWS_NETWORK_SAMPLES if name != LOG])
def test_sniff_does_not_claim_other_formats(other: str) -> None:
    assert not LOG_TYPE.sniff(sample(other).read_bytes()[:4096])


_LINES = sample(LOG).read_bytes().splitlines()
_EVENT_FIELDS = sorted({*ALERT["event"], *orjson.loads(_LINES[1])["event"], "tls", "flow", "sni", "revocation_check"})


@FUZZ
@given(
    line=st.sampled_from(_LINES),
    cut=st.integers(min_value=0, max_value=1200),
    noise=st.binary(max_size=32),
    replace=st.dictionaries(st.sampled_from(_EVENT_FIELDS), LAX_JSON_VALUES, max_size=4),
    top=st.dictionaries(
        st.sampled_from(["firewall_name", "availability_zone", "event_timestamp", "aws_category"]),
        LAX_JSON_VALUES,
        max_size=2,
    ),
    huge=st.sampled_from(["", "a" * 100_000, "é" * 5000]),
)
def test_never_raises_on_mangled_input(
    line: bytes, cut: int, noise: bytes, replace: dict[str, Any], top: dict[str, Any], huge: str
) -> None:
    record = orjson.loads(line) | top
    record["event"] = record["event"] | replace
    if huge:
        record["event"]["alert"] = {"signature": huge, "signature_id": 1}
    events, _ = parse_retyped_and_torn(record, line, cut, noise, "aws.network_firewall")
    assert events and events[-1]["observer"]["name"] == "AWSNetworkFirewall"
