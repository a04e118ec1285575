"""Route 53 Resolver query logs against Elastic's oracle, plus DNS Firewall, pivots and bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _property_cases import FUZZ, LAX_JSON_VALUES, dead_letter_between, parse_retyped_and_torn
from hypothesis import given
from hypothesis import strategies as st
from oracle import AWS_NETWORK_SAMPLES, compared_with_oracle, get, parse_bytes, parse_file, routed, sample, sniffed

from siem.formats.route53_resolver import LOG_TYPE
from siem.normalize import valid_ip

ORACLE_FIELDS = [
    "@timestamp",
    "event.kind",
    "event.category",
    "event.outcome",
    "source.ip",
    "source.address",
    "source.port",
    "dns.question.name",
    "dns.question.type",
    "dns.question.class",
    "dns.response_code",
    "network.transport",
    "network.iana_number",
    "network.protocol",
    "network.type",
    "cloud.account.id",
    "cloud.region",
    "cloud.instance.id",
    "aws.vpc_id",
    "aws.instance_id",
    "aws.route53.firewall.action",
    "aws.route53.firewall.rule_group.id",
    "aws.route53.firewall.domain_list.id",
    "related.hosts",
]
LOG = "route53_resolver/test-route53.log"


def _answers(doc: dict[str, Any]) -> list[dict[str, str]]:
    """dns.answers without Elastic's CNAME `name` copy (documented difference)."""
    return [{k: v for k, v in a.items() if k != "name"} for a in get(doc, "dns.answers") or []]


def test_matches_elastic_oracle() -> None:
    pairs = compared_with_oracle(LOG, "aws.route53_resolver", ORACLE_FIELDS, count=34, auto_type=True)
    for i, (ours, theirs) in enumerate(pairs):
        assert _answers(ours) == _answers(theirs), f"line {i}"
        assert set(ours["event"]["type"]) - {"allowed", "denied"} == set(theirs["event"]["type"])
        # Elastic may write an IPv6 PTR target non-canonically ("0add"); we store the canonical form
        theirs_ips = {valid_ip(ip) for ip in get(theirs, "related.ip") or []}
        assert set(ours["related"]["ip"]) == theirs_ips, f"line {i}"


def test_answers_feed_resolved_ip_and_pivots() -> None:
    events, _ = parse_file(sample(LOG))
    ntp = next(e for e in events if e["dns"]["question"]["name"] == "2.amazon.pool.ntp.org" and "answers" in e["dns"])
    assert ntp["dns"]["question"]["type"] == "AAAA"
    assert ntp["dns"]["resolved_ip"] == [
        "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6",
        "2a02:cf40:f1::1",
        "2a02:cf40:3803:1::6",
        "2a02:cf40:1560:8003::c7",
    ]
    assert ntp["related"]["ip"][-1] == "172.31.86.159"  # the querying host is always there too
    cname = next(e for e in events if e["dns"]["question"]["name"] == "abcd.example.com")
    assert cname["related"]["hosts"] == ["abcd.example.com", "test.example.com"]
    assert cname["cloud"]["instance"]["id"] == "i-079c44232510ca8ff"
    ptr = events[1]
    assert ptr["dns"]["question"]["name"] == "159.86.31.172.in-addr.arpa"
    assert ptr["related"]["ip"] == ["172.31.86.159"]  # the PTR target and the querying host are the same here


def test_dns_firewall_block() -> None:
    events, _ = parse_file(sample(LOG))
    blocked = events[32]
    assert blocked["event"]["action"] == "block"
    assert blocked["event"]["type"] == ["protocol", "denied"]
    assert blocked["aws"]["route53"]["firewall"]["rule_group"]["id"] == "rslvr-frg-01234567890abcdef"
    assert blocked["source"]["ip"] == "81.2.69.143"
    assert "175.16.199.15" in blocked["related"]["ip"]


