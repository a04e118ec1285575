"""Apache access logs against Elastic's oracle, X-Forwarded-For, ssl_request_log and hostile input."""

from __future__ import annotations

import pytest
from _web_cases import (
    ACCESS_ORACLE_FIELDS,
    assert_garbage_dead_lettered,
    hostile_examples,
    line_count,
    mangle,
    oracle_pairs,
    parse_hostile,
    parse_lines,
    routed,
    sniffed,
)
from oracle import get, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.decompress import GZIP_DEFLATE

ORACLE_FIELDS = [
    *ACCESS_ORACLE_FIELDS,
    "source.domain",
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
    for ours, theirs in oracle_pairs("apache_access", name, "apache.access", ORACLE_FIELDS, FILES[name]):
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


def test_combined_edge_cases() -> None:
    events, letters = parse_lines(
        [
            # vhost:port prefix, authuser, escaped quotes and backslashes, response time after the bytes
            'www.example.com:443 198.51.100.4 - bob [05/Mar/2024:10:00:00 +0100] "GET /q?s=%22x%22 HTTP/1.1" '
            '302 - 5230 "https://ref.example/?a=\\"1\\"" "Mozilla \\\\ 5.0"',
            # behind a local load balancer
            '10.0.0.9 - - [05/Mar/2024:10:00:01 +0100] "POST /login HTTP/1.1" 401 12 "-" "curl/8" '
            'X-Forwarded-For="203.0.113.50, 10.0.0.8"',
            # a request line Apache could not parse
            '198.51.100.4 - - [05/Mar/2024:10:00:02 +0100] "\\x16\\x03\\x01" 400 226 "-" "-"',
        ],
        "apache.access",
    )
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
    assert_garbage_dead_lettered(good, garbage, "apache.access")


@pytest.mark.parametrize("name", sorted(FILES))
def test_sniffing(name: str) -> None:
    assert sniffed(sample(f"apache_access/{name}").read_bytes()) == "apache.access"


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
    assert routed(path) == "apache.access"


@hostile_examples(max_offset=1600)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = mangle(sample("apache_access/test-access-basic.log").read_bytes() + b"\n", cut, junk, where)
    data += b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "' + b"U" * huge + b'"\n'
    events, letters = parse_hostile(data, "apache.access")
    if data.startswith(GZIP_DEFLATE):  # looks like gzip but is not: one failed object, said clearly
        assert not events and [d.stage for d in letters] == ["object"]
        return
    assert len(events) + len(letters) == line_count(data)
