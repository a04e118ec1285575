"""S3 event notifications delivered through SQS (directly, via SNS, or via EventBridge).

A message is deleted only after every object it names has been loaded and its events (and dead
letters) accepted by the store; if the store is unavailable the message is left on the queue and
comes back after its visibility timeout. Several workers can share one queue: document IDs are
deterministic, so an object processed twice is overwritten, not duplicated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from siem.pipeline import DeadLetter, RunSummary, Sink
from siem.sources import SourceObject
from siem.sources.s3 import s3_object

log = logging.getLogger(__name__)


class NotificationError(ValueError):
    """A queue message that is not an S3 event notification we understand."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    bucket: str
    key: str
    size: int | None = None


def object_refs(body: str) -> list[ObjectRef]:
    """The S3 objects a message body announces ([] for s3:TestEvent)."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise NotificationError(f"message body is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise NotificationError("message body is not a JSON object")
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):  # SNS fan-out
        return object_refs(message["Message"])
    if message.get("Event") == "s3:TestEvent":
        return []
    if message.get("source") == "aws.s3" and isinstance(message.get("detail"), dict):  # EventBridge
        detail = message["detail"]
        try:
            return [ObjectRef(detail["bucket"]["name"], detail["object"]["key"], detail["object"].get("size"))]
        except (KeyError, TypeError):
            raise NotificationError("EventBridge S3 event without detail.bucket.name/object.key") from None
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotificationError("not an S3 event notification (no Records list)")
    refs = []
    for record in records:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated"):
                continue
            s3 = record["s3"]
            refs.append(ObjectRef(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]), s3["object"].get("size")))
        except (KeyError, TypeError):
            raise NotificationError("S3 event record without eventName/s3.bucket.name/s3.object.key") from None
    return refs


@dataclass
class QueueStats:
    messages: int = 0
    deleted: int = 0
    kept: int = 0
    summary: RunSummary = field(default_factory=RunSummary)


def drain_once(
    sqs: Any,
    queue_url: str,
    s3: Any,
    sink: Sink,
    load: Callable[[Iterable[SourceObject]], RunSummary],
    wait_seconds: int = 1,
    max_messages: int = 10,
) -> QueueStats:
    """Receive one batch, load what it announces, delete what was handled; returns what happened."""
    stats = QueueStats()
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds)
    for message in response.get("Messages", ()):
        stats.messages += 1
        try:
            refs = object_refs(message["Body"])
        except NotificationError as exc:
            path = f"sqs:{queue_url}#{message['MessageId']}"
            sink.write_dead_letters([DeadLetter(path, 0, "object", str(exc), None, message["Body"][:16384])])
            stats.summary.dead_lettered += 1
            stats.summary.errors.append(f"{path}: {exc}")
            refs = []
        else:
            try:
                summary = load(s3_object(s3, ref.bucket, ref.key, ref.size) for ref in refs)
            except Exception:
                log.exception("message %s kept on the queue for retry", message["MessageId"])
                stats.kept += 1
                continue
            stats.summary.add(summary)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        stats.deleted += 1
    return stats
