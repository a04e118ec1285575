"""The ledger of processed objects, on both stores: a backfill killed -9 mid-way resumes where it
stopped, skips what is finished, ends with the exact count and no duplicates; a changed object is
reloaded, --force reloads everything, a failed object is retried, the SQS worker records too."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest
from oracle import REPO

# one ALB line ten times: 10 events of one month, so the cluster creates one events index, not five
ALB_LINE = (REPO / "tests/data/alb/test-alb.log").read_text().splitlines()[0].encode() + b"\n"
BODY = ALB_LINE * 10
EVENTS = 10
OBJECTS = 60
PREFIX = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


class Target:
    """One store: the environment a `siem` child process needs, and how to read back what it holds."""

    def __init__(self, kind: str, env: dict[str, str], data: Path, client, prefix: str) -> None:
        self.kind, self.env, self.data, self.client, self.prefix = kind, env, data, client, prefix

    def counts(self) -> tuple[int, int]:
        """(documents, distinct document ids) in the events store."""
        if self.kind == "embedded":
            with duckdb.connect(str(self.data / "events.duckdb"), read_only=True) as db:
                return db.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone()
        self.client.indices.refresh(index=f"{self.prefix}-*")
        total = self.client.count(index=f"{self.prefix}-events-*")["count"]
        return total, total  # a document id is unique within an index, and an event's index is fixed

    def ledger(self) -> dict[str, dict]:
        if self.kind == "embedded":
            with duckdb.connect(str(self.data / "events.duckdb"), read_only=True) as db:
                cursor = db.execute("SELECT path, version, size, events, dead_letters, status FROM ledger")
                names = [d[0] for d in cursor.description]
                return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        self.client.indices.refresh(index=f"{self.prefix}-ledger")
        hits = self.client.search(index=f"{self.prefix}-ledger", body={"size": 1000})["hits"]["hits"]
        return {h["_source"]["path"]: h["_source"] for h in hits}


@pytest.fixture(params=["embedded", "opensearch"])
def target(request, tmp_path: Path, aws_endpoint: str, monkeypatch) -> Target:
    """The store, its settings in this process's environment (in-process runs) and in the children's."""
    for name in [k for k in os.environ if k.startswith("SIEM_")]:
        monkeypatch.delenv(name)
    settings = {
        "AWS_ENDPOINT_URL_S3": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SIEM_DATA_DIR": str(tmp_path / "data"),
    }
    client, prefix = None, ""
    if request.param == "opensearch":
        client = request.getfixturevalue("opensearch_client")
        prefix = request.getfixturevalue("index_prefix")
        settings.update(
            SIEM_OPENSEARCH_URL=request.getfixturevalue("opensearch_url"), SIEM_OPENSEARCH_INDEX_PREFIX=prefix
        )
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return Target(request.param, env, tmp_path / "data", client, prefix)


def _siem(target: Target, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "siem.cli", *argv],
        env=target.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _json_of(argv: list[str]) -> dict:
    """A command run in this process (the killed ones are children), its --json output."""
    from siem.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


def _load(uri: str, *extra: str) -> dict:
    return _json_of(["load", uri, "--json", "--no-templates", *extra])


def _kill_after(target: Target, uri: str, finished: int) -> int:
    """Start a load, kill -9 it once it has logged `finished` objects as done; returns how many it had."""
    proc = _siem(target, "-v", "load", uri, "--checkpoint-seconds", "0", "--no-templates")
    done = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        done += line.startswith("INFO object done ")
        if done == finished:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the load ended before the kill ({done} objects done)"
    return done


def test_backfill_killed_resumes_skips_finished_and_ends_exact(target: Target, s3, bucket) -> None:
    """The 60 objects are put straight into the moto server's backend (it runs in this process; 60 PUTs
    over HTTP cost seconds here); everything the loader does with them goes over HTTP."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    for i in range(OBJECTS):
        s3_backends[DEFAULT_ACCOUNT_ID]["global"].put_object(bucket, f"{PREFIX}{i:03d}.log.gz", gzip.compress(BODY))
    uri = f"s3://{bucket}/AWSLogs/"
    if target.kind == "opensearch":  # installed up front (`templates --json` checked), not by the killed child
        installed = _json_of(["templates", "install", "--json"])["installed"]
        assert f"{target.prefix}-events" in installed and f"{target.prefix}-deadletter" in installed
    seed = random.randrange(1 << 30)
    finished = _kill_after(target, uri, random.Random(seed).randint(3, 12))

    summary = _load(uri)  # resumes: what the killed run finished is skipped, the rest loaded
    assert summary["objects_skipped"] >= finished, seed
    assert summary["objects"] + summary["objects_skipped"] == OBJECTS, seed
    assert target.counts() == (OBJECTS * EVENTS, OBJECTS * EVENTS), seed
    ledger = target.ledger()
    assert len(ledger) == OBJECTS
    etag = s3.head_object(Bucket=bucket, Key=f"{PREFIX}007.log.gz")["ETag"].strip('"')
    entry = ledger[f"s3://{bucket}/{PREFIX}007.log.gz"]
    assert (entry["version"], entry["events"], entry["dead_letters"], entry["status"]) == (etag, 10, 0, "done")

    again = _load(uri)  # nothing changed: nothing is read
    assert (again["objects"], again["objects_skipped"], again["events"]) == (0, OBJECTS, 0)

    s3.put_object(
        Bucket=bucket,
        Key=f"{PREFIX}007.log.gz",
        Body=gzip.compress(BODY + ALB_LINE, mtime=0),  # 11 events
    )
    changed = _load(uri)  # a new ETag: that object only is reloaded
    assert (changed["objects"], changed["objects_skipped"], changed["events"]) == (1, OBJECTS - 1, 11)

    forced = _load(uri, "--force", "--include", "*/00?.log.gz")  # 000 to 009, all done and unchanged
    assert (forced["objects"], forced["objects_skipped"], forced["events"]) == (10, 0, 10 * 10 + 1)
    assert target.counts() == (OBJECTS * 10 + 1, OBJECTS * 10 + 1)  # reloaded in place, no duplicates


