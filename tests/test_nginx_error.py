"""nginx error logs against Elastic's oracle, trailer extraction, multi-line joining and hostile input."""

from __future__ import annotations

import io
import re

import pytest
from _web_cases import (
    ERROR_ORACLE_FIELDS,
    hostile_examples,
    mangle,
    oracle_pairs,
    parse_hostile,
    parse_text,
    routed,
    sniffed,
)
from oracle import parse_file, sample

from siem.formats._http_common import joined_records
from siem.formats.base import BadRecord, ParseOptions

ORACLE_FIELDS = [*ERROR_ORACLE_FIELDS, "nginx.error.connection_id"]
# The harness config sets no event.timezone, so Elastic read the zone-less times as UTC.
ORACLE_OPTIONS = ParseOptions(syslog_timezone="UTC")


def test_nginx_error_matches_elastic_oracle() -> None:
    # 4 entries of 6 lines: the FastCGI stderr continuation lines are joined
    pairs = oracle_pairs("nginx_error", "test-error-raw.log", "nginx.error", ORACLE_FIELDS, 4, ORACLE_OPTIONS)
    events = [ours for ours, _ in pairs]
    assert events[2]["message"].count("\n") == 2
    assert events[2]["log"]["offset"] == sample("nginx_error/test-error-raw.log").read_bytes().index(b"2019/10/30")


def test_trailer_fields_beyond_elastic() -> None:
    events, _ = parse_file(sample("nginx_error/test-error-raw.log"), "nginx.error", ORACLE_OPTIONS)
    first = events[0]
    assert first["source"] == {"ip": "127.0.0.1", "address": "127.0.0.1"}
    assert first["http"]["request"] == {"method": "GET", "referrer": "http://localhost:8080/"}
    assert first["url"] == {
        "original": "/favicon.ico",
        "path": "/favicon.ico",
        "extension": "ico",
        "domain": "localhost",
        "port": 8080,
    }
    assert first["nginx"]["error"]["server"] == "localhost"
    assert events[3]["url"]["original"] == "/pysio"
    assert "source" not in events[2]  # no trailer in the FastCGI entry


def test_timezone_option_is_applied() -> None:
    events, _ = parse_file(
        sample("nginx_error/test-error-raw.log"), "nginx.error", ParseOptions(syslog_timezone="Europe/Paris")
    )
    assert events[0]["@timestamp"] == "2016-10-25T12:49:34Z"  # CEST, UTC+2
    assert events[0]["event"]["timezone"] == "Europe/Paris"
    events, _ = parse_file(
        sample("nginx_error/test-error-raw.log"), "nginx.error", ParseOptions(syslog_timezone="-05:30")
    )
    assert events[0]["@timestamp"] == "2016-10-25T20:19:34Z"


def test_levels_stream_and_mail_trailers_and_planted_trailers() -> None:
    events, letters = parse_text(
        "2024/01/02 03:04:05 [notice] 1#1: signal process started\n"
        "2024/01/02 03:04:05 [error] 9#9: *7 SSL_do_handshake() failed while SSL handshaking, "
        "client: 2001:db8::1, server: 0.0.0.0:443\n"
        "2024/01/02 03:04:05 [error] 9#9: *8 auth http server 127.0.0.1:9000 did not send server or port, "
        'client: 192.0.2.8, server: 0.0.0.0:25, login: "mallory"\n'
        # a decoded path that plants a fake trailer before the real one: no client is believed
        '2024/01/02 03:04:05 [error] 9#9: *9 open() "/html/a, client: 6.6.6.6, server: x, referrer: "" failed '
        '(2: No such file or directory), client: 192.0.2.9, server: s, request: "GET /a HTTP/1.1", host: "h"\n'
        # a Referer that plants a fake trailer after the real one: same
        '2024/01/02 03:04:05 [error] 9#9: *10 open() "/html/b" failed (2: No such file or directory), '
        'client: 192.0.2.10, server: s, request: "GET /b HTTP/1.1", host: "h", referrer: "x", client: 6.6.6.6, '
        'server: s, host: "h"\n',
        "nginx.error",
    )
    assert not letters
    notice, tls, mail, planted_path, planted_referrer = events
    assert notice["event"]["type"] == ["info"] and "nginx" not in notice
    assert tls["source"]["ip"] == "2001:db8::1" and tls["nginx"]["error"]["server"] == "0.0.0.0:443"
    assert mail["user"]["name"] == "mallory" and mail["related"]["user"] == ["mallory"]
    for event, real in ((planted_path, "192.0.2.9"), (planted_referrer, "192.0.2.10")):
        assert "source" not in event
        assert set(event["related"]["ip"]) == {"6.6.6.6", real}
        assert set(event["nginx"]["error"]["client_candidates"]) == {"6.6.6.6", real}


def test_bad_entries_are_dead_lettered_and_following_entries_kept() -> None:
    good = "2024/01/02 03:04:05 [error] 1#0: *1 boom, client: 192.0.2.1, server: s\n"
    events, letters = parse_text(
        "orphan continuation line\n" + good + "2024/13/45 03:04:05 [error] 1#0: bad date\n" + good, "nginx.error"
    )
    assert len(events) == 2
    assert [dl.offset for dl in letters] == [0, 25 + len(good)]
    assert all(dl.stage == "map" and dl.reason for dl in letters)


def test_bad_timezone_is_a_clear_dead_letter() -> None:
    events, letters = parse_file(
        sample("nginx_error/test-error-raw.log"), "nginx.error", ParseOptions(syslog_timezone="Mars/Olympus")
    )
    assert not events and len(letters) == 4
    assert "Mars/Olympus" in letters[0].reason


def test_sniffing_and_key_layout() -> None:
    assert sniffed(sample("nginx_error/test-error-raw.log").read_bytes()) == "nginx.error"
    for path in ("/var/log/nginx/error.log", "/var/log/nginx/error.log.1", "s3://b/h/var/log/nginx/error.log.3.gz"):
        assert routed(path) == "nginx.error", path


@pytest.mark.parametrize("limit", [100, 1000])
def test_event_size_limit_dead_letters_the_overflow(limit: int) -> None:
    lines = b"2024/01/02 03:04:05 [error] 1#0: start\n" + b"continuation of the entry\n" * 100
    out = list(joined_records(io.BytesIO(lines), re.compile(rb"\d{4}/"), limit=limit))
    assert isinstance(out[0], tuple) and len(out[0][1]) <= limit
    overflow = [r for r in out if isinstance(r, BadRecord)]
    assert overflow and all("limit" in r.reason for r in overflow)
    assert len(out) - 1 + out[0][1].count("\n") == 100


@hostile_examples(max_offset=1700)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = mangle(sample("nginx_error/test-error-raw.log").read_bytes() + b"\n", cut, junk, where)
    data += b"2024/01/02 03:04:05 [error] 1#0: *1 x" + b", client: 1.2.3.4" * (huge // 16) + b", server: s\n"
    events, letters = parse_hostile(data, "nginx.error")
    assert events or letters
