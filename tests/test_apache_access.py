"""Apache access logs against Elastic's oracle, X-Forwarded-For, ssl_request_log and hostile input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_fields, expected, get, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.routing import Router

ORACLE_FIELDS = [
    "@timestamp",
    "source.ip",
    "source.address",
    "source.domain",
    "source.port",
    "destination.ip",
    "destination.domain",
    "destination.port",
    "user.name",
    "http.request.method",
    "http.request.referrer",
    "http.response.status_code",
    "http.response.body.bytes",
    "http.version",
    "url.original",
    "url.path",
    "url.query",
    "url.domain",
    "url.extension",
    "user_agent.original",
    "event.outcome",
    "event.category",
    "event.kind",
    "tls.cipher",
    "tls.version",
    "tls.version_protocol",
    "apache.access.remote_addresses",
    "apache.access.ssl.protocol",
    "apache.access.ssl.cipher",
]
FILES = {
    "test-access-basic.log": 10,
    "test-access-darwin.log": 6,
    "test-access-ssl-request.log": 2,
    "test-access-ubuntu.log": 9,
    "test-access-vhost.log": 1,
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_apache_access_matches_elastic_oracle(name: str) -> None:
    events, letters = parse_file(sample(f"apache_access/{name}"), "apache.access")
    oracle = expected(sample(f"apache_access/{name}-expected.json"))
    assert not letters
    assert len(events) == len(oracle) == FILES[name]
    for i, (ours, theirs) in enumerate(zip(events, oracle, strict=True)):
        assert_fields(ours, theirs, ORACLE_FIELDS, label=f"{name} line {i}")
        assert ours["event"]["dataset"] == "apache.access"
        assert ours["event"]["type"] == ["access"]  # Elastic sets no event.type here
        assert set(get(theirs, "related.ip") or []) <= set(get(ours, "related.ip") or [])
        if "client" in theirs:
            # Elastic: client.ip = network.forwarded_ip = first non-private XFF hop. Ours: client = the
            # connecting peer; every hop is in related.ip (documented difference).
            assert theirs["client"]["ip"] in ours["related"]["ip"]
            assert ours["client"]["address"] == ours["apache"]["access"]["remote_addresses"][-1]


def test_x_forwarded_for_is_believed_only_from_a_trusted_peer() -> None:
    events, _ = parse_file(sample("apache_access/test-access-basic.log"), "apache.access")
    public_peer = events[7]  # 89.160.20.112 … X-Forwarded-For="10.0.0.2,10.0.0.1"
    assert public_peer["source"]["ip"] == "89.160.20.112"
    assert public_peer["related"]["ip"] == ["10.0.0.2", "10.0.0.1", "89.160.20.112"]
    # once the operator declares 89.160.20.0/24 a proxy, the walk continues through the private hops
    events, _ = parse_file(
        sample("apache_access/test-access-basic.log"),
        "apache.access",
        ParseOptions(trusted_proxies=("89.160.20.0/24", "10.0.0.0/8")),
    )
    assert events[7]["source"]["ip"] == "10.0.0.2"
    assert events[7]["client"]["ip"] == "89.160.20.112"


def _write(lines: list[str]) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False, encoding="utf-8")  # noqa: SIM115
    with handle:
        handle.write("\n".join(lines) + "\n")
    return Path(handle.name)


def test_combined_edge_cases() -> None:
    path = _write(
        [
            # vhost:port prefix, authuser, escaped quotes and backslashes, response time after the bytes
            'www.example.com:443 198.51.100.4 - bob [05/Mar/2024:10:00:00 +0100] "GET /q?s=%22x%22 HTTP/1.1" '
            '302 - 5230 "https://ref.example/?a=\\"1\\"" "Mozilla \\\\ 5.0"',
            # behind a local load balancer
            '10.0.0.9 - - [05/Mar/2024:10:00:01 +0100] "POST /login HTTP/1.1" 401 12 "-" "curl/8" '
            'X-Forwarded-For="203.0.113.50, 10.0.0.8"',
            # a request line Apache could not parse
            '198.51.100.4 - - [05/Mar/2024:10:00:02 +0100] "\\x16\\x03\\x01" 400 226 "-" "-"',
        ]
    )
    try:
        events, letters = parse_file(path, "apache.access")
    finally:
        path.unlink()
    assert not letters
    vhost, behind_lb, garbage = events
    assert vhost["destination"] == {"address": "www.example.com", "domain": "www.example.com", "port": 443}
    assert vhost["user"]["name"] == "bob"
    assert vhost["http"]["request"]["referrer"] == 'https://ref.example/?a="1"'
    assert vhost["user_agent"]["original"] == "Mozilla \\ 5.0"
    assert vhost["url"]["query"] == 's="x"'
    assert vhost["apache"]["access"]["response_time"] == 5230
    assert vhost["@timestamp"] == "2024-03-05T09:00:00Z"
    assert vhost["event"]["outcome"] == "success"
    assert behind_lb["source"]["ip"] == "203.0.113.50"
    assert behind_lb["client"]["ip"] == "10.0.0.9"
    assert behind_lb["event"]["outcome"] == "failure"
    assert behind_lb["related"]["ip"] == ["203.0.113.50", "10.0.0.8", "10.0.0.9"]
    assert garbage["apache"]["access"]["request_line"] == "\\x16\\x03\\x01"


@pytest.mark.parametrize(
    "garbage",
    [
        "<html>not a log</html>",
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1',
        '[10/Oct/2000:13:55:36 -0700] 1.2.3.4 TLSv1.2 "GET /',
    ],
)
def test_garbage_line_is_dead_lettered_with_position(garbage: str) -> None:
    good = sample("apache_access/test-access-ubuntu.log").read_text().splitlines()[0]
    path = _write([good, garbage, good])
    try:
        events, letters = parse_file(path, "apache.access")
    finally:
        path.unlink()
    assert len(events) == 2 and len(letters) == 1
    assert letters[0].offset == len(good) + 1
    assert letters[0].stage == "map" and letters[0].reason


@pytest.mark.parametrize("name", sorted(FILES))
def test_sniffing(name: str) -> None:
    head = sample(f"apache_access/{name}").read_bytes()[:4096]
    assert Router().choose("/no/known/path", head).dataset == "apache.access"


@pytest.mark.parametrize(
    "path",
    [
        "/var/log/httpd/access_log",
        "/var/log/httpd/ssl_request_log",
        "/var/log/httpd/ssl_access_log-20240101.gz",
        "/var/log/apache2/access.log",
        "/var/log/apache2/access.log.2.gz",
        "s3://logs/web-2/var/log/apache2/other_vhosts_access.log",
    ],
)
def test_key_layout(path: str) -> None:
    assert Router().choose(path, b"whatever").dataset == "apache.access"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=1600),
    junk=st.binary(max_size=64),
    where=st.integers(min_value=0, max_value=1600),
    huge=st.integers(min_value=0, max_value=200_000),
)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = sample("apache_access/test-access-basic.log").read_bytes() + b"\n"
    data = data[:cut] + b"\n" + data
    data = data[:where] + junk + data[where:]
    data += b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "' + b"U" * huge + b'"\n'
    handle = tempfile.NamedTemporaryFile(suffix=".log", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    try:
        events, letters = parse_file(handle.name, "apache.access")
    finally:
        Path(handle.name).unlink()
    lines = [ln for ln in data.split(b"\n") if ln.rstrip(b"\r\n").strip()]
    assert len(events) + len(letters) == len(lines)
    assert all(dl.reason for dl in letters)
    assert all(e["@timestamp"].endswith("Z") for e in events)