def test_a_failed_object_is_retried_and_a_changed_local_file_reloaded(tmp_path: Path, monkeypatch, capsys) -> None:
    from siem.cli import main

    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    logs = tmp_path / "logs" / "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01"
    logs.mkdir(parents=True)
    (logs / "a.log").write_bytes(BODY)
    (logs / "b.png.log").write_bytes(PNG)

    def load() -> dict:
        main(["load", str(tmp_path / "logs"), "--json"])
        return json.loads(capsys.readouterr().out)

    first = load()
    assert (first["objects"], first["objects_failed"], first["events"]) == (2, 1, 10)
    second = load()  # the good file is skipped, the failed one tried again
    assert (second["objects"], second["objects_failed"], second["objects_skipped"]) == (1, 1, 1)
    (logs / "a.log").write_bytes(BODY + ALB_LINE)  # 11 events
    os.utime(logs / "a.log", ns=(1, 1_000_000_000))
    third = load()  # size and mtime changed: reloaded
    assert (third["objects"], third["objects_skipped"], third["events"]) == (2, 0, 11)


def test_worker_records_its_objects_in_the_ledger_and_logs_progress(
    s3, bucket, aws_endpoint, tmp_path: Path, monkeypatch, capsys, caplog
) -> None:
    import boto3

    from siem.cli import main

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    etag = s3.put_object(Bucket=bucket, Key=f"{PREFIX}w.log", Body=BODY)["ETag"].strip('"')
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("SIEM_SQS_WAIT_SECONDS", "1")
    caplog.set_level(logging.INFO, logger="siem.progress")  # what -v turns on
    assert main(["worker", "--queue-url", url, "--once", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 10
    progress = [r.getMessage() for r in caplog.records if r.name == "siem.progress"]
    assert progress[-1].startswith("progress command=worker objects=1 events=10 "), progress
    with duckdb.connect(str(tmp_path / "data" / "events.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT path, version, events, dead_letters, status FROM ledger").fetchall()
    assert rows == [(f"s3://{bucket}/{PREFIX}w.log", etag, 10, 0, "done")]  # the notification's ETag
