"""`siem load --workers N` (siem/parallel.py, siem/parse_process.py): parse processes and one writer give
exactly what one process gives — the same documents and ids, counts, dead letters and ledger — on both
stores and from S3; a corrupt gzip is one failed object; a parse process killed mid-object fails that
object only, and a re-run loads it exactly once; `siem worker --workers 2` loads a queue batch in
parallel; load.workers and small local loads keep parsing in process; one process reads S3 ahead.

Expected totals are the bundled samples' (tests/data/samples/logs), written by hand from the
`--workers 1` summary: 94 objects, 837 records, 832 events, 2 skipped, 3 dead letters."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import shutil
import time
import uuid
from pathlib import Path

import duckdb
import orjson
import pytest
from oracle import REPO

from siem.cli import main

SAMPLES = REPO / "tests/data/samples/logs"
ALB_LINES = (REPO / "tests/data/alb/test-alb.log").read_bytes().splitlines(keepends=True)
ALB_KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01"
# gzip header, then bytes no deflate stream starts with: unreadable before the first record
CORRUPT_GZ = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff\xfe\xfd garbage " * 20
BY_DATASET = {
    "apache.access": 43,
    "apache.error": 14,
    "aws.alb": 12,
    "aws.cloudtrail": 36,
    "aws.cloudwatch_logs": 10,
    "aws.network_firewall": 2,
    "aws.route53_resolver": 34,
    "aws.vpcflow": 14,
    "aws.waf": 4,
    "kubernetes.audit": 28,
    "kubernetes.container": 2,
    "linux.auditd": 63,
    "linux.auth": 154,
    "linux.syslog": 392,
    "nginx.access": 20,
    "nginx.error": 4,
}


def _load(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["load", "--json", *argv])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _embedded(data: Path) -> tuple[dict, list, list]:
    """Documents by id (event.ingested left out: the time of the run), dead letters and ledger rows."""
    with duckdb.connect(str(data / "events.duckdb"), read_only=True) as db:
        docs = {}
        for doc_id, doc in db.execute("SELECT id, doc FROM events").fetchall():
            docs[doc_id] = orjson.loads(doc)
            docs[doc_id]["event"].pop("ingested")
        letters = sorted(db.execute('SELECT path, "offset", stage, reason, letter_id FROM dead_letters').fetchall())
        ledger = sorted(db.execute("SELECT path, version, events, dead_letters, status FROM ledger").fetchall())
    return docs, letters, ledger


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """The bundled samples (94 objects of 16 log types) and one corrupt gzip under an ALB key."""
    root = tmp_path_factory.mktemp("workers") / "logs"
    shutil.copytree(SAMPLES, root)
    (root / ALB_KEY).mkdir(parents=True)
    (root / ALB_KEY / "corrupt.log.gz").write_bytes(CORRUPT_GZ)
    return root


@pytest.fixture(scope="module")
def embedded_runs(logs: Path, tmp_path_factory) -> dict:
    """The folder loaded with one worker and with two, each into its own embedded store, then with two
    again: each run's exit code and --json summary, and the stores."""
    mp = pytest.MonkeyPatch()
    data = tmp_path_factory.mktemp("stores")
    runs: dict = {"data": data}
    try:
        mp.delenv("SIEM_OPENSEARCH_URL", raising=False)
        mp.delenv("SIEM_CONFIG", raising=False)
        for name, workers in (("1", "1"), ("2", "2"), ("rerun", "2")):
            mp.setenv("SIEM_DATA_DIR", str(data / workers))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["load", "--json", str(logs), "--workers", workers])
            runs[name] = (code, json.loads(out.getvalue()))
    finally:
        mp.undo()
    return runs


def test_two_workers_store_exactly_what_one_worker_stores(embedded_runs: dict) -> None:
    data = embedded_runs["data"]
    one, two = _embedded(data / "1"), _embedded(data / "2")
    assert len(two[0]) == 832
    assert two[0] == one[0]  # every document, under the same id
    assert len(two[1]) == 4 and two[1] == one[1]  # the same dead letters
    assert len(two[2]) == 95 and two[2] == one[2]  # the same ledger (object, version, counts, status)
    failed = [row for row in two[2] if row[4] == "failed"]
    assert [(Path(row[0]).name, row[2], row[3]) for row in failed] == [("corrupt.log.gz", 0, 1)]
    stages = sorted(letter[2] for letter in two[1])
    assert stages == ["frame", "frame", "frame", "object"]


