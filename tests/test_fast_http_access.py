"""The nginx / Apache access-log fast path (siem/fast/http_access.py) against the reference mappers
(siem/formats/nginx_access.py, apache_access.py): same documents (byte-identical after key ordering),
IDs and dead letters on every sample file of both types, generated lines whose every field takes
plain and odd values (under several trusted_proxies settings), the property tests' damaged samples,
edge lines, chunk boundaries, over-long lines and an AWS key; and plain lines really take the fast path.

Every comparison runs the real pipeline (`parse_object`) over the same file with SIEM_FAST_PATH=off
and on; the expected fast/reference counts are counted by hand from the inputs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import _fast_cases as cases
import pytest
from _property_cases import damaged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import SAMPLES

from siem import formats
from siem.fast import chunks as fast_chunks
from siem.formats.base import LogType, ParseOptions

REPO = Path(__file__).resolve().parents[1]
NGINX = formats.get("nginx.access")
APACHE = formats.get("apache.access")
BOTH = pytest.mark.parametrize("log_type", [NGINX, APACHE], ids=["nginx", "apache"])
DIFF = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PLAIN = (
    '67.43.156.13 - - [25/Oct/2016:14:49:34 +0200] "GET /favicon.ico HTTP/1.1" 404 571 "http://localhost:8080/" '
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0 Safari/537.36"'
)


def assert_same(
    log_type: LogType, data: bytes, options: ParseOptions | None = None, name: str = "access.log"
) -> tuple[int, int]:
    return cases.assert_same_bytes(data, log_type, options, name)


SAMPLE_FILES = sorted(
    (p, log_type)
    for log_type, folder in ((NGINX, "nginx_access"), (APACHE, "apache_access"))
    for root in (REPO / "tests/data/samples/logs", SAMPLES)
    for p in (root / folder).iterdir()
    if not p.name.endswith(("-expected.json", ".yml"))
)


@pytest.mark.parametrize(
    ("path", "log_type"),
    SAMPLE_FILES,
    ids=[f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p, _ in SAMPLE_FILES],
)
def test_every_access_sample_maps_identically(path: Path, log_type: LogType) -> None:
    cases.assert_same(path, log_type)


@pytest.mark.parametrize(
    ("log_type", "name", "counts"),
    [
        (NGINX, "nginx_access/test-access.log", (12, 2)),  # the two vhost-prefixed lines: reference
        (NGINX, "nginx_access/test-nginx.log", (2, 8)),  # address lists, IPv6, "", unix:, localhost
        (APACHE, "apache_access/test-access-ubuntu.log", (9, 0)),
        (APACHE, "apache_access/test-access-darwin.log", (3, 3)),  # common format; ::1 goes to the reference
        (APACHE, "apache_access/test-access-basic.log", (2, 8)),  # host names, IPv6, "-" requests, X-Forwarded-For
    ],
)
def test_sample_plain_lines_take_the_fast_path(log_type: LogType, name: str, counts: tuple[int, int]) -> None:
    assert cases.assert_same(REPO / "tests/data/samples/logs" / name, log_type) == counts


@BOTH
def test_generated_plain_lines_are_all_mapped_fast_and_identically(log_type: LogType) -> None:
    paths = ["/", "/index.html", "/a/b.tar.gz?x=1&y=%2F", "/%E2%82%AC/caf%C3%A9.png", "/api?"]
    lines = [
        PLAIN.replace("67.43.156.13", f"198.51.{i % 256}.{i % 200 + 1}")
        .replace("/favicon.ico", paths[i % len(paths)])
        .replace(" 404 571 ", f" {200 + i % 400} {i * 7} ")
        .replace("- - [", f"- user{i} [" if i % 3 else "ident - [")
        .replace(":49:34", f":{i % 60:02d}:{i % 59:02d}")
        for i in range(2000)
    ]
    assert assert_same(log_type, "\n".join(lines).encode() + b"\n") == (2000, 0)


# --- every field varied ------------------------------------------------------------------------

_BASE = {
    "client": "67.43.156.13",
    "ident": "-",
    "user": "-",
    "time": "25/Oct/2016:14:49:34 +0200",
    "request": "GET /favicon.ico HTTP/1.1",
    "status": "404",
    "bytes": "571",
    "tail": '"http://localhost:8080/" "Mozilla/5.0 (X11; Linux x86_64)"',
}
_VALUES: dict[str, list[str]] = {
    "client": [
        "10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "256.1.1.1",
        "::1",
        "2001:db8::1",
        "[2001:db8::1]:80",
        "1.2.3.4:8080",
        "localhost",
        "unix:",
        "-",
        "example.com 1.2.3.4",
        "example.com:80 10.0.0.1",
        "10.0.0.2, 10.0.0.1, 1.2.3.4",
        "1.2.3.4, 10.0.0.1",
        '"10.5.1.1, 199.96.1.1" 10.2.1.185',
        "1.2.3.4,",
        "caf\u00e9",
    ],
    "ident": ["ident", 'a"b', "x[y", "\u00e9"],
    "user": ["bob", "user@example.com", "caf\u00e9", 'a\\"b', "-x", "[u]"],
    "time": [
        "07/Dec/2016:10:34:43 -0130",
        "25/oct/2016:14:49:33 +0000",
        "25/OCT/2016:14:49:33 +0000",
        "31/Dec/9999:23:59:59 -1200",
        "01/Jan/0001:00:00:00 +0100",
        "30/Feb/2020:00:00:00 +0000",
        "25/Xyz/2016:14:49:33 +0000",
        "25/Oct/2016:24:00:00 +0000",
        "25/Oct/2016:14:49:33 +9999",
        "5/Oct/2016:14:49:33 +0000",
        "00/Oct/2016:14:49:33 +0000",
        "25/Oct/2016:14:60:33 +0000",
        "25/Oct/2016:14:49:60 +0000",
        "25/Oct/2016:14:99:99 +0000",
        "01/Jan/2017:00:30:00 +0100",
        "01/Mar/2016:00:59:59 +0500",
        "01/Jan/0001:00:59:59 +0100",
        "31/Dec/9999:22:59:59 -0100",
        "31/Dec/9999:23:00:00 -0100",
        "25/Oct/2016:14:49:33 +0545",
    ],
    "request": [
        "GET / HTTP/1.1",
        "POST /api/v1/items?id=4&x=%2F%22%5C%C3%A9%zz HTTP/2.0",
        "GET /p%20a%2Fth/file.tar.gz HTTP/1.0",
        "GET /dir.d/ HTTP/1.1",
        "GET /a.b.c. HTTP/1.1",
        "GET /.hidden HTTP/1.1",
        "GET /x? HTTP/1.1",
        "GET /?a=%ZZ&b=%C3 HTTP/1.1",
        "GET /%E9t%E9 HTTP/1.1",
        "GET /Img/LOGO.PNG?Q=%41 HTTP/1.1",
        "GET /img.%50NG HTTP/1.1",
        "GET /a.b%2Fc HTTP/1.1",
        "GET /x#frag HTTP/1.1",
        "GET /a b HTTP/1.1",
        "GET /a?b?c HTTP/1.1",
        "get /lower HTTP/1.1",
        "M-SEARCH * HTTP/1.1",
        "CONNECT example.com:443 HTTP/1.1",
        "connect /x HTTP/1.1",
        "GET http://example.com:8080/a?b HTTP/1.1",
        "GET / HTTP/2",
        "GET / HTTP/1.1.1",
        "GET /",
        "GET  / HTTP/1.1",
        "-",
        "",
        "hello",
        "\\x16\\x03\\x01",
        'GET /say\\"hi\\" HTTP/1.1',
        "GET /caf\u00e9 HTTP/1.1",
    ],
    "status": ["200", "304", "500", "-", "000", "099", "999", "1000"],
    "bytes": [
        "0",
        "-",
        "007",
        "123456789012345678",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999999",
    ],
    "tail": [
        "",
        '"-"',
        '"ref"',
        '"-" "-"',
        '"" ""',
        '"-" "agent" "-"',
        '"-" "agent" "10.0.0.1, 10.0.0.2"',
        '"-" "agent" "unknown"',
        '"-" "agent" X-Forwarded-For="10.0.0.2,10.0.0.1"',
        '"-" "agent" X-Forwarded-For="-"',
        '"-" "say \\"hi\\""',
        '"-" "caf\u00e9"',
        '"-" "agent" extra',
        '"-" "agent" "-" "-"',
        '"-" "agent"  ',
        '0.123 "-" "agent"',
        "12",
        '"unterminated',
    ],
}


def _line(choices: dict[str, str]) -> str:
    f = {**_BASE, **choices}
    head = f'{f["client"]} {f["ident"]} {f["user"]} [{f["time"]}] "{f["request"]}" {f["status"]} {f["bytes"]}'
    return f"{head} {f['tail']}" if f["tail"] else head


_PAIRS = [(field, value) for field, values in _VALUES.items() for value in values]
# A line varies up to three fields of the plain base line: an odd value mostly sits among plain ones,
# where the fast path must notice it (a line odd everywhere would go to the reference anyway).
_LINES = st.lists(
    st.lists(st.sampled_from(_PAIRS), max_size=3).map(lambda pairs: _line(dict(pairs))), min_size=1, max_size=6
)
_TRUST = st.sampled_from([(), ("10.0.0.0/8",), ("0.0.0.0/0", "::/0"), ("not-a-cidr",)])


@BOTH
def test_each_value_alone_in_a_plain_line_maps_identically(log_type: LogType) -> None:
    """Every value once, in the plain base line; the fast ones, counted by hand per field: clients 3
    (the canonical IPv4 ones), idents 2, users 4, times 8 (what access_timestamp reads: any case of
    month, any offset), requests 15, statuses 5, byte counts 3 (up to 18 digits), tails 6."""
    lines = [_line({field: value}) for field, value in _PAIRS]
    assert assert_same(log_type, "\n".join(lines).encode() + b"\n") == (46, len(_PAIRS) - 46)


@BOTH
@DIFF
@given(lines=_LINES, trusted=_TRUST)
def test_lines_with_every_field_varied_map_identically(
    log_type: LogType, lines: list[str], trusted: tuple[str, ...]
) -> None:
    """trusted_proxies only matters for address lists (the reference's), never for a plain line."""
    assert_same(log_type, "\n".join(lines).encode() + b"\n", ParseOptions(trusted_proxies=trusted))


# --- the property tests' damage ----------------------------------------------------------------

_HUGE = [b"", b"9" * 5000, b" -" * 3000, "\u00e9".encode() * 200, b'\\"', b"\r\t", b'" "' * 50]
_NGINX_SAMPLE = (REPO / "tests/data/samples/logs/nginx_access/test-access.log").read_bytes() + PLAIN.encode() + b"\n"
_APACHE_SAMPLE = (REPO / "tests/data/samples/logs/apache_access/test-access-ubuntu.log").read_bytes()


@DIFF
@given(data=damaged(_NGINX_SAMPLE, _HUGE))
def test_damaged_nginx_samples_map_identically(data: bytes) -> None:
    assert_same(NGINX, data)


@DIFF
@given(data=damaged(_APACHE_SAMPLE, _HUGE))
def test_damaged_apache_samples_map_identically(data: bytes) -> None:
    assert_same(APACHE, data)


# --- hand-written edge cases -------------------------------------------------------------------

EDGES = [
    PLAIN,
    PLAIN + "\r",  # CRLF
    "",
    "   ",
    "\t" + PLAIN,
    PLAIN.replace(" ", "  ", 1),  # a double space after the client
    "example.com " + PLAIN,  # a vhost prefix
    PLAIN[:60],  # cut inside the request
    "garbage",
]


@BOTH
def test_hand_written_edge_lines_map_identically(log_type: LogType) -> None:
    not_utf8 = PLAIN.encode().replace(b"Mozilla", b"\xff\xfe")
    data = "\n".join(EDGES).encode() + b"\n" + not_utf8 + b"\n" + PLAIN.encode()  # no final newline
    # fast: the first and the last line; the 2 blank lines are no record; the 7 others: reference
    assert assert_same(log_type, data) == (2, 7)


@BOTH
def test_over_long_lines_are_the_same_dead_letters(log_type: LogType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit below the line size, and chunks smaller than a line: the skip path of the framing."""
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 700)
    long = PLAIN.replace("Mozilla", "M" * 3000)
    data = "\n".join([PLAIN, long, PLAIN, long, long, PLAIN]).encode() + b"\n" + long.encode()
    assert assert_same(log_type, data, ParseOptions(max_record_bytes=len(PLAIN) + 10))[0] == 3
    assert assert_same(log_type, data, ParseOptions(max_record_bytes=len(PLAIN)))[0] == 3  # exactly at the limit


@BOTH
def test_chunk_boundaries_keep_offsets(log_type: LogType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_chunks, "CHUNK_BYTES", 1000)
    lines = [PLAIN.replace(" 571 ", f" {i} ") for i in range(40)]
    data = "\n\n".join(lines).encode()  # blank lines between, no final newline
    assert assert_same(log_type, data) == (40, 0)


@BOTH
@pytest.mark.parametrize(
    "key",
    [
        "AWSLogs/123456789012/nginx/eu-west-1/2024/03/13/access.log.gz",  # account and region
        'AWSLogs/123456789012/caf\u00e9 "logs"/access.log.gz',  # account only; a path orjson must escape
    ],
)
def test_aws_key_context_and_gzip_map_identically(log_type: LogType, key: str) -> None:
    body = gzip.compress(("\n".join([PLAIN] * 50) + "\n").encode())
    assert assert_same(log_type, body, name=key) == (50, 0)
