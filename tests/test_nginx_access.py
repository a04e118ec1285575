"""nginx access logs against Elastic's oracle, the X-Forwarded-For walk, and hostile input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from _web_cases import (
    ACCESS_ORACLE_FIELDS,
    assert_garbage_dead_lettered,
    hostile_examples,
    line_count,
    mangle,
    parse_hostile,
    parse_lines,
    routed,
    sniffed,
)
from oracle import assert_fields, expected, get, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.decompress import GZIP_DEFLATE

ORACLE_FIELDS = [*ACCESS_ORACLE_FIELDS, "event.type", "nginx.access.remote_ip_list"]
FILES = {"test-access.log": 14, "test-nginx.log": 10, "test-test-with-host.log": 10}


def _oracle_line_starts(raw: Path) -> list[int]:
    """Which lines Elastic's harness started an event on: its multiline first_line_pattern glues every
    other line (IPv6 clients, vhost prefixes, quoted lists) onto the previous event. We keep one
    event per line; oracle event i is compared with our event for the i-th starting line."""
    config = yaml.safe_load(sample("nginx_access/test-common-config.yml").read_text())
    first_line = re.compile(config["multiline"]["first_line_pattern"])
    lines = [ln for ln in raw.read_text().splitlines() if ln.strip()]
    return [i for i, ln in enumerate(lines) if i == 0 or first_line.match(ln)]  # a file starts an event


@pytest.mark.parametrize("name", sorted(FILES))
def test_nginx_access_matches_elastic_oracle(name: str) -> None:
    raw = sample(f"nginx_access/{name}")
    events, letters = parse_file(raw, "nginx.access")
    oracle = expected(sample(f"nginx_access/{name}-expected.json"))
    assert not letters
    assert len(events) == FILES[name]  # one event per line
    starts = _oracle_line_starts(raw)
    assert len(starts) == len(oracle)
    for i, theirs in zip(starts, oracle, strict=True):
        ours = events[i]
        assert_fields(ours, theirs, ORACLE_FIELDS, label=f"{name} line {i}")
        assert ours["event"]["dataset"] == "nginx.access"
        # related.ip: Elastic keeps source and destination; we add every hop and the peer.
        assert set(get(theirs, "related.ip") or []) <= set(get(ours, "related.ip") or [])


def test_proxy_chain_default_trust_and_configured_trust() -> None:
    raw = sample("nginx_access/test-nginx.log")
    events, _ = parse_file(raw, "nginx.access")
    cloudfront = events[4]  # "10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185
    # default trust (private ranges): the VPC load balancer 10.2.1.185 is trusted, CloudFront is not
    assert cloudfront["source"]["ip"] == "204.246.1.1"
    assert cloudfront["client"]["ip"] == "10.2.1.185"
    hops = ["10.5.102.222", "199.96.1.1", "204.246.1.1", "10.2.1.185"]
    assert cloudfront["related"]["ip"] == hops
    assert cloudfront["nginx"]["access"]["remote_ip_list"] == hops

    # trusting CloudFront's range too: the viewer is the client, the left-most (spoofable) hop is ignored
    with_cf = ParseOptions(trusted_proxies=("10.0.0.0/8", "204.246.0.0/16"))
    events, _ = parse_file(raw, "nginx.access", with_cf)
    assert events[4]["source"]["ip"] == "199.96.1.1"

    # trusting only an unrelated network: XFF is not believed, the peer is the client
    events, _ = parse_file(raw, "nginx.access", ParseOptions(trusted_proxies=("192.0.2.0/24",)))
    assert events[4]["source"]["ip"] == "10.2.1.185"
    assert events[0]["source"]["ip"] == "127.0.0.1"
    assert "10.0.0.2" in events[0]["related"]["ip"]  # hops stay searchable


def test_main_format_trailing_x_forwarded_for() -> None:
    base = '[10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 5 "-" "curl/8"'
    events, letters = parse_lines(
        [
            f'10.1.2.3 - - {base} "198.51.100.7, 10.9.9.9"',  # via our load balancer: believe XFF
            f'203.0.113.9 - - {base} "1.1.1.1"',  # straight from the internet: a forged XFF
            f'10.1.2.3 - - {base} "-"',
            f'10.1.2.3 - - {base} "not, an address"',
        ],
        "nginx.access",
    )
    assert not letters
    via_lb, forged, no_xff, junk = events
    assert via_lb["source"]["ip"] == "198.51.100.7"
    assert via_lb["client"]["ip"] == "10.1.2.3"
    assert via_lb["related"]["ip"] == ["198.51.100.7", "10.9.9.9", "10.1.2.3"]
    assert forged["source"]["ip"] == "203.0.113.9"
    assert "1.1.1.1" in forged["related"]["ip"]
    assert no_xff["source"]["ip"] == no_xff["client"]["ip"] == "10.1.2.3"
    assert junk["source"]["ip"] == "10.1.2.3"
    assert via_lb["@timestamp"] == "2000-10-10T20:55:36Z"


def test_edge_cases_of_the_line() -> None:
    events, letters = parse_lines(
        [
            # authuser, IPv6 peer, escaped quotes in the user agent, request_time after the bytes
            '2001:db8::7 - alice [01/Jan/2024:00:00:00 +0000] "GET /x?a=%20b HTTP/2.0" 201 - 0.123 "-" "a \\"q\\" b"',
            # a request with spaces in the target, and a proxy request with a full URL
            '192.0.2.1 - - [01/Jan/2024:00:00:01 +0000] "GET /a b c HTTP/1.1" 400 0 "-" "-"',
            '192.0.2.1 - - [01/Jan/2024:00:00:02 +0000] "CONNECT example.com:443 HTTP/1.1" 405 0 "-" "-"',
            '192.0.2.1 - - [01/Jan/2024:00:00:03 +0000] "GET http://example.org:8080/p?q=1 HTTP/1.1" 200 1 "-" "-"',
            # binary garbage on the HTTP port (nginx escapes it as \xHH)
            '192.0.2.1 - - [01/Jan/2024:00:00:04 +0000] "\\x16\\x03\\x01\\x00\\xF7\\x01" 400 157 "-" "-"',
        ],
        "nginx.access",
    )
    assert not letters
    first, spaces, connect, proxy, garbage = events
    assert first["user"]["name"] == "alice" and first["related"]["user"] == ["alice"]
    assert first["source"]["ip"] == "2001:db8::7"
    assert first["user_agent"]["original"] == 'a "q" b'
    assert first["url"]["query"] == "a= b" and first["http"]["version"] == "2.0"
    assert "body" not in first["http"]["response"]
    assert first["nginx"]["access"]["response_time"] == 123
    assert spaces["url"]["original"] == "/a b c" and spaces["http"]["version"] == "1.1"
    assert connect["url"] == {"original": "example.com:443", "domain": "example.com", "port": 443}
    assert proxy["url"]["domain"] == "example.org" and proxy["url"]["port"] == 8080
    assert proxy["url"]["path"] == "/p" and proxy["url"]["scheme"] == "http"
    assert "method" not in garbage["http"].get("request", {})
    assert garbage["nginx"]["access"]["request_line"].startswith("\\x16")
    assert garbage["event"]["outcome"] == "failure"


@pytest.mark.parametrize(
    "garbage",
    [
        "not a log line",
        '1.2.3.4 - - [32/Foo/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
        '1.2.3.4 - - [31/Feb/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
        'Jan  1 00:00:00 web nginx: 1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
    ],
)
def test_garbage_line_is_dead_lettered_with_position(garbage: str) -> None:
    good = sample("nginx_access/test-access.log").read_text().splitlines()[0]
    assert_garbage_dead_lettered(good, garbage, "nginx.access")


def test_invalid_trusted_proxy_is_a_clear_dead_letter() -> None:
    events, letters = parse_file(
        sample("nginx_access/test-nginx.log"), "nginx.access", ParseOptions(trusted_proxies=("10.0.0.0/33",))
    )
    assert letters and all("trusted_proxies" in dl.reason for dl in letters)
    assert len(events) + len(letters) == 10  # single-address lines need no trust decision


@pytest.mark.parametrize(
    ("name", "dataset"),
    [
        ("test-nginx.log", "nginx.access"),  # address list: nginx only
        ("test-test-with-host.log", "nginx.access"),
        ("test-access.log", "apache.access"),  # plain combined: apache.access sorts first (documented)
    ],
)
def test_sniffing(name: str, dataset: str) -> None:
    assert sniffed(sample(f"nginx_access/{name}").read_bytes()) == dataset


def test_sniffing_main_format_and_paths() -> None:
    main = b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "curl/8" "-"\n'
    assert sniffed(main) == "nginx.access"
    for path in (
        "/var/log/nginx/access.log",
        "/var/log/nginx/access.log.1",
        "s3://logs/web-1/var/log/nginx/access.log.2.gz",
        "/var/log/nginx/example.com.access.log-20240101.gz",
    ):
        assert routed(path) == "nginx.access", path


@hostile_examples(max_offset=4000)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = mangle(sample("nginx_access/test-nginx.log").read_bytes(), cut, junk, where)
    data += b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /' + b"A" * huge + b' HTTP/1.1" 200 1 "-" "-"\n'
    events, letters = parse_hostile(data, "nginx.access")
    if data.startswith(GZIP_DEFLATE):  # looks like gzip but is not: one failed object, said clearly
        assert not events and [d.stage for d in letters] == ["object"]
        return
    assert len(events) + len(letters) == line_count(data)
    for event in events:
        for part in ("source", "client", "destination"):
            ip = event.get(part, {}).get("ip")
            assert ip is None or ":" in ip or ip.count(".") == 3
