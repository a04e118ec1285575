"""linux.syslog against Elastic's oracle, plus the header shapes and time rules the oracle does not cover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _property_cases import FUZZ, assert_well_formed, damaged, dead_letter_between
from hypothesis import given
from oracle import compared_with_oracle, parse_bytes, parse_file, routed, sample, sniffed

from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.formats.syslog import LOG_TYPE

# Options the oracle harness used (*-config.yml: event.timezone GMT-0200; year-less samples were
# generated in 2023, which the harness allowed with a dynamic @timestamp).
ORACLES = {
    "syslog/test-darwin-syslog-sample.log": ParseOptions(syslog_year=2023, syslog_timezone="GMT-0200"),
    "syslog/test-darwin-syslog.log": ParseOptions(syslog_year=2023, syslog_timezone="-02:00"),
    "syslog/test-suse-syslog.log": ParseOptions(syslog_timezone="-0200"),
    "syslog/test-tz-offset.log": ParseOptions(syslog_timezone="-02:00"),
    "syslog/test-preserve-event-original.log": ParseOptions(),
}
ORACLE_FIELDS = ["@timestamp", "host.hostname", "process.name", "process.pid", "message"]


@pytest.mark.parametrize("name", ORACLES)
def test_syslog_matches_elastic_oracle(name: str) -> None:
    compared_with_oracle(name, "linux.syslog", ORACLE_FIELDS, options=ORACLES[name])


def test_continuation_lines_join_their_record() -> None:
    name = "syslog/test-darwin-syslog-sample.log"
    events, _ = parse_file(sample(name), "linux.syslog", ORACLES[name])
    first = events[0]
    assert first["message"].count("\n") == 18  # 18 indented lines joined to the header line
    assert first["log"]["offset"] == 0
    assert events[1]["log"]["offset"] == sample(name).read_bytes().index(b"\nDec 13") + 1
    assert first["@timestamp"] == "2023-12-13T13:35:28Z"
    # "Apr 4 03:39:57 --- last message repeated 1 time ---": no host, no program (as Elastic)
    assert events[2]["message"] == "--- last message repeated 1 time ---"
    assert "host" not in events[2] and "process" not in events[2]


def test_program_names_with_spaces_and_brackets() -> None:
    name = "syslog/test-darwin-syslog.log"
    events, _ = parse_file(sample(name), "linux.syslog", ORACLES[name])
    names = {(e["process"]["name"], e["process"].get("pid")) for e in events}
    assert ("Google Chrome", 85294) in names
    assert ("com.apple.xpc.launchd[1] (com.apple.quicklook[21498])", None) in names


def _one(line: str, options: ParseOptions | None = None) -> dict[str, Any]:
    events, letters = parse_bytes(f"{line}\n".encode(), "linux.syslog", options)
    assert not letters, letters
    assert len(events) == 1
    return events[0]


def test_rfc5424_with_structured_data() -> None:
    doc = _one(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] \ufeffAn application event',
    )
    assert doc["@timestamp"] == "2003-10-11T22:14:15.003000Z"
    assert doc["host"]["hostname"] == "mymachine.example.com"
    assert doc["process"] == {"name": "evntslog"}
    assert doc["message"] == "An application event"
    syslog = doc["log"]["syslog"]
    assert syslog["priority"] == 165
    assert syslog["facility"] == {"code": 20, "name": "local4"}
    assert syslog["severity"] == {"code": 5, "name": "notice"}
    assert syslog["version"] == "1" and syslog["msgid"] == "ID47"
    assert syslog["structured_data"]["exampleSDID@32473"]["eventID"] == "1011"
    assert syslog["structured_data"]["examplePriority@32473"] == {"class": "high"}


def test_rsyslog_high_precision_timestamp_keeps_microseconds() -> None:
    doc = _one("2024-01-01T00:00:00.123456+09:00 ip-10-0-0-5 kernel: [ 1.0] Linux version 6.1")
    assert doc["@timestamp"] == "2023-12-31T15:00:00.123456Z"
    assert doc["process"] == {"name": "kernel"}
    assert doc["message"] == "[ 1.0] Linux version 6.1"


def test_pri_prefix_and_ip_host() -> None:
    doc = _one("<13>Feb  5 17:32:18 10.0.0.99 myapp[42]: hello", ParseOptions(syslog_year=2024))
    assert doc["host"] == {"hostname": "10.0.0.99", "ip": "10.0.0.99"}
    assert doc["related"]["ip"] == ["10.0.0.99"]
    assert doc["log"]["syslog"]["facility"]["name"] == "user"
    assert doc["process"] == {"name": "myapp", "pid": 42}


@pytest.mark.parametrize(
    ("tz", "expected_ts"),
    [
        ("UTC", "2024-07-01T12:00:00Z"),
        ("Asia/Tokyo", "2024-07-01T03:00:00Z"),
        ("+09:00", "2024-07-01T03:00:00Z"),
        ("-02:00", "2024-07-01T14:00:00Z"),
        ("Europe/Paris", "2024-07-01T10:00:00Z"),  # summer time: +02:00
    ],
)
def test_configured_timezone_applies_to_zoneless_timestamps(tz: str, expected_ts: str) -> None:
    options = ParseOptions(syslog_year=2024, syslog_timezone=tz)
    assert _one("Jul  1 12:00:00 host app: x", options)["@timestamp"] == expected_ts
    # an explicit offset in the record wins over the configured zone
    assert _one("2024-07-01T12:00:00Z host app: x", options)["@timestamp"] == "2024-07-01T12:00:00Z"


def test_year_is_inferred_and_never_far_in_the_future() -> None:
    now = datetime.now(UTC)
    for when, year in (
        (now - timedelta(days=3), (now - timedelta(days=3)).year),  # recent past: its own year
        # three days ahead cannot be this year's: a December record read in January is last year's
        (now + timedelta(days=3), now.year - 1 if (now + timedelta(days=3)).year == now.year else now.year),
    ):
        line = f"{when:%b} {when.day:>2} 12:00:00 host app: x"
        assert _one(line)["@timestamp"].startswith(f"{year}-{when:%m-%d}T12:00:00")


def test_bad_timezone_is_a_clear_dead_letter() -> None:
    events, letters = parse_bytes(
        b"Jul  1 12:00:00 host app: x\n", "linux.syslog", ParseOptions(syslog_timezone="Mars/Olympus")
    )
    assert not events and "unknown timezone" in letters[0].reason


@pytest.mark.parametrize(
    "garbage", ["not syslog at all", "Feb 30 12:00:00 host app: impossible date", "<34>1 - - - - -"]
)
def test_garbage_is_dead_lettered_with_position(garbage: str) -> None:
    good = "Dec 13 11:35:28 host app[1]: fine"
    letter = dead_letter_between(good, garbage, "linux.syslog", ParseOptions(syslog_year=2024))
    assert letter.stage == "map"
    assert letter.raw == garbage


def test_runaway_continuation_is_bounded() -> None:
    data = b"Dec 13 11:35:28 host app: start\n" + b" continued line of text\n" * 20000
    events, letters = parse_bytes(data, "linux.syslog", ParseOptions(syslog_year=2024))
    assert len(events) == 1 and len(events[0]["message"]) <= 256 * 1024
    assert letters and all("no syslog timestamp" in d.reason for d in letters)


@pytest.mark.parametrize(
    "name", ["syslog/test-darwin-syslog.log", "syslog/test-suse-syslog.log", "syslog/test-tz-offset.log"]
)
def test_content_sniffing_picks_syslog(name: str) -> None:
    assert sniffed(sample(name).read_bytes()) == "linux.syslog"


@pytest.mark.parametrize(
    "other", ["alb/test-alb.log", "auditd/test-auditd-raw.log", "vpcflow/test-v5-all-fields.log", "waf/test-waf.log"]
)
def test_sniff_does_not_claim_other_formats(other: str) -> None:
    assert not LOG_TYPE.sniff(sample(other).read_bytes()[:4096])


def test_sniff_wants_host_and_program_after_an_iso_timestamp() -> None:
    assert not LOG_TYPE.sniff(b"2024-01-01 12:00:00,123 INFO worker started\n")
    assert LOG_TYPE.sniff(b"2024-01-01T12:00:00+00:00 web-1 worker[7]: started\n")


@pytest.mark.parametrize(
    "path",
    ["/var/log/messages", "/var/log/syslog", "/var/log/syslog.1", "/var/log/messages-20240101.gz", "logs/syslog.2.gz"],
)
def test_default_paths_route_to_syslog(path: str) -> None:
    assert routed(path) == "linux.syslog"


@pytest.mark.parametrize(
    "path", ["fluentd/syslog/app/2024/01/01/x.gz", "/var/log/messages.json", "/var/log/syslog-ng.conf"]
)
def test_other_paths_do_not(path: str) -> None:
    assert Router().by_path(path) is not LOG_TYPE


_SAMPLE = b"".join(sample(n).read_bytes() for n in ORACLES)


@FUZZ
@given(data=damaged(_SAMPLE, [b"", b"x" * 70000, b"\t" + b"y" * 300000, "é".encode() * 2000, b"<999>Dec 99 99:99:99 "]))
def test_never_raises_on_mangled_input(data: bytes) -> None:
    events, letters = parse_bytes(data, "linux.syslog", ParseOptions(syslog_year=2023))
    assert_well_formed(events, letters, "linux.syslog")
