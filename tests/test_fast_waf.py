"""The WAF fast path (siem/fast/waf.py, framed by siem/fast/json_lines.py) against the reference
(siem/formats/waf.py + normalize.finalize): same documents (byte-identical after key ordering), IDs
and dead letters on every WAF sample file, the property tests' damaged sample, records whose every
field varies over plain and odd values (one at a time and combined; those within the exactness rule
must all take the fast path), edge lines (framing) and an AWS key layout.

Every comparison runs the real pipeline twice over the same file (SIEM_FAST_PATH=off, then on).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import _fast_cases as cases
import pytest
from _property_cases import damaged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import SAMPLES

from siem import formats
from siem.fast import chunks as fast_chunks
from siem.formats.base import ParseOptions

REPO = Path(__file__).resolve().parents[1]
WAF = formats.get("aws.waf")
DIFF = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MISSING = object()  # a key the record does not have

REQUEST: dict[str, Any] = {
    "clientIp": "89.160.20.156",
    "country": "AU",
    "headers": [
        {"name": "Host", "value": "www.example.com:8443"},
        {"name": "User-Agent", "value": "curl/7.61.1"},
        {"name": "Referer", "value": "https://www.example.com/"},
        {"name": "X-Forwarded-For", "value": "203.0.113.7, 10.0.0.1"},
        {"name": "Accept", "value": "*/*"},
    ],
    "uri": "/api/v1/items",
    "args": "id=1&sort=desc",
    "httpVersion": "HTTP/1.1",
    "httpMethod": "GET",
    "requestId": "1-683b9800-0000000000000000000120f4",
    "scheme": "https",
    "host": "www.example.com",
    "fragment": "",
}
GROUP = {"ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet", "terminatingRule": None, "nonTerminatingMatchingRules": []}
RECORD: dict[str, Any] = {
    "timestamp": 1748736000123,
    "formatVersion": 1,
    "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/prod-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
    "terminatingRuleId": "Default_Action",
    "terminatingRuleType": "REGULAR",
    "action": "ALLOW",
    "terminatingRuleMatchDetails": [],
    "httpSourceName": "ALB",
    "httpSourceId": "123456789012-app/prod-alb/0123456789abcdef",
    "ruleGroupList": [{**GROUP, "excludedRules": None}],
    "rateBasedRuleList": [],
    "nonTerminatingMatchingRules": [],
    "requestHeadersInserted": None,
    "responseCodeSent": None,
    "httpRequest": REQUEST,
    "labels": [{"name": "awswaf:clientip:geo:country:AU"}],
    "ja3Fingerprint": "e7d705a3286e19ea42f587b344ee6865",
    "ja4Fingerprint": "t13d1516h2_8daaf6152771_e5627efa2ab1",
    "requestBodySize": 0,
    "requestBodySizeInspectedByWAF": 0,
}


def assert_same(data: bytes, name: str = "waf.log", options: ParseOptions | None = None) -> tuple[int, int]:
    return cases.assert_same_bytes(data, WAF, options, name)


def _line(record: dict[str, Any], ascii_only: bool = True) -> bytes:
    """One record as a JSON line, by Python's json: integers past 64 bits and lone surrogates included."""
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


SAMPLE_FILES = sorted(
    p
    for folder in (REPO / "tests/data/samples/logs/waf", SAMPLES / "waf")
    for p in folder.iterdir()
    if not p.name.endswith(("-expected.json", ".yml"))
)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_waf_sample_maps_identically(path: Path) -> None:
    assert_same(path.read_bytes())


def test_the_sample_records_take_the_fast_path() -> None:
    assert assert_same((REPO / "tests/data/samples/logs/waf/test-waf.log").read_bytes()) == (4, 0)


def test_plain_records_of_every_action_take_the_fast_path() -> None:
    actions = ["ALLOW", "BLOCK", "COUNT", "CAPTCHA", "CHALLENGE", "EXCLUDED_AS_COUNT"]
    lines = []
    for i in range(300):
        request = {**REQUEST, "clientIp": f"198.51.{i % 256}.{i % 200 + 1}", "headers": REQUEST["headers"][: i % 6]}
        record = {**RECORD, "timestamp": RECORD["timestamp"] + i * 37, "action": actions[i % 6], "httpRequest": request}
        lines.append(_line(record))
    assert assert_same(b"\n".join(lines) + b"\n") == (300, 0)


# --- every field varied ------------------------------------------------------------------------