def test_two_workers_summary_counts_every_record_and_the_corrupt_gzip(embedded_runs: dict) -> None:
    code, summary = embedded_runs["2"]
    assert code == 1  # a failed object: exit 1, the rest loaded
    assert (summary["objects"], summary["objects_failed"], summary["objects_skipped"]) == (95, 1, 0)
    assert (summary["records"], summary["events"], summary["written"]) == (837, 832, 832)
    assert (summary["skipped"], summary["dead_lettered"]) == (2, 4)
    assert summary["by_dataset"] == BY_DATASET
    assert len(summary["errors"]) == 1 and "corrupt.log.gz: unreadable before the first record" in summary["errors"][0]
    assert embedded_runs["1"] == (1, summary)  # one worker: the same summary


def test_rerun_with_two_workers_skips_every_finished_object(embedded_runs: dict) -> None:
    code, again = embedded_runs["rerun"]
    assert code == 1  # the corrupt object is tried again, and fails again
    assert (again["objects"], again["objects_skipped"], again["objects_failed"], again["events"]) == (1, 94, 1, 0)


# the AWS samples (few years, so few indices on the shared node) and the corrupt gzip: 34 objects
OPENSEARCH_SOURCES = ("alb", "cloudtrail", "vpcflow", "waf", "AWSLogs")


