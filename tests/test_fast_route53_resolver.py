"""The Route 53 Resolver fast path (siem/fast/route53_resolver.py, framed by siem/fast/json_lines.py)
against the reference (siem/formats/route53_resolver.py + normalize.finalize): same documents
(byte-identical after key ordering), IDs and dead letters on every Route 53 Resolver sample file,
the property tests' damaged sample, records whose every field varies over plain and odd values (one
at a time and combined; those the reference maps must all take the fast path), edge lines (framing)
and AWS key layouts.

Every comparison runs the real pipeline twice over the same file (SIEM_FAST_PATH=off, then on).
"""

from __future__ import annotations

import gzip
import json
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
ROUTE53 = formats.get("aws.route53_resolver")
DIFF = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MISSING = object()  # a key the record does not have

RECORD: dict[str, Any] = {
    "version": "1.100000",
    "account_id": "626345947581",
    "region": "us-east-1",
    "vpc_id": "vpc-01e31a7c",
    "query_timestamp": "2021-12-11T22:46:23Z",
    "query_name": "www.example.com.",
    "query_type": "A",
    "query_class": "IN",
    "rcode": "NOERROR",
    "answers": [{"Rdata": "93.184.216.34", "Type": "A", "Class": "IN"}],
    "srcaddr": "172.31.86.159",
    "srcport": "48701",
    "transport": "UDP",
    "srcids": {"instance": "i-0123456789abcdef0"},
}


def assert_same(data: bytes, name: str = "queries.log", options: ParseOptions | None = None) -> tuple[int, int]:
    return cases.assert_same_bytes(data, ROUTE53, options, name)


