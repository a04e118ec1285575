"""The ALB fast path (siem/fast/) against the reference mapper (siem/formats/alb.py): same documents
(byte-identical after key ordering), same IDs, same dead letters, on every sample file, the damaged
lines of the property tests, generated lines whose every field varies, and hand-written edge lines.

Every comparison runs the real pipeline (`parse_object`) twice over the same file, once with
SIEM_FAST_PATH=off, with the same ingest time. A difference is a bug in the fast path.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import _fast_cases as cases
import orjson
import pytest
from _property_cases import damaged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import SAMPLES

from siem import formats
from siem.cli_load import NdjsonSink
from siem.fast import chunks as fast_chunks
from siem.fast.chunks import STATS
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import Event, parse_object
from siem.sinks import EventQuery
from siem.sinks.embedded import EmbeddedStore
from siem.sinks.opensearch import OpenSearchStore
from siem.sources.local import local_objects

REPO = Path(__file__).resolve().parents[1]
INGESTED = cases.INGESTED
ALB = formats.get("aws.alb")
DIFF = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One full HTTPS line as AWS writes it today (30 fields): the base the generated lines vary.
HTTPS = (
    "https 2024-03-13T20:03:04.861168Z app/my-lb/50dc6c495c0c9188 138.48.187.150:4825 10.0.109.10:80 "
    '0.042 0.083 0.012 200 200 1828 82657 "GET https://www.example.com:443/static/app.js?v=1 HTTP/1.1" '
    '"Mozilla/5.0 (X11; Linux x86_64)" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/tg-1/73e2d6bc24d8a067 "
    '"Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" '
    '"arn:aws:acm:us-east-2:123456789012:certificate/12345678" 1 2024-03-13T20:03:04.861000Z '
    '"authenticate,forward" "-" "-" "10.0.109.10:80" "200" "-" "-" TID_1234abcd5678ef90'
)


def assert_same(path: Path, options: ParseOptions | None = None) -> tuple[int, int]:
    return cases.assert_same(path, ALB, options)


def assert_same_bytes(data: bytes, options: ParseOptions | None = None, name: str = "input.log") -> tuple[int, int]:
    return cases.assert_same_bytes(data, ALB, options, name)


SAMPLE_FILES = sorted(
    p
    for folder in (REPO / "tests/data/samples/logs/alb", SAMPLES / "alb")
    for p in folder.iterdir()
    if not p.name.endswith(("-expected.json", ".yml"))
)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_alb_sample_maps_identically(path: Path) -> None:
    assert_same(path)


def test_samples_take_the_fast_path_for_plain_lines() -> None:
    fast, reference = assert_same(REPO / "tests/data/samples/logs/alb/alb_al_valid_logs.log")
    assert (fast, reference) == (1, 1)  # the IPv4 HTTPS line by the fast path, the IPv6 one by the reference


def test_generated_plain_lines_are_all_mapped_fast_and_identically() -> None:
    lines = [HTTPS.replace("138.48.187.150:4825", f"198.51.{i % 256}.{i % 200 + 1}:{1024 + i}") for i in range(3000)]
    fast, reference = assert_same_bytes("\n".join(lines).encode() + b"\n")
    assert (fast, reference) == (3000, 0)


# --- every field varied ------------------------------------------------------------------------

_FIELD_VALUES: dict[int, list[str]] = {
    0: ["http", "https", "h2", "grpcs", "ws", "wss", "tcp", "HTTP"],
    1: ["2024-03-13T20:03:04.861168Z", "2024-03-13T20:03:04Z", "2024-03-13T20:03:04.5", "2024-3-13T20:03:04Z", "x"],
    3: [
        "1.2.3.4:80",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "01.2.3.4:80",
        "256.1.1.1:80",
        "1.2.3.4:080",
        "-",
        "1.2.3.4",
        "[2001:db8::1]:443",
        "[::ffff:1.2.3.4]:80",
        "1.2.3.4:99999999999",
        "host:80",
        "1.2.3.4:-1",
    ],
    4: ["10.0.0.1:80", "-", "1.2.3.4:80", "[fe80::1]:80", "10.0.0.1"],
    5: ["0.000", "-1", "-", "1.500", "0.1", "12.0", "00.5", "1e-3", "inf", "123456.123456", "0.0000001", "1"],
    6: ["0.001", "-1", "2.250"],
    8: ["200", "404", "-", "-1", "000", "0", "503", "99999999999", "2e2", "+200", "-5"],
    9: ["200", "-", "-1", "0500"],
    10: ["0", "34", "-", "-1", "1234567890123"],
    12: [
        "GET https://www.example.com:443/static/app.js?v=1 HTTP/1.1",
        "GET http://h.example:80/ HTTP/2.0",
        "POST https://a.b:8443/api/v1/items?id=4&x=%2F%22%5C%C3%A9%zz HTTP/1.1",
        "GET https://a.b:443/p%20a%2Fth/file.tar.gz HTTP/1.1",
        "GET https://a.b:443/dir.d/ HTTP/1.1",
        "GET https://a.b:443/x? HTTP/1.1",
        "GET https://a.b:443/x#frag HTTP/1.1",
        "GET HTTPS://A.B:443/ HTTP/1.1",
        "- http://lb.example:80-/ -",
        "GET http://a.b:80/with space HTTP/1.1",
        "GET /relative HTTP/1.1",
        "CONNECT a.b:443 HTTP/1.1",
        "GET https://[2001:db8::1]:443/ HTTP/1.1",
        "GET https://a.b/ HTTP/1.1",
        "GET https://a.b:0443/.hidden HTTP/1.1",
        "",
        "-",
        "GET https://a.b:443/%E9t%E9 HTTP/1.1",
        "GET https://a.b:443/Img/LOGO.PNG?Q=%41 HTTP/1.1",
    ],
    13: ["curl/7.46.0", "-", "", "Mozilla/5.0 (a; b)"],
    14: ["ECDHE-RSA-AES128-GCM-SHA256", "-"],
    15: ["TLSv1.2", "TLSv1.3", "-", "tlsv12"],
    16: ["arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/t/1", "-"],
    17: ['"Root=1-5-6"', '"-"', '""', '"Self=1-2;Root=3"'],
    18: ['"www.example.com"', '"-"', '""'],
    20: ["1", "0", "-", "default"],
    21: ["2024-03-13T20:03:04.861000Z", "-"],
    22: ['"forward"', '"authenticate,forward"', '"-"', '"a,,b"', '""'],
    23: ['"-"', '"https://x.example:443/y"'],
    24: ['"-"', '"TargetTimeout"'],
    29: ["TID_1234", "", " ", "TID_1 extra fields", '"quoted"', " TID_x", "-"],
}
_QUOTED = frozenset({12, 13, 17, 18, 19, 22, 23, 24, 25, 26, 27, 28})
# HTTPS's 30 fields, quoted ones with their quotes
_BASE = [
    *HTTPS.split(' "', 1)[0].split(" "),
    '"GET https://www.example.com:443/static/app.js?v=1 HTTP/1.1"',
    '"Mozilla/5.0 (X11; Linux x86_64)"',
    *HTTPS.split('x86_64)" ', 1)[1].split(" "),
]
assert len(_BASE) == 30 and " ".join(_BASE) == HTTPS


def _line(choices: dict[int, str]) -> str:
    """HTTPS with the chosen fields replaced (numbered as _ALB_LINE numbers its groups)."""
    fields = list(_BASE)
    for index, value in choices.items():
        fields[index] = f'"{value}"' if index in (12, 13) else value
    return " ".join(fields).rstrip(" ") if fields[29] == "" else " ".join(fields)


_LINES = st.lists(
    st.fixed_dictionaries({}, optional={i: st.sampled_from(v) for i, v in _FIELD_VALUES.items()}).map(_line),
    min_size=1,
    max_size=6,
)


@DIFF
@given(lines=_LINES)
def test_lines_with_every_field_varied_map_identically(lines: list[str]) -> None:
    assert_same_bytes("\n".join(lines).encode() + b"\n")


# --- the property tests' damage ----------------------------------------------------------------

_SAMPLE = (REPO / "tests/data/samples/logs/alb/test-alb.log").read_bytes() + HTTPS.encode() + b"\n"


@DIFF
@given(data=damaged(_SAMPLE, [b"", b"A" * 5000, "é".encode() * 300, b'" "' * 50, b"\xff\xfe\r"]))
def test_damaged_samples_map_identically(data: bytes) -> None:
    assert_same_bytes(data)


# --- hand-written edge cases -------------------------------------------------------------------

EDGES = [
    HTTPS,
    HTTPS.replace("/static/app.js?v=1", "/a b c"),  # a space in the URL (AWS classifies it SpaceInUri)
    HTTPS.replace("/static/app.js?v=1", "/Img/LOGO.PNG?Q=%41%2f"),  # escapes, an upper-case extension
    HTTPS.replace("138.48.187.150:4825", "[2001:db8::7]:4825"),  # IPv6 client
    HTTPS.replace("10.0.109.10:80", "-").replace(" 200 200 ", " 502 - "),  # no target
    HTTPS.replace("138.48.187.150:4825 10.0.109.10:80", "10.0.109.10:80 10.0.109.10:80"),  # client = target
    HTTPS.replace("Mozilla/5.0 (X11; Linux x86_64)", 'say \\"hi\\"'),  # escaped quotes
    HTTPS.replace("Mozilla/5.0 (X11; Linux x86_64)", "caf\u00e9"),  # non-ASCII agent
    HTTPS.replace("https ", "https  ", 1),  # a double space
    HTTPS + "\r",  # CRLF
    "\t" + HTTPS,
    HTTPS.replace(" TID_1234abcd5678ef90", ""),  # 29 fields, no conn_trace_id
    HTTPS[:200],  # cut
    "http",
    "http not-a-time x",
    "tls 2.0 short",
    "   ",
    "",
    "garbage line",
]


def test_hand_written_edge_lines_map_identically() -> None:
    data = "\n".join(EDGES).encode() + b"\n" + b"https \xff\xfe not utf-8\n" + HTTPS.encode()  # no final newline
    fast, reference = assert_same_bytes(data)
    # fast: the base line, escapes, no target, client = target, 29 fields, the last line; 2 blank lines: no record
    assert (fast, reference) == (6, 13)


def test_over_long_lines_are_the_same_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit below the line size, and chunks smaller than a line: the skip path of the framing."""
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 700)
    long = HTTPS.replace("Mozilla", "M" * 3000)
    data = "\n".join([HTTPS, long, HTTPS, long, long, HTTPS]).encode() + b"\n" + long.encode()
    options = ParseOptions(max_record_bytes=len(HTTPS) + 10)
    fast, _ = assert_same_bytes(data, options)
    assert fast == 3
    fast, _ = assert_same_bytes(data, ParseOptions(max_record_bytes=len(HTTPS)))  # exactly at the limit
    assert fast == 3


