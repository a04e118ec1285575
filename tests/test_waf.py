"""AWS WAF parsing against Elastic's oracle, plus what the oracle does not cover: rule matches in
every mode, headers, rate-based rules, bad records and routing."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from _property_cases import FUZZ, JSON_VALUES, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import assert_fields, expected, get, parse_file, sample

from siem.formats.routing import Router
from siem.formats.waf import LOG_TYPE

ORACLE_FIELDS = [
    "@timestamp",
    "source.ip",
    "http.request.method",
    "http.request.id",
    "http.version",
    "url.path",
    "url.query",
    "event.action",
    "event.kind",
    "event.category",
    "event.type",
    "rule.id",
    "rule.ruleset",
    "network.protocol",
    "network.transport",
    "cloud.account.id",
    "cloud.region",
    "cloud.service.name",
    "aws.waf.arn",
    "aws.waf.id",
    "aws.waf.source.name",
    "aws.waf.source.id",
    "related.ip",
]
# Nested structures Elastic keeps as they are (its key order differs, so compared as objects).
NESTED = ["aws.waf.terminating_rule_match_details", "aws.waf.non_terminating_matching_rules", "aws.waf.rule_group_list"]


def _lines() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in sample("waf/test-waf.log").read_bytes().splitlines() if line.strip()]


def _write(tmp: Path, records: list[Any], name: str = "waf.log") -> Path:
    path = tmp / name
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records) + b"\n")
    return path


def test_waf_matches_elastic_oracle() -> None:
    events, letters = parse_file(sample("waf/test-waf.log"))
    oracle = expected(sample("waf/test-waf.log-expected.json"))
    assert not letters
    assert len(events) == len(oracle) == 4
    for i, (ours, theirs, raw) in enumerate(zip(events, oracle, _lines(), strict=True)):
        label = f"line {i}"
        assert_fields(ours, theirs, ORACLE_FIELDS, label=label)
        for field in NESTED:
            assert get(ours, field) == get(theirs, field), f"{label} {field}"
        # Deliberate: headers as a list of {name, value}, not an object keyed by header name.
        headers = get(ours, "aws.waf.request.headers") or []
        assert ({h["name"]: h.get("value") for h in headers} or None) == get(theirs, "aws.waf.request.headers"), label
        # Deliberate: the country WAF itself decided on, not a GeoIP lookup (Elastic's test DB says SE).
        assert ours["source"]["geo"]["country_iso_code"] == raw["httpRequest"]["country"]
        assert ours["source"]["address"] == ours["source"]["ip"]
        assert ours["event"]["dataset"] == "aws.waf"
        assert ours["aws"]["waf"]["action"] == raw["action"]


def test_waf_important_fields() -> None:
    events, _ = parse_file(sample("waf/test-waf.log"))
    block, count_match, group_block, empty = events
    assert block["@timestamp"] == "2019-12-13T23:40:12.771Z"
    assert block["event"]["outcome"] == "failure"
    assert block["user_agent"] == {"original": "curl/7.61.1"}
    assert block["url"] == {"domain": "localhost", "port": 1989, "path": "/foo", "original": "/foo"}
    assert block["rule"] == {"id": "STMTest_SQLi_XSS", "name": "STMTest_SQLi_XSS", "ruleset": "REGULAR"}
    assert block["aws"]["waf"]["labels"] == ["value"]
    assert block["aws"]["waf"]["web_acl_name"] == "STMTest"
    # A COUNT-mode match is findable by rule ID even though the request was allowed by default.
    assert count_match["event"]["type"] == ["access", "allowed"] and count_match["event"]["outcome"] == "success"
    assert count_match["aws"]["waf"]["matched_rule_ids"] == ["TestRule"]
    # Rules inside a rule group: the group reference, the group's terminating rule and its COUNT rule.
    assert group_block["aws"]["waf"]["matched_rule_ids"] == ["RG-Reference", "RuleA-XSS", "RuleB-SQLi"]
    assert {"name": "xssfoo", "value": "<frameset onload=alert(1)>"} in group_block["aws"]["waf"]["request"]["headers"]
    assert "url" not in empty and "user_agent" not in empty and "request" not in empty["aws"]["waf"]
    assert empty["aws"]["waf"]["source"] == {"name": "ALB", "id": "alb"}


def test_rate_based_captcha_ipv6_and_forwarded_hops(tmp_path: Path) -> None:
    record = _lines()[0]
    record.update(
        {
            "action": "CAPTCHA",
            "terminatingRuleId": "rate-limit-login",
            "terminatingRuleType": "RATE_BASED",
            "rateBasedRuleList": [
                {
                    "rateBasedRuleId": "7c968ef6-3f3c-4e3c-9cd1-example",
                    "rateBasedRuleName": "rate-limit-login",
                    "limitKey": "IP",
                    "maxRateAllowed": 100,
                    "evaluationWindowSec": "300",
                    "limitValue": "2001:db8::7",
                }
            ],
            "ruleGroupList": [
                {
                    "ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet",
                    "terminatingRule": None,
                    "nonTerminatingMatchingRules": [],
                    "excludedRules": [{"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "SizeRestrictions_BODY"}],
                }
            ],
            "labels": [{"name": "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"}, {"bad": 1}, "x"],
            "requestHeadersInserted": None,
            "responseCodeSent": 405,
            "ja3Fingerprint": "e7d705a3286e19ea42f587b344ee6865",
            "requestBodySize": 12,
        }
    )
    record["httpRequest"].update(
        {
            "clientIp": "2001:DB8::7",
            "httpVersion": "HTTP/2.0",
            "args": "user=admin&x=1",
            "headers": [
                {"name": "host", "value": "[2001:db8::1]:8443"},
                {"name": "X-Forwarded-For", "value": "198.51.100.7, not-an-ip, 10.0.0.2"},
                {"name": "Referer", "value": "https://example.com/"},
                {"name": 7, "value": "dropped"},
                {"name": "x-number", "value": 5},
                "not-a-header",
            ],
        }
    )
    events, letters = parse_file(_write(tmp_path, [record]), "aws.waf")
    assert not letters
    doc = events[0]
    assert doc["source"]["ip"] == "2001:db8::7"
    assert doc["event"]["type"] == ["access", "denied"] and doc["event"]["outcome"] == "failure"
    assert doc["aws"]["waf"]["matched_rule_ids"] == ["rate-limit-login", "SizeRestrictions_BODY"]
    assert doc["aws"]["waf"]["rate_based_rule_list"][0]["limitValue"] == "2001:db8::7"
    assert doc["aws"]["waf"]["rule_group_list"] == [
        {
            "ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet",
            "excludedRules": [{"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "SizeRestrictions_BODY"}],
        }
    ]
    assert doc["aws"]["waf"]["labels"] == ["awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"]
    assert doc["http"]["version"] == "2.0" and doc["http"]["response"]["status_code"] == 405
    assert doc["http"]["request"]["referrer"] == "https://example.com/"
    assert doc["http"]["request"]["body"]["bytes"] == 12
    assert doc["url"]["domain"] == "2001:db8::1" and doc["url"]["port"] == 8443
    assert doc["url"]["query"] == "user=admin&x=1" and doc["url"]["original"] == "/foo?user=admin&x=1"
    assert doc["tls"]["client"]["ja3"] == "e7d705a3286e19ea42f587b344ee6865"
    assert doc["related"]["ip"] == ["198.51.100.7", "10.0.0.2", "2001:db8::7"]
    assert {"name": "x-number", "value": "5"} in doc["aws"]["waf"]["request"]["headers"]
    assert len(doc["aws"]["waf"]["request"]["headers"]) == 4


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timestamp": "yesterday"}, "epoch milliseconds"),
        ({"timestamp": None}, "epoch milliseconds"),
        ({"timestamp": 10**18}, "epoch milliseconds"),
        ({"httpRequest": "GET /"}, "httpRequest"),
    ],
)
def test_wrong_types_are_dead_lettered(tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    good = _lines()[1]
    path = _write(tmp_path, [good, {**good, **change}, b"{not json", b"[1, 2]", good])
    events, letters = parse_file(path, "aws.waf")
    assert len(events) == 2
    assert [letter.stage for letter in letters] == ["map", "frame", "frame"]
    assert reason in letters[0].reason
    assert all(letter.reason for letter in letters)


def test_odd_but_valid_values_do_not_break_the_record(tmp_path: Path) -> None:
    record = _lines()[0]
    record.update({"action": 5, "webaclId": "e2a3f7b6-classic-id", "labels": "x", "ruleGroupList": {}})
    record["httpRequest"].update({"clientIp": "unknown", "headers": "Host: x", "httpVersion": None, "country": "-"})
    events, letters = parse_file(_write(tmp_path, [record]), "aws.waf")
    assert not letters
    doc = events[0]
    assert doc["source"] == {"address": "unknown"}
    assert "action" not in doc["event"] and "outcome" not in doc["event"]
    assert doc["aws"]["waf"]["id"] == "e2a3f7b6-classic-id" and "cloud" not in doc
    assert "related" not in doc


def test_sniffing_and_key_layout(tmp_path: Path) -> None:
    head = sample("waf/test-waf.log").read_bytes()[:65536]
    assert Router().choose("/no/known/path", head).dataset == "aws.waf"
    # A record larger than the sniffing buffer is still recognised by its fixed key order.
    assert LOG_TYPE.sniff(head.splitlines()[0][:200])
    assert not LOG_TYPE.sniff(sample("cloudtrail/cloudtrail_log.json").read_bytes())
    assert not LOG_TYPE.sniff(b'{"timestamp": 1, "message": "webaclId httpRequest"}\n')
    for key in (
        "s3://b/AWSLogs/123456789012/WAFLogs/us-east-1/my-acl/2024/01/02/03/05/123456789012_waflogs_x.log.gz",
        "s3://b/AWSLogs/o-a1b2c3d4e5/123456789012/WAFLogs/cloudfront/acl/2024/01/02/03/05/f.log.gz",
    ):
        assert Router().choose(key, b"").dataset == "aws.waf", key
    layout = tmp_path / "AWSLogs/123456789012/WAFLogs/us-east-1/acl/2024/01/02/03/05"
    layout.mkdir(parents=True)
    gz = layout / "123456789012_waflogs_us-east-1_acl_20240102T0305Z_abc.log.gz"
    gz.write_bytes(gzip.compress(sample("waf/test-waf.log").read_bytes()))
    events, letters = parse_file(gz)
    assert len(events) == 4 and not letters
    # The web ACL ARN names the account and region of the WAF; it wins over the key layout.
    assert events[0]["cloud"]["account"]["id"] == "EXAMPLE12345"
    assert events[0]["cloud"]["region"] == "ap-southeast-2"


def test_firehose_test_envelope_is_out_of_scope() -> None:
    """Elastic's Firehose-endpoint test envelope ({"events": [{"message": ...}]}) is not a file
    anything delivers to S3: it is not sniffed as WAF, and forcing it dead-letters every line."""
    path = sample("waf/test-waf-log.json")
    assert not LOG_TYPE.sniff(path.read_bytes()[:65536])
    events, letters = parse_file(path, "aws.waf")
    assert not events
    assert letters and all(letter.reason for letter in letters)


_SAMPLE = sample("waf/test-waf.log").read_bytes()
_FIELDS = [
    "timestamp",
    "action",
    "webaclId",
    "terminatingRuleId",
    "ruleGroupList",
    "nonTerminatingMatchingRules",
    "rateBasedRuleList",
    "labels",
    "httpRequest",
]


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(_SAMPLE)),
    noise=st.binary(max_size=40),
    at=st.integers(min_value=0, max_value=len(_SAMPLE)),
    field=st.sampled_from(_FIELDS),
    value=JSON_VALUES,
    huge=st.integers(min_value=0, max_value=300_000),
)
def test_never_raises_on_damaged_input(cut: int, noise: bytes, at: int, field: str, value: Any, huge: int) -> None:
    damaged = _SAMPLE[:at] + noise + _SAMPLE[at:cut]
    record = orjson.loads(_SAMPLE.splitlines()[0])
    record[field] = value
    record["httpRequest"] = record["httpRequest"] if field != "httpRequest" else value
    big = orjson.loads(_SAMPLE.splitlines()[1])
    big["httpRequest"]["headers"].append({"name": "X-Big", "value": "A" * huge})
    data = damaged + b"\n" + orjson.dumps(record) + b"\n" + orjson.dumps(big) + b"\n"
    events, letters = parse_bytes(data, "aws.waf")
    lines = [line for line in data.split(b"\n") if line.strip()]  # framing splits on \n only
    assert len(events) + len(letters) == len(lines)
    assert_well_formed(events, letters, "aws.waf")
    assert events[-1]["aws"]["waf"]["request"]["headers"][-1]["name"] == "X-Big"