def test_two_workers_into_opensearch_store_the_same_documents(
    logs: Path, embedded_runs: dict, opensearch_url, opensearch_client, index_prefix, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", index_prefix)
    code, summary = _load(capsys, *(str(logs / name) for name in OPENSEARCH_SOURCES), "--workers", "2")
    assert code == 1 and summary["store"] == "opensearch"
    assert (summary["objects"], summary["objects_failed"]) == (34, 1)
    assert (summary["events"], summary["written"], summary["dead_lettered"]) == (
        12 + 36 + 12 + 4,
        64,
        1,
    )  # alb, cloudtrail, vpcflow, waf
    opensearch_client.indices.refresh(index=f"{index_prefix}-*")
    hits = opensearch_client.search(index=f"{index_prefix}-events-*", body={"size": 1000})["hits"]["hits"]
    docs = {}
    for hit in hits:
        hit["_source"]["event"].pop("ingested")
        docs[hit["_id"]] = hit["_source"]
    folders = tuple(str(logs / name) + "/" for name in OPENSEARCH_SOURCES)
    one_worker = _embedded(embedded_runs["data"] / "1")[0]
    expected = {i: doc for i, doc in one_worker.items() if doc["log"]["file"]["path"].startswith(folders)}
    assert len(docs) == 64 and docs == expected  # what one worker stored in the embedded store, ids and all
    letters = opensearch_client.search(index=f"{index_prefix}-deadletter", body={"size": 10})["hits"]["hits"]
    assert [(Path(h["_source"]["path"]).name, h["_source"]["stage"]) for h in letters] == [("corrupt.log.gz", "object")]
    ledger = opensearch_client.search(index=f"{index_prefix}-ledger", body={"size": 200})["hits"]["hits"]
    assert len(ledger) == 34 and sum(h["_source"]["status"] == "failed" for h in ledger) == 1


def test_a_killed_parse_process_fails_its_object_only_and_a_rerun_loads_it_once(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """The parse process reading big.log sends its first 1000 events, then SIGKILLs itself (the
    SIEM_TEST_KILL_PARSE hook: a real kill, at a moment a test can choose)."""
    logs = tmp_path / "logs" / ALB_KEY
    logs.mkdir(parents=True)
    line = ALB_LINES[0]
    big = [line.replace(b":2817 ", b":%d " % (1024 + i)) for i in range(2500)]
    (logs / "big.log").write_bytes(b"".join(big))
    for i in range(4):
        (logs / f"small-{i}.log").write_bytes(b"".join(ALB_LINES))  # 10 events each
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIEM_TEST_KILL_PARSE", "big.log")
    code, summary = _load(capsys, str(tmp_path / "logs"), "--workers", "2")
    assert code == 1
    assert (summary["objects"], summary["objects_failed"]) == (5, 1)
    assert (summary["events"], summary["written"], summary["dead_lettered"]) == (1000 + 4 * 10, 1040, 1)
    assert len(summary["errors"]) == 1
    assert "big.log: the parse process reading it stopped (signal SIGKILL)" in summary["errors"][0]

    monkeypatch.delenv("SIEM_TEST_KILL_PARSE")
    code, rerun = _load(capsys, str(tmp_path / "logs"), "--workers", "2")
    assert code == 0
    assert (rerun["objects"], rerun["objects_skipped"], rerun["events"]) == (1, 4, 2500)
    with duckdb.connect(str(tmp_path / "data" / "events.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone() == (2540, 2540)
        assert db.execute("SELECT status, events FROM ledger WHERE path LIKE '%big.log'").fetchone() == ("done", 2500)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_load_from_s3_reads_ahead_or_in_parallel_and_the_ledger_keeps_etags(
    workers: str, aws_endpoint, s3, bucket, tmp_path: Path, monkeypatch, capsys
) -> None:
    """One worker downloads the next object while one is parsed (read_ahead); two download their own."""
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"{ALB_KEY}/{i}.log.gz", Body=gzip.compress(b"".join(ALB_LINES)))
    s3.put_object(Bucket=bucket, Key=f"{ALB_KEY}/corrupt.log.gz", Body=CORRUPT_GZ)
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    code, summary = _load(capsys, f"s3://{bucket}/AWSLogs/", "--workers", workers)
    assert code == 1
    assert (summary["objects"], summary["objects_failed"], summary["events"], summary["written"]) == (6, 1, 50, 50)
    etag = s3.head_object(Bucket=bucket, Key=f"{ALB_KEY}/3.log.gz")["ETag"].strip('"')
    with duckdb.connect(str(tmp_path / "data" / "events.duckdb"), read_only=True) as db:
        row = db.execute(
            "SELECT version, events, status FROM ledger WHERE path = ?", [f"s3://{bucket}/{ALB_KEY}/3.log.gz"]
        )
        assert row.fetchone() == (etag, 10, "done")
    code, again = _load(capsys, f"s3://{bucket}/AWSLogs/", "--workers", workers)
    assert (again["objects"], again["objects_skipped"], again["events"]) == (1, 5, 0)


def test_worker_with_two_processes_loads_a_queue_batch_and_deletes_its_messages(
    aws_endpoint, s3, bucket, tmp_path: Path, monkeypatch, capsys
) -> None:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"{ALB_KEY}/w{i}.log", Body=b"".join(ALB_LINES))
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("SIEM_SQS_WAIT_SECONDS", "1")
    assert main(["worker", "--queue-url", url, "--once", "--json", "--workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["objects"], summary["written"]) == (3, 30)
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_workers_must_be_positive(capsys) -> None:
    assert main(["load", str(SAMPLES), "--workers", "0"]) == 2
    assert "--workers 0: must be 1 or more" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["1", None], ids=["load.workers=1", "small-local-load-default"])
def test_one_worker_setting_or_a_small_local_load_parses_in_process(
    setting: str | None, tmp_path: Path, monkeypatch, capsys
) -> None:
    """SIEM_LOAD_WORKERS (load.workers) of 1, or no count given for local files under 1 MiB: no parse process
    is started, so the kill hook, which only a parse process obeys, kills nothing."""
    logs = tmp_path / "logs" / ALB_KEY
    logs.mkdir(parents=True)
    (logs / "big.log").write_bytes(b"".join(ALB_LINES[0].replace(b":2817 ", b":%d " % i) for i in range(1500)))
    (logs / "small.log").write_bytes(b"".join(ALB_LINES))
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIEM_TEST_KILL_PARSE", "big.log")
    if setting is not None:
        monkeypatch.setenv("SIEM_LOAD_WORKERS", setting)
    else:
        monkeypatch.delenv("SIEM_LOAD_WORKERS", raising=False)
    code, summary = _load(capsys, str(tmp_path / "logs"))
    assert (code, summary["objects_failed"], summary["events"]) == (0, 0, 1500 + 10)


def test_read_ahead_downloads_the_next_s3_object_while_one_is_processed(s3, bucket) -> None:
    from siem.sources.read_ahead import read_ahead
    from siem.sources.s3 import ObjectUnavailable, s3_objects

    bodies = {f"{ALB_KEY}/{i}.log": b"object %d\n" % i for i in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    listed = list(s3_objects(f"s3://{bucket}/AWSLogs/", s3))
    gets: list[str] = []

    def logged(obj):
        def opener(inner=obj.opener, key=obj.path):
            gets.append(key.rsplit("/", 1)[1])
            return inner()

        return dataclasses.replace(obj, opener=opener)

    objects = read_ahead(logged(obj) for obj in listed)
    first = next(objects)
    for _ in range(100):  # the second object's GET starts without anyone opening it
        if "1.log" in gets:
            break
        time.sleep(0.05)
    assert gets == ["0.log", "1.log"]
    assert first.open().read() == b"object 0\n"
    s3.delete_object(Bucket=bucket, Key=f"{ALB_KEY}/2.log")  # gone before its turn: fails when opened
    second = next(objects)
    assert second.open().read() == b"object 1\n"
    third = next(objects)
    with pytest.raises(ObjectUnavailable, match="NoSuchKey"):
        third.open().read()
    assert next(objects, None) is None
