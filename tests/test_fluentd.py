"""fluentd records on S3 mapped as the log they carry.

No real fluent-plugin-s3 object is publicly available, so every fixture below is built by hand
from fluentd's documented output shapes: parser_syslog (host/ident/pid/message, + pri with
with_priority), parser_nginx (remote/host/user/method/path/code/size/referer/agent as strings),
parser_apache2 (host/user/.../code and size as integers, null for "-"), ``<parse> @type none``
({"message": line}), the json formatter with include_time_key/include_tag_key, out_file's default
``time<TAB>tag<TAB>json`` lines and single_value's bare lines.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from _property_cases import FUZZ, assert_well_formed, parse_bytes
from hypothesis import given
from hypothesis import strategies as st
from oracle import parse_file, sample

from siem import formats
from siem.formats.base import ParseOptions
from siem.formats.fluentd import LOG_TYPE
from siem.formats.routing import Router

OPTIONS = ParseOptions(syslog_year=2024)
SSHD_LINE = "Mar  1 10:00:00 web01 sshd[1234]: Accepted password for alice from 203.0.113.5 port 51234 ssh2"
CRON_LINE = "Mar  1 10:00:01 web01 CRON[99]: (root) CMD (run-parts /etc/cron.hourly)"
NGINX_LINE = '203.0.113.7 - - [01/Mar/2024:10:00:02 +0000] "GET /wp-login.php?x=1 HTTP/1.1" 404 162 "-" "Mozilla/5.0"'
# fluentd's nginx parser output for NGINX_LINE (regexp parser: every value a string), time injected.
NGINX_PARSED = {
    "remote": "203.0.113.7",
    "host": "-",
    "user": "-",
    "method": "GET",
    "path": "/wp-login.php?x=1",
    "code": "404",
    "size": "162",
    "referer": "-",
    "agent": "Mozilla/5.0",
    "time": "2024-03-01T10:00:02+0000",
    "tag": "nginx.access",
}
# fluentd's apache2 parser output: client in `host`, integers, null for "-".
APACHE_PARSED = {
    "host": "198.51.100.9",
    "user": "bob",
    "method": "POST",
    "path": "/login",
    "code": 401,
    "size": None,
    "referer": None,
    "agent": 'Mozilla "quoted"',
    "time": 1709287202.5,
}
# parser_syslog output for SSHD_LINE with include_time_key (fluentd's default time format).
SYSLOG_PARSED = {
    "host": "web01",
    "ident": "sshd",
    "pid": "1234",
    "message": "Accepted password for alice from 203.0.113.5 port 51234 ssh2",
    "time": "2024-03-01T19:00:00+0900",
    "tag": "syslog.auth",
}


def _lines(*records: dict | str) -> bytes:
    return b"".join((r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records)


def _write(directory: Path, relative: str, data: bytes) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_format_none_records_are_mapped_by_the_log_type_of_their_line(tmp_path: Path) -> None:
    """td-agent `<parse> @type none` + `<format> json`: the raw line in `message`."""
    data = _lines(
        {"message": SSHD_LINE, "tag": "syslog.messages"},
        {"message": CRON_LINE},
        {"message": NGINX_LINE, "tag": "nginx.access"},
    )
    path = _write(tmp_path, "syslog/web01/2024/03/01/20240301_0.gz", gzip.compress(data))
    events, letters = parse_file(path, options=OPTIONS)
    assert not letters
    sshd, cron, nginx = events
    assert sshd["event"]["dataset"] == "linux.auth"
    assert sshd["user"]["name"] == "alice"
    assert sshd["source"]["ip"] == "203.0.113.5" and sshd["source"]["port"] == 51234
    assert sshd["event"]["outcome"] == "success"
    assert sshd["@timestamp"] == "2024-03-01T10:00:00Z"
    assert sshd["fluentd"] == {"tag": "syslog.messages"}
    assert sshd["data_stream"] == {"dataset": "linux.auth"}
    assert cron["event"]["dataset"] == "linux.syslog"
    assert cron["process"] == {"name": "CRON", "pid": 99}
    assert cron["host"]["hostname"] == "web01"
    assert nginx["event"]["dataset"] == "nginx.access"
    assert nginx["source"]["ip"] == "203.0.113.7"
    assert nginx["http"]["response"]["status_code"] == 404


def _parsed_and_direct(tmp_path: Path, record: dict, dataset: str, line: str) -> tuple[dict, dict]:
    """The one event fluentd makes of a parsed `record` (mapped as `dataset`), and what `dataset`
    makes of the `line` fluentd parsed it from."""
    events, letters = parse_file(_write(tmp_path, "a.json", _lines(record)), "fluentd", OPTIONS)
    assert not letters
    (doc,) = events
    assert doc["event"]["dataset"] == dataset
    return doc, formats.get(dataset).to_ecs(line, OPTIONS)


def test_parsed_syslog_record_maps_like_the_line_itself(tmp_path: Path) -> None:
    doc, direct = _parsed_and_direct(tmp_path, SYSLOG_PARSED, "linux.auth", SSHD_LINE)
    for field in ("@timestamp", "message", "host", "process", "user", "source"):
        assert doc[field] == direct[field], field
    assert {k: v for k, v in doc["event"].items() if k not in ("dataset", "ingested")} == direct["event"]


def test_parsed_syslog_with_priority_and_without_ident(tmp_path: Path) -> None:
    with_pri = {"pri": 38, "host": "fw", "ident": "kernel", "message": "eth0: link up", "time": 1709287200}
    no_ident = {"host": "10.1.2.3", "message": "free text: no program", "time": "2024-03-01T10:00:00Z"}
    events, letters = parse_file(_write(tmp_path, "a.json", _lines(with_pri, no_ident)), "fluentd", OPTIONS)
    assert not letters
    assert events[0]["log"]["syslog"]["priority"] == 38
    assert events[0]["log"]["syslog"]["facility"] == {"code": 4, "name": "auth"}
    assert events[0]["process"]["name"] == "kernel"
    assert events[1]["event"]["dataset"] == "linux.syslog"
    assert events[1]["message"] == "free text: no program"
    assert events[1]["host"] == {"hostname": "10.1.2.3", "ip": "10.1.2.3"}
    assert "process" not in events[1]


def test_parsed_nginx_record_maps_like_the_line_itself(tmp_path: Path) -> None:
    doc, direct = _parsed_and_direct(tmp_path, NGINX_PARSED, "nginx.access", NGINX_LINE)
    for field in ("@timestamp", "source", "client", "url", "user_agent"):
        assert doc.get(field) == direct.get(field), field
    assert doc["http"]["request"] == direct["http"]["request"]
    assert doc["http"]["response"] == direct["http"]["response"]
    assert "version" not in doc["http"]  # fluentd's nginx parser drops the protocol


def test_parsed_nginx_record_behind_a_proxy(tmp_path: Path) -> None:
    record = {**NGINX_PARSED, "remote": "10.0.0.5", "http_x_forwarded_for": "198.51.100.7, 10.0.0.9"}
    events, _ = parse_file(_write(tmp_path, "a.json", _lines(record)), "fluentd", OPTIONS)
    assert events[0]["source"]["ip"] == "198.51.100.7"  # the default trusted proxies are private ranges
    assert events[0]["client"]["ip"] == "10.0.0.5"
    assert events[0]["related"]["ip"] == ["198.51.100.7", "10.0.0.9", "10.0.0.5"]


def test_parsed_apache2_record(tmp_path: Path) -> None:
    events, letters = parse_file(_write(tmp_path, "a.json", _lines(APACHE_PARSED)), "fluentd", OPTIONS)
    assert not letters
    (doc,) = events
    assert doc["event"]["dataset"] == "apache.access"
    assert doc["@timestamp"] == "2024-03-01T10:00:02.500000Z"
    assert doc["source"]["ip"] == "198.51.100.9"
    assert doc["user"]["name"] == "bob"
    assert doc["http"]["request"]["method"] == "POST"
    assert doc["http"]["response"] == {"status_code": 401}
    assert doc["event"]["outcome"] == "failure"
    assert doc["user_agent"]["original"] == 'Mozilla "quoted"'


def test_out_file_and_single_value_lines(tmp_path: Path) -> None:
    out_file = '2024-03-01T19:00:00+09:00\tsyslog.auth\t{"host":"web01","ident":"sshd","pid":"7","message":"x"}'
    data = _lines(out_file, SSHD_LINE, NGINX_LINE)
    events, letters = parse_file(_write(tmp_path, "nginx/web01/2024/03/01/log_0.gz", data), options=OPTIONS)
    assert not letters
    assert [e["event"]["dataset"] for e in events] == ["linux.auth", "linux.auth", "nginx.access"]
    assert events[0]["@timestamp"] == "2024-03-01T10:00:00Z"
    assert events[0]["fluentd"] == {"tag": "syslog.auth"}
    assert events[1]["user"]["name"] == "alice"


def test_unknown_shape_stays_fluentd(tmp_path: Path) -> None:
    record = {"message": "app started", "level": "info", "ctx": {"a.b": 1}, "hostname": "h1", "time": 1709287200}
    events, _ = parse_file(_write(tmp_path, "a.json", _lines(record)), "fluentd", OPTIONS)
    (doc,) = events
    assert doc["event"]["dataset"] == "fluentd"
    assert doc["message"] == "app started"
    assert doc["fluentd"] == {"fields": {"level": "info", "ctx": '{"a.b":1}', "hostname": "h1"}}
    assert doc["host"] == {"name": "h1"}
    assert doc["@timestamp"] == "2024-03-01T10:00:00Z"


def test_records_without_time_bad_json_and_wrong_types_are_dead_letters(tmp_path: Path) -> None:
    no_time = {k: v for k, v in NGINX_PARSED.items() if k != "time"}
    lines = [
        orjson.dumps(no_time).decode(),
        '{"message": "trunc',
        "[1, 2]",
        orjson.dumps({**SYSLOG_PARSED, "pid": ["x"], "host": ["x"]}).decode(),
        orjson.dumps({**NGINX_PARSED, "code": "abc"}).decode(),
        orjson.dumps({"message": "no time and no parser"}).decode(),
        orjson.dumps(NGINX_PARSED).decode(),
    ]
    events, letters = parse_file(_write(tmp_path, "a.json", _lines(*lines)), "fluentd", OPTIONS)
    offsets = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    assert len(events) == 2
    assert events[0]["process"] == {"name": "sshd"} and "host" not in events[0]
    assert events[1]["http"]["response"]["status_code"] == 404
    assert [(d.offset, d.stage) for d in letters] == [
        (offsets[0], "map"),
        (offsets[1], "frame"),
        (offsets[2], "map"),  # not JSON: a single_value line, which no parser claims and has no time
        (offsets[4], "map"),
        (offsets[5], "map"),
    ]
    assert "include_time_key" in letters[0].reason
    assert "invalid JSON" in letters[1].reason
    assert "not an nginx access log line" in letters[3].reason
    assert "fluentd record has no usable time" in letters[4].reason


@pytest.mark.parametrize(
    "record",
    [
        NGINX_PARSED,
        APACHE_PARSED,
        SYSLOG_PARSED,
        '2024-03-01T19:00:00+09:00\tapp.log\t{"message":"hello"}',
    ],
)
def test_sniffing_picks_fluentd_for_its_own_shapes(record: dict | str) -> None:
    assert Router().choose("/no/known/path", _lines(record)).dataset == "fluentd"


def test_sniffing_leaves_other_formats_alone() -> None:
    assert not LOG_TYPE.sniff(_lines({"message": SSHD_LINE}))
    assert not LOG_TYPE.sniff(NGINX_LINE.encode() + b"\n")
    assert not LOG_TYPE.sniff(sample("k8s_audit/create_secret.json").read_bytes())
    assert not LOG_TYPE.sniff(sample("cloudwatch_logs/valid_vpc_flow_cw.json").read_bytes())


@pytest.mark.parametrize(
    "path",
    [
        "s3://logs/syslog/web01/2024/03/01/20240301_0.gz",
        "s3://logs/td-agent/nginx/access.web01/2024/03/01/20240301-10_1.gz",
        "/data/apache2/web/2024/03/01/x.json",
    ],
)
def test_key_layouts_pick_fluentd(path: str) -> None:
    assert Router().choose(path, b"").dataset == "fluentd"


_SEED = _lines(NGINX_PARSED, SYSLOG_PARSED, {"message": SSHD_LINE}, APACHE_PARSED)
_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=30), st.just([])
)


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=len(_SEED)),
    insert_at=st.integers(min_value=0, max_value=len(_SEED)),
    noise=st.binary(max_size=40),
    base=st.sampled_from([NGINX_PARSED, APACHE_PARSED, SYSLOG_PARSED, {"message": CRON_LINE}]),
    key=st.sampled_from(["time", "message", "remote", "host", "code", "size", "path", "pri", "pid", "tag", "ident"]),
    junk=_JUNK,
    huge=st.integers(min_value=0, max_value=200_000),
)
def test_hostile_input_never_raises(cut, insert_at, noise, base, key, junk, huge) -> None:
    record = {**base, key: junk, "agent": "a" * huge}
    data = _SEED[:cut] + noise + _SEED[insert_at:] + b"\n" + _lines(record)
    events, letters = parse_bytes(data, "fluentd", OPTIONS)
    assert events or letters
    assert_well_formed(events, letters)  # the dataset is the carried log's