def _line(record: dict[str, Any], ascii_only: bool = True) -> bytes:
    """One record as a JSON line, by Python's json: integers past 64 bits and lone surrogates included."""
    return json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _varied(base: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``choices`` over it, the MISSING keys left out."""
    record = {**base, **choices}
    return {key: value for key, value in record.items() if value is not MISSING}


SAMPLE_FILES = sorted(
    p
    for folder in (REPO / "tests/data/samples/logs/route53_resolver", SAMPLES / "route53_resolver")
    for p in folder.iterdir()
    if not p.name.endswith(("-expected.json", ".yml"))
)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_route53_resolver_sample_maps_identically(path: Path) -> None:
    assert_same(path.read_bytes())


def test_the_sample_records_take_the_fast_path() -> None:
    assert assert_same((REPO / "tests/data/samples/logs/route53_resolver/test-route53.log").read_bytes()) == (34, 0)


def test_plain_queries_of_every_kind_take_the_fast_path() -> None:
    """A, AAAA, PTR (IPv4 and IPv6 reverse names) and CNAME queries, IPv4 and IPv6 clients, firewall actions."""
    kinds = [
        ("www.example.com.", "A", [{"Rdata": "93.184.216.34", "Type": "A", "Class": "IN"}]),
        ("www.example.com.", "AAAA", [{"Rdata": "2606:2800:220:1::1", "Type": "AAAA", "Class": "IN"}]),
        ("159.86.31.172.in-addr.arpa.", "PTR", [{"Rdata": "ip-172-31-86-159.ec2.internal.", "Type": "PTR"}]),
        ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR", []),
        ("cdn.example.com.", "CNAME", [{"Rdata": "edge.example.net.", "Type": "CNAME", "Class": "IN"}] * 2),
    ]
    lines = []
    for i in range(300):
        name, qtype, answers = kinds[i % 5]
        record = {**RECORD, "query_name": name, "query_type": qtype, "answers": answers, "srcport": str(1024 + i)}
        record["srcaddr"] = f"10.0.{i % 256}.{i % 200 + 1}" if i % 3 else f"fd00:ec2::{i:x}"
        if i % 7 == 0:
            record |= {"firewall_rule_action": "BLOCK", "firewall_rule_group_id": "rslvr-frg-1"}
        lines.append(_line(record))
    assert assert_same(b"\n".join(lines) + b"\n") == (300, 0)


# --- every field varied ------------------------------------------------------------------------

# Each field's values as (those the fast path maps itself, those the reference refuses or that make the
# line a dead letter): the fast path hands back exactly what to_ecs refuses.
_TEXT = ["", "-", None, 5, True, 1.5, ["x"], {"a": 1}, "caf\u00e9", 2**64 + 5, MISSING]  # odd values of any field
_BAD_TEXT = ["\ud800"]  # a lone surrogate: orjson refuses the line
_ANSWERS = [
    {"Rdata": "93.184.216.34", "Type": "A", "Class": "IN"},
    {"Rdata": "2606:2800:0220:0001::1", "Type": "AAAA", "Class": "IN"},
    {"Rdata": "edge.example.net.", "Type": "CNAME"},
    {"Rdata": "host.example.", "Type": "PTR", "Class": "-"},
    {"Rdata": "not-an-ip", "Type": "A"},
    {"Rdata": "093.184.216.34.", "Type": "A"},
    {"Rdata": "v=spf1 -all", "Type": "TXT", "Class": "IN"},
    {"Rdata": 5, "Type": None, "Class": ""},
    {},
    "x",
    None,
]
_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "version": (["1.100000", *_TEXT], _BAD_TEXT),
    "account_id": (["123456789012", *_TEXT], _BAD_TEXT),
    "region": (["eu-west-1", *_TEXT], _BAD_TEXT),
    "vpc_id": (["vpc-0abc", *_TEXT], _BAD_TEXT),
    "query_timestamp": (
        [
            "2021-12-11T22:46:23.123Z",
            "2021-12-11T22:46:23.123456789Z",
            "2021-12-11T22:46:23+00:00",
            "2021-12-11T22:46:23-0000",
            "2021-12-11T22:46:23+02:00",
            "2021-12-11T22:46:23",
            "2021-12-11 22:46:23.5",
            "2021-12-11T22:46:23Z\n",
            "\u0662\u0660\u0662\u0661-12-11T22:46:23Z",  # Arabic-Indic digits: \d matches them
        ],
        ["yesterday", "", "-", None, 1639262783, "0001-01-01T00:00:00+01:00", "\ud800", MISSING],
    ),
    "query_name": (
        [
            "example.com",
            "159.86.31.172.in-addr.arpa.",
            "159.86.31.172.IN-ADDR.ARPA",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
            "999.1.1.1.in-addr.arpa.",
            ".",
            "caf\u00e9.example.",
        ],
        ["", "-", None, 5, ["x"], "\ud800", MISSING],
    ),
    "query_type": (["AAAA", "PTR", "CNAME", "TXT", *_TEXT], _BAD_TEXT),
    "query_class": (["CH", *_TEXT], _BAD_TEXT),
    "rcode": (["NXDOMAIN", "SERVFAIL", *_TEXT], _BAD_TEXT),
    "answers": ([[], None, "x", {"Rdata": "1.2.3.4"}, MISSING], [[{"Rdata": "\ud800", "Type": "A"}]]),
    "srcaddr": (["2001:db8::1", "fd00:ec2::7b18", "010.1.1.1", "[2001:db8::2]", "host", *_TEXT], _BAD_TEXT),
    "srcport": (
        ["0", "65535", "65536", "-1", "00053", "\u0665\u0663", 53, 70000, "99999999999999999999999", *_TEXT],
        _BAD_TEXT,
    ),
    "transport": (["TCP", "udp", "ICMPv6", "sctp", "xyz", *_TEXT], _BAD_TEXT),
    "srcids": (
        [
            {},
            {"resolver_endpoint": "rslvr-in-1"},
            {"instance": "i-1", "resolver_endpoint": "rslvr-out-2"},
            {"instance": ""},
            {"instance": 5, "x": None, "y": "-", "z": 7},
            {"a": [1], "instance": "i-2"},
            *_TEXT,
        ],
        [{"instance": "\ud800"}],
    ),
    "firewall_rule_action": (["BLOCK", "ALERT", "ALLOW", "OTHER", *_TEXT], _BAD_TEXT),
    "firewall_rule_group_id": (["rslvr-frg-1", *_TEXT], _BAD_TEXT),
    "firewall_domain_list_id": (["rslvr-fdl-1", *_TEXT], _BAD_TEXT),
    "firewall_protection": (["DNS_FIREWALL_ADVANCED_PROTECTION", *_TEXT], _BAD_TEXT),
}


def _records(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """RECORD with any of its fields replaced: by values the fast path maps itself, or with ``odd``
    also by those the reference refuses."""
    values = {key: st.sampled_from(plain + odd * bad) for key, (plain, bad) in _VALUES.items()}
    values["answers"] = st.lists(st.sampled_from(_ANSWERS), max_size=4) | values["answers"]
    return st.fixed_dictionaries({}, optional=values).map(lambda choices: _varied(RECORD, choices))


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
    """RECORD with one field replaced, once by each of its values of one side."""
    side = 1 if odd else 0
    records = [_varied(RECORD, {key: value}) for key, values in _VALUES.items() for value in values[side]]
    return records if odd else records + [{**RECORD, "answers": [answer]} for answer in _ANSWERS]


def test_each_value_of_each_field_alone_maps_identically() -> None:
    """Every value of the table above, one field at a time: those within the exactness rule all
    mapped fast, the others all handed back (or, with a lone surrogate, the line's dead letter)."""
    data, expected = cases.values_alone(_one_field_varied(odd=False), _one_field_varied(odd=True), _line)
    assert assert_same(data) == expected


_SAMPLE = (REPO / "tests/data/samples/logs/route53_resolver/test-route53.log").read_bytes() + _line(RECORD) + b"\n"


@DIFF
@given(data=damaged(_SAMPLE, [b"", b"9" * 5000, b'{"a":' * 3000, "\u00e9".encode() * 300, b"\r\t"]))
def test_damaged_samples_map_identically(data: bytes) -> None:
    assert_same(data)


# --- framing -----------------------------------------------------------------------------------


def test_edge_lines_map_identically() -> None:
    data = cases.json_edge_lines(_line(RECORD), RECORD, (b"example", b"\xff\xfe"))
    fast, reference = assert_same(data)
    assert (fast, reference) == (4, 1)  # the plain, CRLF, padded and last lines; {} by the reference


def test_over_long_lines_are_the_same_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 300)
    plain = _line(RECORD)
    long = _line({**RECORD, "query_name": "a." * 1500})
    data = cases.over_long_lines(plain, long)
    assert assert_same(data, options=ParseOptions(max_record_bytes=len(plain) + 1))[0] == 3
    assert assert_same(data, options=ParseOptions(max_record_bytes=len(plain)))[0] == 2  # its CR: one byte over


def test_aws_key_context_maps_identically() -> None:
    """The record's account and region come first, the S3 key's fill in what the record lacks."""
    lines = [_line(RECORD), _line(_varied(RECORD, {"account_id": MISSING, "region": "-"}))]
    body = gzip.compress(b"\n".join(lines) + b"\n")
    for key in (
        "AWSLogs/111122223333/vpcdnsquerylogs/vpc-01e31a7c/2025/06/01/queries.log.gz",  # an account
        "AWSLogs/111122223333/vpcdnsquerylogs/eu-west-1/2025/06/01/queries.log.gz",  # and a region
    ):
        assert assert_same(body, name=key) == (2, 0)
