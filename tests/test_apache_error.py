"""Apache error logs (2.2 and 2.4) against Elastic's oracle, clients, multi-line entries and hostile input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_fields, expected, parse_file, sample

from siem.formats.base import ParseOptions
from siem.formats.routing import Router

ORACLE_FIELDS = [
    "@timestamp",
    "log.level",
    "message",
    "process.pid",
    "process.thread.id",
    "source.ip",
    "source.address",
    "source.port",
    "file.path",
    "http.request.referrer",
    "apache.error.module",
    "event.kind",
    "event.category",
    "event.type",
]
FILES = {"test-error-basic.log": 4, "test-error-darwin.log": 2, "test-error-trace.log": 1, "test-error-ubuntu.log": 7}


def _oracle_options() -> ParseOptions:
    """The timezone Elastic's harness assumed for these zone-less times (event.timezone: "GMT+2")."""
    config = yaml.safe_load(sample("apache_error/test-common-config.yml").read_text())
    return ParseOptions(syslog_timezone=config["fields"]["event.timezone"])


def _write(text: str) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False, encoding="utf-8")  # noqa: SIM115
    with handle:
        handle.write(text)
    return Path(handle.name)


@pytest.mark.parametrize("name", sorted(FILES))
def test_apache_error_matches_elastic_oracle(name: str) -> None:
    events, letters = parse_file(sample(f"apache_error/{name}"), "apache.error", _oracle_options())
    oracle = expected(sample(f"apache_error/{name}-expected.json"))
    assert not letters
    assert len(events) == len(oracle) == FILES[name]
    for i, (ours, theirs) in enumerate(zip(events, oracle, strict=True)):
        fields = ORACLE_FIELDS
        if name == "test-error-trace.log":
            # Elastic leaves `mod_rewrite.c(470): [client …]` in the message and extracts no client;
            # we move the source location to log.origin and the client to source.* (documented).
            fields = [f for f in ORACLE_FIELDS if f != "message" and not f.startswith("source.")]
        assert_fields(ours, theirs, fields, label=f"{name} entry {i}")
        assert ours["event"]["dataset"] == "apache.error"


def test_trace_entry_source_location_and_client() -> None:
    (event,), _ = parse_file(sample("apache_error/test-error-trace.log"), "apache.error", _oracle_options())
    assert event["log"]["origin"] == {"file": {"name": "mod_rewrite.c", "line": 470}}
    assert event["source"] == {"ip": "10.121.192.8", "address": "10.121.192.8", "port": 38350}
    assert event["message"].startswith("10.121.192.8 - - [dev.elastic.co/sid#55a374e851c8]")
    assert event["@timestamp"] == "2021-10-20T17:20:59.121211Z"  # microseconds kept
    assert event["event"]["timezone"] == "GMT+2"


def test_24_variants_and_multiline() -> None:
    path = _write(
        "[Tue Mar 05 10:00:00.5 2024] [core:error] [pid 7:tid 8] (13)Permission denied: "
        "[client 2001:db8::1:51234] AH00035: access to /secret denied, referer: https://x.example/\n"
        "[Tue Mar 05 10:00:01 2024] [:error] [pid 7] [client 192.0.2.5:40000] PHP Fatal error:  boom in /a.php\n"
        "Stack trace:\n"
        "#0 {main}\n"
        "[Tue Mar 05 10:00:02 2024] [ssl:warn] [pid 7] AH01909: server certificate does NOT include an ID\n"
        "[Tue Mar  5 10:00:03 2024] [error] [client ::1] File does not exist: /var/www/x\n"
    )
    try:
        events, letters = parse_file(path, "apache.error", ParseOptions(syslog_timezone="America/New_York"))
    finally:
        path.unlink()
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
    path = _write(f"{good}\n{garbage}\n{good}\n")
    try:
        events, letters = parse_file(path, "apache.error")
    finally:
        path.unlink()
    if garbage.startswith("["):
        assert len(events) == 2 and len(letters) == 1
        assert letters[0].offset == len(good) + 1 and letters[0].reason
    else:  # a line that does not start an entry continues the previous one
        assert len(events) == 2 and not letters
        assert events[0]["message"].endswith("\nplain text")


@pytest.mark.parametrize("name", sorted(FILES))
def test_sniffing(name: str) -> None:
    head = sample(f"apache_error/{name}").read_bytes()[:4096]
    assert Router().choose("/no/known/path", head).dataset == "apache.error"


@pytest.mark.parametrize(
    "path", ["/var/log/httpd/error_log", "/var/log/httpd/ssl_error_log", "/var/log/apache2/error.log.2.gz"]
)
def test_key_layout(path: str) -> None:
    assert Router().choose(path, b"whatever").dataset == "apache.error"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=720),
    junk=st.binary(max_size=64),
    where=st.integers(min_value=0, max_value=720),
    huge=st.integers(min_value=0, max_value=200_000),
)
def test_hostile_input_never_raises(cut: int, junk: bytes, where: int, huge: int) -> None:
    data = sample("apache_error/test-error-ubuntu.log").read_bytes() + b"\n"
    data = data[:cut] + b"\n" + data
    data = data[:where] + junk + data[where:]
    data += b"[Tue Mar 05 10:00:00 2024] [core:error] [pid 1] [client " + b"9" * huge + b"] x\n"
    handle = tempfile.NamedTemporaryFile(suffix=".log", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    try:
        events, letters = parse_file(handle.name, "apache.error")
    finally:
        Path(handle.name).unlink()
    assert events or letters
    assert all(dl.reason for dl in letters)
    assert all(e["@timestamp"].endswith("Z") for e in events)
