"""Worker and object edge cases (issue 8, point 9): a dead letter the store cannot take keeps the
message, a long object keeps its message invisible, an empty .gz and a binary file are one failed
object each."""

from __future__ import annotations

import gzip
import time
import uuid
import zlib
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main
from siem.pipeline import DeadLetter, RunSummary, run
from siem.sinks.opensearch import StoreUnavailable
from siem.sources.local import local_objects
from siem.sources.sqs import drain_once

ALB = (REPO / "tests/data/alb/test-alb.log").read_bytes()
ALB_DIR = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01"


@pytest.fixture
def sqs(aws_endpoint):
    import boto3

    return boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")


def _queue(sqs, visibility: int = 30) -> str:
    return sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": str(visibility)})[
        "QueueUrl"
    ]


def _waiting(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class DownSink:
    """A store whose node is down: every write raises, as OpenSearchStore does after its retries."""

    def write(self, events):
        raise StoreUnavailable("bulk request failed after 0 retries: connection refused")

    def write_dead_letters(self, letters):
        raise StoreUnavailable("bulk request failed after 0 retries: connection refused")


def test_malformed_message_is_kept_when_its_dead_letter_cannot_be_stored(sqs, s3) -> None:
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="this is not a notification")
    sqs.send_message(QueueUrl=url, MessageBody='{"Event": "s3:TestEvent"}')
    stats = drain_once(sqs, url, s3, DownSink(), lambda objects: run(objects, DownSink()), wait_seconds=1)
    assert stats.messages == 2 and stats.kept == 1 and stats.deleted == 1  # went on to the next message
    assert _waiting(sqs, url) == 1  # the malformed one comes back after its visibility timeout


def test_visibility_is_extended_while_an_object_is_processing(sqs, s3) -> None:
    url = _queue(sqs, visibility=2)
    sqs.send_message(QueueUrl=url, MessageBody='{"Event": "s3:TestEvent"}')
    seen_meanwhile: list[int] = []

    def slow_load(objects) -> RunSummary:
        list(objects)
        for _ in range(5):  # 5 s on a 2 s visibility timeout
            time.sleep(1)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            seen_meanwhile.extend(1 for _ in got.get("Messages", ()))
        return RunSummary()

    stats = drain_once(sqs, url, s3, DownSink(), slow_load, wait_seconds=1)
    assert stats.deleted == 1
    assert seen_meanwhile == [], "the message became visible to other workers while it was being processed"


def _letters(path: Path) -> tuple[RunSummary, list[DeadLetter]]:
    class Collect:
        def __init__(self) -> None:
            self.letters: list[DeadLetter] = []

        def write(self, events):
            return []

        def write_dead_letters(self, letters):
            self.letters.extend(letters)

    sink = Collect()
    return run(local_objects(path), sink), sink.letters


def test_zero_byte_gz_is_a_failed_object_saying_it_is_empty(tmp_path: Path, capsys) -> None:
    empty = tmp_path / ALB_DIR / "empty.log.gz"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    summary, letters = _letters(empty)
    assert summary.objects_failed == 1 and summary.dead_lettered == 1
    assert letters[0].stage == "object" and "empty (0 bytes)" in letters[0].reason
    assert main(["parse", str(empty)]) == 1
    assert "empty (0 bytes)" in capsys.readouterr().err


def _png() -> bytes:
    rows = b"".join(b"\x00" + bytes((x * 7 + y * 13) % 256 for x in range(64 * 3)) for y in range(64))
    body = b"\x00\x00\x00\x0dIHDR" + (64).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + body + b"\n" * 3 + zlib.compress(rows) + b"\n" + bytes(range(256)) * 20


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_binary_file_under_an_alb_key_is_one_failed_object(tmp_path: Path, compress: bool) -> None:
    png = tmp_path / ALB_DIR / ("image.log.gz" if compress else "image.log")
    png.parent.mkdir(parents=True)
    png.write_bytes(gzip.compress(_png()) if compress else _png())
    summary, letters = _letters(png)
    assert summary.objects_failed == 1 and summary.dead_lettered == 1, [d.reason for d in letters][:3]
    assert letters[0].stage == "object" and "binary" in letters[0].reason


def test_text_with_a_few_invalid_utf8_bytes_is_still_parsed(tmp_path: Path) -> None:
    log = tmp_path / ALB_DIR / "latin1.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(ALB.replace(b"curl/7.46.0", b"curl/7.46.0 caf\xe9", 1))
    summary, letters = _letters(log)
    assert summary.objects_failed == 0 and summary.events == 10, [d.reason for d in letters]


def test_one_line_with_a_nul_byte_among_good_lines_stays_one_dead_letter(tmp_path: Path) -> None:
    log = tmp_path / ALB_DIR / "damaged.log"
    log.parent.mkdir(parents=True)
    lines = ALB.splitlines(keepends=True)
    log.write_bytes(lines[0] + b"\x00\x00garbage\n" + b"".join(lines[1:]))
    summary, letters = _letters(log)
    assert summary.objects_failed == 0 and summary.events == 10 and len(letters) == 1
