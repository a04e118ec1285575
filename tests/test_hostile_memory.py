"""Hostile input, memory: a gzip bomb line costs bounded memory in every log type, and its neighbours parse.

Each case runs `siem parse` in a subprocess on a real gzip file (a valid record, one ~256 MB line
inflated from ~0.25 MB, the valid record again); the child reports its own peak RSS (VmHWM).
Before the record limit every line-based type held the whole line (and copies of it): 0.6-3 GB.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pytest
from oracle import REPO, parse_bytes, sample

from siem import formats

sys.path.insert(0, str(REPO / "bench"))
from peak_rss import run_siem

BOMB_BYTES = 256 << 20
RSS_LIMIT_MB = 300

# dataset -> (sample file, or None for a hand-made record)
NEIGHBOURS: dict[str, str | None] = {
    "aws.alb": "alb/test-alb.log",
    "aws.waf": "waf/test-waf.log",
    "aws.vpcflow": "vpcflow/test-v5-all-fields.log",
    "aws.route53_resolver": "route53_resolver/test-route53.log",
    "aws.network_firewall": "network_firewall/test-firewall.log",
    "aws.cloudtrail": "cloudtrail/test-assume-role-json.log",
    "kubernetes.audit": "k8s_audit/exec_pod.json",
    "kubernetes.container": "k8s_container/docker-json-apache.log",
    "linux.syslog": "syslog/test-suse-syslog.log",
    "linux.auth": "auth/test-auth.log",
    "linux.auditd": "auditd/test-auditd-raw.log",
    "nginx.access": "nginx_access/test-access.log",
    "nginx.error": "nginx_error/test-error-raw.log",
    "apache.access": "apache_access/test-access-basic.log",
    "apache.error": "apache_error/test-error-basic.log",
    "fluentd": None,
    "aws.cloudwatch_logs": None,
}
HAND_MADE = {
    "fluentd": b'{"time":"2024-03-01T10:00:00Z","tag":"app.worker","level":"info","job":"nightly"}',
    "aws.cloudwatch_logs": orjson.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "/app/worker",
            "logStream": "i-0abc",
            "subscriptionFilters": ["all"],
            "logEvents": [{"id": "1", "timestamp": 1709287200000, "message": "job nightly started"}],
        }
    ),
}


def test_every_log_type_is_covered() -> None:
    assert set(formats.registry()) == set(NEIGHBOURS)


def _neighbours(dataset: str) -> tuple[bytes, bytes]:
    """Two lines of the type that parse, together, to exactly two events (auditd joins one serial's lines)."""
    relative = NEIGHBOURS[dataset]
    if relative is None:
        first = HAND_MADE[dataset]
        return first, first.replace(b"nightly", b"weekly")
    candidates = []
    for line in sample(relative).read_bytes().splitlines()[:200]:
        if line.strip():
            events, letters = parse_bytes(line + b"\n", dataset)
            if len(events) == 1 and not letters:
                candidates.append(line)
    for first in candidates:
        for second in candidates:
            events, letters = parse_bytes(first + b"\n" + second + b"\n", dataset)
            if len(events) == 2 and not letters:
                return first, second
    raise AssertionError(f"no two single-line records of {dataset} in {relative}")


def _bomb_member(payload_head: bytes, fill: bytes) -> bytes:
    """A gzip member of payload_head then fill repeated up to BOMB_BYTES, no newline: one huge line."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(payload_head)]
    block = fill * ((1 << 20) // len(fill))
    for _ in range(BOMB_BYTES // len(block)):
        out.append(compressor.compress(block))
    out.append(compressor.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, bytes]:
    return {
        "zeros": _bomb_member(b"", b"\0"),
        "json-ish": _bomb_member(b'{"eventVersion":"1.08","requestParameters":{"policy":"', b'{\\"a\\":[1,'),
    }


def _run_parse(path: Path, dataset: str, dead: Path) -> tuple[int, int, bytes]:
    """(exit code, peak RSS in MB, stdout) of `siem parse` in a child process."""
    peak = dead.with_suffix(".peak")
    with open(os.devnull, "wb") as devnull:
        proc, peak_kb = run_siem(
            ["parse", "--type", dataset, "--dead-letter", str(dead), str(path)],
            peak,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=devnull,
        )
    return proc.returncode, peak_kb // 1024, proc.stdout


@pytest.mark.parametrize("kind", ["zeros", "json-ish"])
@pytest.mark.parametrize("dataset", sorted(NEIGHBOURS))
def test_bomb_line_costs_bounded_memory_and_neighbours_parse(dataset, kind, bombs, tmp_path) -> None:
    before, after = _neighbours(dataset)
    path = tmp_path / "bomb.log.gz"
    path.write_bytes(gzip.compress(before + b"\n") + bombs[kind] + gzip.compress(b"\n" + after + b"\n"))
    dead = tmp_path / "dead.ndjson"
    code, rss_mb, out = _run_parse(path, dataset, dead)
    events = [orjson.loads(x) for x in out.splitlines() if x.strip()]
    letters = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert rss_mb < RSS_LIMIT_MB, f"{dataset} ({kind} bomb): peak RSS {rss_mb} MB"
    assert code == 1, "the bomb record is a dead letter, so the run reports it"
    assert letters, f"{dataset}: the bomb line was dropped silently"
    if dataset == "aws.cloudtrail":
        return  # its own framing (a Records document or NDJSON): bounded, dead-lettered, not per line
    assert len(events) == 2, f"{dataset} ({kind}): the records before and after the bomb must parse: {letters}"
    assert any("limit" in letter["reason"] for letter in letters), letters


def test_inflate_ratio_limit_fails_the_object_naming_the_limit(tmp_path) -> None:
    """Past 512 MiB inflated, a ratio over max_inflate_ratio (default 200:1) is a bomb: the object fails."""
    from siem.formats.base import ParseOptions

    line = _neighbours("nginx.access")[0]
    blank_lines = (b" " * 1023 + b"\n") * 1024  # 1 MiB of blank lines: no record limit, no record
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = [compressor.compress(line + b"\n")]
    body += [compressor.compress(blank_lines) for _ in range(600)]
    body.append(compressor.flush())
    data = b"".join(body)
    events, letters = parse_bytes(data, "nginx.access", ParseOptions())
    assert len(events) == 1  # the record before the limit is kept
    objects = [letter for letter in letters if letter.stage == "object"]
    assert len(objects) == 1 and "ratio" in objects[0].reason and "MAX_INFLATE_RATIO" in objects[0].reason
    # an absolute bound, configurable per run
    events, letters = parse_bytes(data, "nginx.access", ParseOptions(max_inflated_bytes=8 << 20))
    objects = [letter for letter in letters if letter.stage == "object"]
    assert len(objects) == 1 and "8388608-byte per-object limit" in objects[0].reason


def test_member_after_a_member_inflating_past_the_step_bound_is_read(tmp_path) -> None:
    """Concatenated gzip members (Firehose, shippers) where a member ends inside one inflate step and
    the next inflates past the 1 MiB step bound: every byte is read (this used to spin forever)."""
    import io
    import signal

    from siem.formats.decompress import open_decompressed

    data = gzip.compress(b"first\n") + gzip.compress(b"\0" * (2 << 20)) + gzip.compress(b"\nlast\n")

    def timeout(signum, frame):
        raise TimeoutError("reading three gzip members did not finish in 20 s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        stream, _ = open_decompressed(io.BytesIO(data))
        total = sum(len(chunk) for chunk in iter(lambda: stream.read(1 << 16), b""))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert total == len(b"first\n") + (2 << 20) + len(b"\nlast\n")