def test_chunk_boundaries_keep_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 1000)
    lines = [HTTPS.replace("1828", str(i)) for i in range(40)]
    data = "\n\n".join(lines).encode()  # blank lines between, no final newline
    fast, reference = assert_same_bytes(data)
    assert (fast, reference) == (40, 0)


def test_aws_key_context_and_gzip_map_identically() -> None:
    body = gzip.compress(("\n".join([HTTPS] * 50) + "\n").encode())
    key = "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/03/13/x.log.gz"
    fast, _ = assert_same_bytes(body, name=key)
    assert fast == 50


def test_corrupt_gzip_tail_gives_the_same_events_and_object_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line read before the stream fails is an event on both paths, then the same object dead letter."""
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 4096)
    body = gzip.compress(("\n".join([HTTPS] * 3000) + "\n").encode())
    broken = body[: len(body) // 2] + b"\x00" * 64 + body[len(body) // 2 + 64 :]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.log.gz"
        path.write_bytes(broken)
        reference = cases.outcome(path, False, ALB)
        fast = cases.outcome(path, True, ALB)
    assert fast == reference
    assert reference[0] and [letter["stage"] for letter in reference[1]] == ["object"]


def test_enrichment_takes_the_reference_path() -> None:
    """options.enrich needs dicts: the fast path stands aside and every line goes to to_ecs."""
    before = STATS["aws.alb.fast"]
    seen: list[str] = []
    options = ParseOptions(enrich=lambda doc: seen.append(doc["source"]["ip"]))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.log"
        path.write_text(HTTPS + "\n")
        with cases.fast_path(True):
            items = list(parse_object(next(local_objects(path)), Router(), options, ALB, ingested=INGESTED))
    assert seen == ["138.48.187.150"] and STATS["aws.alb.fast"] == before
    assert isinstance(items[0], Event) and items[0].raw is None


# --- sinks write the fast path's bytes -----------------------------------------------------------


def _events(path: Path, on: bool) -> list[Event]:
    with cases.fast_path(on):
        items = parse_object(next(local_objects(path)), Router(), ParseOptions(), ALB, ingested=INGESTED)
        return [item for item in items if isinstance(item, Event)]


def test_sinks_store_the_same_documents_from_fast_and_reference_events(tmp_path: Path) -> None:
    """siem parse's NDJSON, the OpenSearch bulk body and the embedded store get the same documents,
    and none of them decodes a fast event's bytes to find the index name or the columns."""
    path = tmp_path / "x.log"
    ipv6 = HTTPS.replace("138.48.187.150:4825", "[2001:db8::7]:4825")  # the reference path
    path.write_text("\n".join([HTTPS, ipv6, HTTPS.replace("10.0.109.10:80", "-")]) + "\n")
    fast = _events(path, on=True)
    assert [e._doc is None for e in fast] == [True, False, True]  # bytes alone from the fast path
    reference = [Event(e.id, e.dataset, e.doc) for e in _events(path, on=False)]  # dicts alone

    lines = {}
    for name, events in (("fast", fast), ("reference", reference)):
        out = io.BytesIO()
        text = io.TextIOWrapper(out)
        NdjsonSink(text, None).write(events)  # writes to text.buffer
        lines[name] = [orjson.loads(line) for line in out.getvalue().splitlines()]
        text.detach()
    assert lines["fast"] == lines["reference"]
    assert next(iter(lines["fast"][0].items())) == ("_id", fast[0].id)  # "_id" first, as before

    bulk = OpenSearchStore(client=None, prefix="t")  # encode needs no client
    assert [orjson.loads(part) for e in fast for part in bulk.encode(e).splitlines()] == [
        orjson.loads(part) for e in reference for part in bulk.encode(e).splitlines()
    ]

    stored = {}
    for name, events in (("fast", fast), ("reference", reference)):
        store = EmbeddedStore(tmp_path / name)
        store.write(events)
        stored[name] = store.search(EventQuery(size=10))
        assert store.count(EventQuery(ip="138.48.187.150")) == 2  # related_ip indexed from the bytes
        store.close()
    assert stored["fast"] == stored["reference"] and len(stored["fast"]) == 3
    # written by all three from their bytes and columns: no sink decoded a fast event's document
    assert [e._doc is None for e in fast] == [True, False, True]
