"""`siem load` end to end: gzip ALB objects in S3 (over HTTP) → real OpenSearch, and → embedded store.

Done-when of the foundation issue: same count after loading twice, identical lines stay two
events, a corrupt gzip object and a garbage line each give a clear error while the rest is
indexed, and the run summary counts them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main
from siem.config import load_settings
from siem.sinks import EventQuery, open_store

ALB_LINES = (REPO / "tests/data/alb/test-alb.log").read_text().splitlines()
KEY = "AWSLogs/123456789012/elasticloadbalancing/ap-northeast-1/2024/01/02/123456789012_elasticloadbalancing_ap-northeast-1_app.my-lb.50dc6c495c0c9188_20240102T0000Z_10.0.0.1_abc.log.gz"  # noqa: E501


def _put(s3, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _alb_object(extra_lines: tuple[str, ...] = ()) -> bytes:
    lines = [*ALB_LINES, ALB_LINES[0], *extra_lines]  # line 0 twice: identical lines must stay two events
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["load", "--json", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


@pytest.fixture(params=["opensearch", "embedded"])
def store_env(request, monkeypatch, tmp_path: Path):
    """The same scenario against both stores: OpenSearch when a URL is set, else embedded."""
    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    if request.param == "opensearch":
        url = request.getfixturevalue("opensearch_url")
        prefix = request.getfixturevalue("index_prefix")
        monkeypatch.setenv("SIEM_OPENSEARCH_URL", url)
        monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", prefix)
    else:
        monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
        monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    return request.param


def test_load_s3_twice_is_idempotent_and_pivots(store_env, aws_endpoint, s3, bucket, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    _put(s3, bucket, KEY, _alb_object())
    code, first, _ = _run(capsys, f"s3://{bucket}/AWSLogs/")
    assert code == 0, first
    assert first["store"] == store_env
    assert first["events"] == first["written"] == len(ALB_LINES) + 1
    code, second, _ = _run(capsys, f"s3://{bucket}/AWSLogs/", "--force")  # without it the ledger skips the object
    assert code == 0 and second["written"] == first["written"]

    store = open_store(load_settings())
    try:
        assert store.count(EventQuery()) == len(ALB_LINES) + 1  # not doubled, duplicate line kept
        hits = store.search(EventQuery(ip="192.168.131.39", size=100))
        assert len(hits) == 8
        first_hit = next(h for h in hits if h.get("url", {}).get("original") == "http://www.example.com:80/")
        assert first_hit["cloud"]["account"]["id"] == "123456789012"
        assert first_hit["cloud"]["region"] == "ap-northeast-1"
        assert first_hit["log"]["file"]["path"] == f"s3://{bucket}/{KEY}"
        assert first_hit["event"]["dataset"] == "aws.alb"
        assert first_hit["http"]["request"]["method"] == "GET"
        assert first_hit["http"]["response"]["status_code"] == 200
        assert first_hit["user_agent"]["original"] == "curl/7.46.0"
        assert first_hit["destination"]["ip"] == "10.0.0.1"
        assert "192.168.131.39" in first_hit["related"]["ip"]
        assert first_hit["event"]["ingested"]
        window = store.search(EventQuery(ip="192.168.131.39", start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z"))
        assert {h["@timestamp"][:4] for h in window} == {"2024"}
        assert store.count(EventQuery(ip="67.43.156.20", datasets=("aws.alb",))) == 1
        assert store.count(EventQuery(ip="67.43.156.20", datasets=("aws.waf",))) == 0
    finally:
        store.close()

    code = main(["pivot", "--ip", "67.43.156.20"])
    out = capsys.readouterr()
    assert code == 0
    assert "/shell?cd+/tmp" in out.out and "1 of 1 events" in out.err


def test_corrupt_gzip_and_garbage_line_are_counted_and_dead_lettered(
    store_env, aws_endpoint, s3, bucket, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    good = _alb_object(extra_lines=("this is not an ALB line",))
    _put(s3, bucket, KEY, good)
    corrupt = gzip.compress(("\n".join(ALB_LINES) + "\n").encode() * 50)
    corrupt = corrupt[: len(corrupt) // 2] + b"\x00garbage" * 10  # truncated mid-stream
    _put(s3, bucket, KEY.replace("_abc.log.gz", "_corrupt.log.gz"), corrupt)
    code, summary, err = _run(capsys, f"s3://{bucket}/AWSLogs/")
    assert code == 1, "a run with failures must not exit 0"
    assert summary["objects"] == 2 and summary["objects_failed"] == 1
    # the good object: every valid line written, the garbage line dead-lettered
    # the corrupt object: every record before the corruption written
    assert summary["written"] > len(ALB_LINES) + 1
    assert summary["dead_lettered"] == 2
    assert any("corrupt.log.gz: unreadable after offset" in e for e in summary["errors"])

    store = open_store(load_settings())
    try:
        store.refresh()
        letters = store.dead_letters()
        reasons = {d["stage"]: d for d in letters}
        assert set(reasons) == {"map", "object"}
        assert reasons["map"]["raw"] == "this is not an ALB line"
        assert reasons["map"]["path"] == f"s3://{bucket}/{KEY}"
        assert "unknown ELB line type" in reasons["map"]["reason"]
        assert (
            "BadGzipFile" in reasons["object"]["reason"]
            or "EOFError" in reasons["object"]["reason"]
            or ("Error" in reasons["object"]["reason"])
        )
        assert store.count(EventQuery()) == summary["written"]
    finally:
        store.close()
    assert "dead-lettered: 2" in err

    assert main(["dead-letters", "--format", "json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {d["stage"] for d in listed} == {"map", "object"}
    assert all(d["path"].startswith(f"s3://{bucket}/") and d["reason"] for d in listed)


def test_unknown_local_file_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    odd = tmp_path / "mystery.bin"
    odd.write_bytes(b"\x01\x02 nothing we know\n")
    code = main(["load", str(odd)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{odd}: unknown log format" in err