def _varied(base: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``choices`` over it, the MISSING keys left out."""
    record = {**base, **choices}
    return {key: value for key, value in record.items() if value is not MISSING}


# Each field's values as (those the fast path maps itself, those it hands to the reference or that
# make the line a dead letter): the second are its exactness rule's limits.
_BIG = [2**53, 2**63, 2**64 - 1, 2**64 + 5, -(2**63) - 1]  # the last two orjson reads as floats
_TEXT = ["", "-", None, 5, True, ["x"], "caf\u00e9", MISSING]  # odd values of a string field
_BAD_TEXT = ["\ud800"]  # a lone surrogate: orjson refuses the line
_HEADER_NAMES = ["Host", "host", "HOST", "User-Agent", "user-agent", "Referer", "X-Forwarded-For", "x-forwarded-for"]
_HEADER_NAMES += ["Accept", "", "-", None, 7, MISSING]
_HEADER_VALUES = [
    "www.example.com",
    "www.example.com:0443",
    "[2001:db8::1]:8443",
    "[]",
    ":80",
    " h.example:1 ",
    "h.example:99999",
    "h.example:\u0661\u0662",  # Arabic-Indic digits: \d matches them, int() reads them
    "203.0.113.7, 10.0.0.1, unknown",
    "2001:db8::1,203.0.113.7,2001:DB8::1",
    "curl/7.61.1",
    "caf\u00e9",
    "",
    "-",
    None,
    MISSING,
]
_BAD_HEADER_VALUES = [0, 12, False, {"a": 1}, "\ud800"]  # the reference writes str(value)


def _headers(values: list[Any]) -> st.SearchStrategy[Any]:
    header = st.builds(
        lambda name, value, extra: _varied({"name": name, "value": value}, extra),
        st.sampled_from(_HEADER_NAMES),
        st.sampled_from(values),
        st.sampled_from([{}, {"extra": 1}]),
    )
    odd = st.sampled_from(["Host: x", None, ["Host", "x"], {}])
    return st.lists(header | odd, max_size=10) | st.sampled_from([None, "x", {"name": "Host"}, MISSING])


_REQUEST_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "clientIp": (
        [
            "203.0.113.9",
            "2001:db8::1",
            "2001:DB8:0::1",  # valid_ip canonicalises it
            "::ffff:1.2.3.4",
            "010.1.1.1",
            "[2001:db8::2]",
            " 1.2.3.4",
            "host.example",
            *_TEXT,
        ],
        _BAD_TEXT,
    ),
    "country": (["US", "\u65e5\u672c", *_TEXT], _BAD_TEXT),
    "uri": (["/", "/a?b", "/caf\u00e9", *_TEXT], _BAD_TEXT),
    "args": (["a=1&b=%20", *_TEXT], _BAD_TEXT),
    "httpVersion": (["HTTP/2.0", "HTTP/3.0", "HTTP", "h/", "HTTP/", "Http/1.0", *_TEXT], _BAD_TEXT),
    "httpMethod": (["POST", *_TEXT], _BAD_TEXT),
    "requestId": (["rid", *_TEXT], _BAD_TEXT),
    "host": (["a.example", *_TEXT], _BAD_TEXT),
    "scheme": (["http", *_TEXT], _BAD_TEXT),
    "fragment": (["top", *_TEXT], _BAD_TEXT),
}
_RULES = [
    {**GROUP, "terminatingRule": {"ruleId": "SQLi_BODY", "action": "BLOCK", "ruleMatchDetails": None}},
    {**GROUP, "nonTerminatingMatchingRules": [{"ruleId": "SizeRestrictions_BODY", "action": "COUNT"}]},
    {**GROUP, "excludedRules": [{"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": "NoUserAgent_HEADER"}]},
    {**GROUP, "terminatingRule": "x", "excludedRules": [{"ruleId": "-"}, {"ruleId": "Default_Action"}, 3]},
    {**GROUP, "customerConfig": {"a": [None, "", "-", [], {}], "b": 0, "c": False, "d": 2**64 + 5, "e": -(2**53 - 1)}},
    "not a group",
]
_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "timestamp": ([0, 1, 999, 1748736000999, 253402300799999], [253402300800000, -1, "1748736000123", "\u00b2", 1.5]),
    "formatVersion": ([2, -3, 2**53 - 1, None, MISSING], ["1", "x", True, 1.0, *_BIG]),
    "webaclId": (
        [
            "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/b/2",
            "arn:aws:wafv2:::global/webacl/x/1",  # no region, no account: the S3 key's
            "arn:aws:wafv2:eu-west-1:1:regional/ipset/x",
            "abc-123",  # a WAF Classic web ACL ID
            "arn:x",
            *_TEXT,
        ],
        _BAD_TEXT,
    ),
    "terminatingRuleId": (["RuleA", "Default_Action", *_TEXT], _BAD_TEXT),
    "terminatingRuleType": (["GROUP", "RATE_BASED", *_TEXT], _BAD_TEXT),
    "action": (["BLOCK", "COUNT", "CAPTCHA", "CHALLENGE", "EXCLUDED_AS_COUNT", *_TEXT], _BAD_TEXT),
    "terminatingRuleMatchDetails": (
        [
            [{"conditionType": "XSS", "location": "HEADER", "matchedData": ["<", "frameset"]}],
            [{"a": None, "b": "-"}],
            *[None, "", "-", 0, 0.0, False, {"x": [None, [], {}]}, [2**53 - 1], [2**64 + 5], MISSING],
        ],
        [[2**53], [-(2**53)], [2**63]],
    ),
    "httpSourceName": (["CF", *_TEXT], _BAD_TEXT),
    "httpSourceId": (["E1", *_TEXT], _BAD_TEXT),
    "rateBasedRuleList": (
        [
            [{"rateBasedRuleId": "1", "rateBasedRuleName": "Rate", "limitKey": "IP", "maxRateAllowed": 100}],
            [{"rateBasedRuleName": ""}, "x"],
            None,
            MISSING,
        ],
        [[{"rateBasedRuleName": "R", "maxRateAllowed": 2**63}]],
    ),
    "nonTerminatingMatchingRules": (
        [[{"ruleId": "TestRule", "action": "COUNT"}], [{"ruleId": "RuleA"}, {"ruleId": "TestRule"}, 5], None, MISSING],
        [[{"ruleId": "\ud800"}]],
    ),
    "requestHeadersInserted": ([[{"name": "x-amzn-waf-a", "value": "1"}], "", 0, MISSING], [2**60]),
    "responseCodeSent": ([403, 0, -1, None, MISSING], ["403", True, 1.5, *_BIG]),
    "requestBodySize": ([512, None, MISSING], ["512", 2**70]),
    "requestBodySizeInspectedByWAF": ([8192, None, MISSING], ["8192", 2**63]),
    "labels": ([[], [{"name": ""}, {"name": "-"}, {"x": 1}, "s", {"name": 5}, {"name": "a"}], None, "x"], _BAD_TEXT),
    "captchaResponse": ([{"responseCode": 405, "solveTimestamp": 0, "failureReason": "TOKEN_MISSING"}], _BAD_TEXT),
    "challengeResponse": (
        [{"responseCode": 202, "solveTimestamp": 2**53 - 1}, {}, "-"],
        [{"solveTimestamp": 2**64 - 1}],
    ),
    "oversizeFields": ([["REQUEST_BODY"], None, [None, ""]], _BAD_TEXT),
    "ja3Fingerprint": (_TEXT, _BAD_TEXT),
    "ja4Fingerprint": (_TEXT, _BAD_TEXT),
    "httpRequest": ([REQUEST, {}, {"headers": []}], [None, "x", [], MISSING]),
}


def _records(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """RECORD with any of its fields (and its request's) replaced: by values the fast path maps
    itself, or with ``odd`` also by those it hands back."""

    def values(table: dict[str, tuple[list[Any], list[Any]]]) -> dict[str, st.SearchStrategy[Any]]:
        return {key: st.sampled_from(plain + odd * bad) for key, (plain, bad) in table.items()}

    top = values(_VALUES) | {"ruleGroupList": st.lists(st.sampled_from(_RULES), max_size=4) | st.sampled_from(_TEXT)}
    request = values(_REQUEST_VALUES) | {"headers": _headers(_HEADER_VALUES + odd * _BAD_HEADER_VALUES)}
    return st.builds(
        lambda top, request: _varied(RECORD, {"httpRequest": _varied(REQUEST, request), **top}),
        st.fixed_dictionaries({}, optional=top),
        st.fixed_dictionaries({}, optional=request),
    )


@DIFF
@given(records=st.lists(_records(odd=True), min_size=1, max_size=4), ascii_only=st.booleans())
def test_records_with_every_field_varied_map_identically(records: list[dict[str, Any]], ascii_only: bool) -> None:
    assert_same(b"\n".join(_line(record, ascii_only) for record in records) + b"\n")


@DIFF
@given(records=st.lists(_records(odd=False), min_size=1, max_size=4), ascii_only=st.booleans())
def test_odd_values_within_the_exactness_rule_are_mapped_fast_and_identically(
    records: list[dict[str, Any]], ascii_only: bool
) -> None:
    data = b"\n".join(_line(record, ascii_only) for record in records) + b"\n"
    assert assert_same(data) == (len(records), 0)


def _one_field_varied(odd: bool) -> list[dict[str, Any]]:
    """RECORD with one field (or one header) replaced, once by each of its values of one side."""
    side = 1 if odd else 0
    records = [_varied(RECORD, {key: value}) for key, values in _VALUES.items() for value in values[side]]
    records += [
        _varied(RECORD, {"httpRequest": _varied(REQUEST, {key: value})})
        for key, values in _REQUEST_VALUES.items()
        for value in values[side]
    ]
    if odd:
        headers = [{"name": "Accept", "value": value} for value in _BAD_HEADER_VALUES]
    else:
        headers = [_varied({"name": name, "value": value}, {}) for name in _HEADER_NAMES for value in _HEADER_VALUES]
        records += [_varied(RECORD, {"ruleGroupList": [group]}) for group in _RULES]
    records += [{**RECORD, "httpRequest": {**REQUEST, "headers": [header]}} for header in headers]
    return records


def test_each_value_of_each_field_alone_maps_identically() -> None:
    """Every value of the tables above, one field at a time: those within the exactness rule all
    mapped fast, the others all handed back (or, with a lone surrogate, the line's dead letter)."""
    data, expected = cases.values_alone(_one_field_varied(odd=False), _one_field_varied(odd=True), _line)
    assert assert_same(data) == expected


_SAMPLE = (REPO / "tests/data/samples/logs/waf/test-waf.log").read_bytes() + _line(RECORD) + b"\n"


@DIFF
@given(data=damaged(_SAMPLE, [b"", b"9" * 5000, b'{"a":' * 3000, "\u00e9".encode() * 300, b"\r\t"]))
def test_damaged_samples_map_identically(data: bytes) -> None:
    assert_same(data)


# --- framing -----------------------------------------------------------------------------------


def test_edge_lines_map_identically() -> None:
    data = cases.json_edge_lines(_line(RECORD), RECORD, (b"curl", b"\xff\xfe"))
    fast, reference = assert_same(data)
    assert (fast, reference) == (4, 1)  # the plain, CRLF, padded and last lines; {} by the reference


def test_over_long_lines_are_the_same_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit below the line size, and chunks smaller than a line: the skip path of the framing."""
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 900)
    plain = _line(RECORD)
    long = _line({**RECORD, "httpRequest": {**REQUEST, "uri": "/" + "a" * 3000}})
    data = cases.over_long_lines(plain, long)
    assert assert_same(data, options=ParseOptions(max_record_bytes=len(plain) + 1))[0] == 3
    assert assert_same(data, options=ParseOptions(max_record_bytes=len(plain)))[0] == 2  # its CR: one byte over


def test_chunk_boundaries_keep_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 1000)
    lines = [_line({**RECORD, "timestamp": RECORD["timestamp"] + i}) for i in range(40)]
    assert assert_same(b"\n\n".join(lines)) == (40, 0)  # blank lines between, no final newline


def test_corrupt_gzip_tail_gives_the_same_events_and_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line read before the stream fails is an event (or, garbled, a dead letter) on both paths,
    then the same object dead letter."""
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 4096)
    body = gzip.compress(b"\n".join(_line({**RECORD, "timestamp": RECORD["timestamp"] + i}) for i in range(2000)))
    broken = body[: len(body) // 2] + b"\x00" * 64 + body[len(body) // 2 + 64 :]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "waf.log.gz"
        path.write_bytes(broken)
        reference = cases.outcome(path, False, WAF)
        assert cases.outcome(path, True, WAF) == reference
    assert reference[0] and reference[1][-1]["stage"] == "object"


def test_aws_key_context_maps_identically() -> None:
    """The S3 key's account and region complete cloud.* after the web ACL ARN's, as finalize does."""
    key = "AWSLogs/111122223333/WAFLogs/eu-west-1/prod-acl/2025/06/01/00/00/waf.log.gz"
    acls = [RECORD["webaclId"], "arn:aws:wafv2:::global/webacl/x/1", "abc-123", "-", MISSING]
    lines = [_line(_varied(RECORD, {"webaclId": acl})) for acl in acls]
    assert assert_same(gzip.compress(b"\n".join(lines) + b"\n"), name=key) == (5, 0)
