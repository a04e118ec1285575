"""Apache error logs (2.2 and 2.4) against Elastic's oracle, clients, multi-line entries and hostile input."""

from __future__ import annotations

import pytest
import yaml
from _web_cases import (
    ERROR_ORACLE_FIELDS,
    assert_garbage_dead_lettered,
    hostile_examples,
    mangle,
    oracle_pairs,
    parse_hostile,
    parse_text,
    routed,
    sniffed,
)
from oracle import parse_file, sample

from siem.formats.base import ParseOptions

ORACLE_FIELDS = [
    *ERROR_ORACLE_FIELDS,
    "source.ip",
    "source.address",
    "source.port",
    "file.path",
    "http.request.referrer",
    "apache.error.module",
]
FILES = {"test-error-basic.log": 4, "test-error-darwin.log": 2, "test-error-trace.log": 1, "test-error-ubuntu.log": 7}


def _oracle_options() -> ParseOptions:
    """The timezone Elastic's harness assumed for these zone-less times (event.timezone: "GMT+2")."""
    config = yaml.safe_load(sample("apache_error/test-common-config.yml").read_text())
    return ParseOptions(syslog_timezone=config["fields"]["event.timezone"])


@pytest.mark.parametrize("name", sorted(FILES))
def test_apache_error_matches_elastic_oracle(name: str) -> None:
    fields = ORACLE_FIELDS
    if name == "test-error-trace.log":
        # Elastic leaves `mod_rewrite.c(470): [client …]` in the message and extracts no client;
        # we move the source location to log.origin and the client to source.* (documented).
        fields = [f for f in ORACLE_FIELDS if f != "message" and not f.startswith("source.")]
    oracle_pairs("apache_error", name, "apache.error", fields, FILES[name], _oracle_options())


def test_trace_entry_source_location_and_client() -> None:
    (event,), _ = parse_file(sample("apache_error/test-error-trace.log"), "apache.error", _oracle_options())
    assert event["log"]["origin"] == {"file": {"name": "mod_rewrite.c", "line": 470}}
    assert event["source"] == {"ip": "10.121.192.8", "address": "10.121.192.8", "port": 38350}
    assert event["message"].startswith("10.121.192.8 - - [dev.elastic.co/sid#55a374e851c8]")
    assert event["@timestamp"] == "2021-10-20T17:20:59.121211Z"  # microseconds kept
    assert event["event"]["timezone"] == "GMT+2"


def test_24_variants_and_multiline() -> None:
    events, letters = parse_text(
        "[Tue Mar 05 10:00:00.5 2024] [core:error] [pid 7:tid 8] (13)Permission denied: "
        "[client 2001:db8::1:51234] AH00035: access to /secret denied, referer: https://x.example/\n"
        "[Tue Mar 05 10:00:01 2024] [:error] [pid 7] [client 192.0.2.5:40000] PHP Fatal error:  boom in /a.php\n"
        "Stack trace:\n"
        "#0 {main}\n"
        "[Tue Mar 05 10:00:02 2024] [ssl:warn] [pid 7] AH01909: server certificate does NOT include an ID\n"
        "[Tue Mar  5 10:00:03 2024] [error] [client ::1] File does not exist: /var/www/x\n",
        "apache.error",
        ParseOptions(syslog_timezone="America/New_York"),
    )
    assert not letters
    denied, php, ssl, old = events
    assert denied["source"] == {"ip": "2001:db8::1", "address": "2001:db8::1", "port": 51234}
    assert denied["error"] == {"code": "13", "message": "Permission denied"}
    assert denied["message"] == "AH00035: access to /secret denied, referer: https://x.example/"
    assert denied["http"]["request"]["referrer"] == "https://x.example/"
    assert denied["@timestamp"] == "2024-03-05T15:00:00.500000Z"  # EST, UTC-5
    assert php["message"] == "PHP Fatal error:  boom in /a.php\nStack trace:\n#0 {main}"
    assert php["source"]["port"] == 40000 and "apache" not in php  # `[:error]`: no module name
    assert ssl["event"]["type"] == ["error"] and ssl["log"]["level"] == "warn"
    assert old["source"] == {"ip": "::1", "address": "::1"}  # 2.2 logs no port
    assert old["file"]["path"] == "/var/www/x"


@pytest.mark.parametrize(
    "garbage",
    ["plain text", "[Tue Foo 05 10:00:00 2024] [error] x", "[Tue Feb 30 10:00:00 2024] [error] bad day"],
)
def test_garbage_entry_is_dead_lettered_with_position(garbage: str) -> None:
    good = sample("apache_error/test-error-ubuntu.log").read_text().splitlines()[0]
    if garbage.startswith("["):
        assert_garbage_dead_lettered(good, garbage, "apache.error")
    else:  # a line that does not start an entry continues the previous one
        events, letters = parse_text(f"{good}\n{garbage}\n{good}\n", "apache.error")
        assert len(events) == 2 and not letters
        assert events[0]["message"].endswith("\nplain text")


@pytest.mark.parametrize("name", sorted(FILES))
def test_sniffing(name: str) -> None:
    assert sniffed(sample(f"apache_error/{name}").read_bytes()) == "apache.error"


@pytest.mark.parametrize(
    "path", ["/var/log/httpd/error_log", "/var/log/httpd/ssl_error_log", "/var/log/apache2/error.log.2.gz"]
)
def test_key_layout(path: str) -> None:
    assert routed(path) == "apache.error"


@hostile_examples(max_offset=720)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = mangle(sample("apache_error/test-error-ubuntu.log").read_bytes() + b"\n", cut, junk, where)
    data += b"[Tue Mar 05 10:00:00 2024] [core:error] [pid 1] [client " + b"9" * huge + b"] x\n"
    events, letters = parse_hostile(data, "apache.error")
    assert events or letters