def test_inbound_endpoint_ipv6_and_tcp() -> None:
    record = {
        "version": "1.100000",
        "account_id": "111122223333",
        "region": "eu-west-1",
        "vpc_id": "vpc-0abc",
        "query_timestamp": "2024-03-01T10:00:00.123Z",
        "query_name": "evil.example.",
        "query_type": "TXT",
        "query_class": "IN",
        "rcode": "SERVFAIL",
        "answers": [],
        "srcaddr": "2001:db8::0001",
        "srcport": 53000,
        "transport": "TCP",
        "srcids": {"resolver_endpoint": "rslvr-in-0123", "resolver_network_interface": "rni-0456"},
        "firewall_rule_action": "ALERT",
        "firewall_protection": "DNS_TUNNELING",
    }
    events, letters = parse_bytes(orjson.dumps(record) + b"\n", "aws.route53_resolver")
    assert not letters
    doc = events[0]
    assert doc["@timestamp"] == "2024-03-01T10:00:00.123Z"
    assert doc["source"] == {"address": "2001:db8::0001", "ip": "2001:db8::1", "port": 53000}
    assert doc["network"] == {"protocol": "dns", "transport": "tcp", "iana_number": "6", "type": "ipv6"}
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["type"] == ["protocol", "allowed"]
    assert doc["aws"]["route53"]["srcids"] == {
        "resolver_endpoint": "rslvr-in-0123",
        "resolver_network_interface": "rni-0456",
    }
    assert doc["aws"]["route53"]["firewall"] == {"action": "ALERT", "protection": "DNS_TUNNELING"}
    assert "instance" not in doc["cloud"]
    assert doc["related"] == {"hosts": ["evil.example"], "ip": ["2001:db8::1"]}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"query_name": "a.example.", "srcaddr": "10.0.0.1"}', "query_timestamp"),
        (b'{"query_timestamp": "yesterday", "query_name": "a."}', "bad query_timestamp"),
        (b'{"query_timestamp": "2021-12-11T22:46:23Z", "query_name": 42}', "query_name"),
        (b'{"query_timestamp": "2021-12-11T22:46:23Z", "query_name": "a.', "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_record_is_dead_lettered_and_the_rest_survives(bad: bytes, reason: str) -> None:
    good = sample(LOG).read_bytes().splitlines()[0]
    assert reason in dead_letter_between(good, bad, "aws.route53_resolver").reason


def test_odd_types_in_optional_fields_do_not_cost_the_event() -> None:
    record = orjson.loads(sample(LOG).read_bytes().splitlines()[1])
    record |= {"answers": [None, "x", {"Rdata": 5, "Type": "A"}], "srcids": ["i-1"], "srcport": "eighty", "rcode": 0}
    events, letters = parse_bytes(orjson.dumps(record) + b"\n", "aws.route53_resolver")
    assert not letters
    doc = events[0]
    assert doc["dns"]["answers"] == [{"type": "A"}]
    assert "port" not in doc["source"] and "response_code" not in doc["dns"] and "outcome" not in doc["event"]


def test_content_sniffing_and_key_layout() -> None:
    assert sniffed(sample(LOG).read_bytes()) == "aws.route53_resolver"
    key = "s3://bucket/AWSLogs/123456789012/vpcdnsquerylogs/vpc-0abc/2024/05/01/vpc-0abc_20240501T0005Z_1a2b.log.gz"
    assert routed(key) == "aws.route53_resolver"


@pytest.mark.parametrize("other", [name for name in AWS_NETWORK_SAMPLES if name != LOG])
def test_sniff_does_not_claim_other_formats(other: str) -> None:
    assert not LOG_TYPE.sniff(sample(other).read_bytes()[:4096])


_LINES = sample(LOG).read_bytes().splitlines()
_FIELDS = sorted(orjson.loads(_LINES[32]))


@FUZZ
@given(
    line=st.sampled_from(_LINES),
    cut=st.integers(min_value=0, max_value=600),
    noise=st.binary(max_size=32),
    replace=st.dictionaries(st.sampled_from(_FIELDS), LAX_JSON_VALUES, max_size=4),
    huge=st.sampled_from(["", "a" * 100_000, "é" * 5000]),
)
def test_never_raises_on_mangled_input(line: bytes, cut: int, noise: bytes, replace: dict[str, Any], huge: str) -> None:
    record = orjson.loads(line) | replace
    if huge:
        record["query_name"] = huge
    events, letters = parse_retyped_and_torn(record, line, cut, noise, "aws.route53_resolver")
    assert len(events) + len(letters) >= 2  # the intact last line always makes it
    assert events[-1]["dns"]["question"]["name"]
