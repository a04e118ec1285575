"""S3 event notifications delivered through SQS (directly, via SNS, or via EventBridge).

A message is deleted only after every object it names has been loaded and its events (and dead
letters) accepted by the store; if the store is unavailable the message is left on the queue and
comes back after its visibility timeout. Several workers can share one queue: document IDs are
deterministic, so an object processed twice is overwritten, not duplicated.
"""

from __future__ import annotations

import json
import logging
import threading
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
    etag: str | None = None  # the notification's, so the ledger knows which version was loaded


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
            obj = detail["object"]
            return [ObjectRef(detail["bucket"]["name"], obj["key"], obj.get("size"), obj.get("etag"))]
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
            obj = s3["object"]
            refs.append(ObjectRef(s3["bucket"]["name"], unquote_plus(obj["key"]), obj.get("size"), obj.get("eTag")))
        except (KeyError, TypeError):
            raise NotificationError("S3 event record without eventName/s3.bucket.name/s3.object.key") from None
    return refs


@dataclass
class QueueStats:
    messages: int = 0
    deleted: int = 0
    kept: int = 0
    summary: RunSummary = field(default_factory=RunSummary)


class _KeepInvisible:
    """While a batch is processed, extends the visibility timeout of its unfinished messages every half
    timeout, so a big object is not handed to a second worker halfway through (it would be loaded
    twice, and deleted by whichever finishes first). A finished message is dropped from the set: one
    kept for retry comes back after its timeout."""

    def __init__(self, sqs: Any, queue_url: str, timeout: int, handles: Iterable[str]) -> None:
        self.sqs, self.queue_url, self.timeout = sqs, queue_url, timeout
        self.pending = set(handles)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-visibility", daemon=True)

    def __enter__(self) -> _KeepInvisible:
        if self.pending:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def done(self, handle: str) -> None:
        with self._lock:
            self.pending.discard(handle)

    def _run(self) -> None:
        while not self._stop.wait(max(self.timeout / 2, 0.5)):
            with self._lock:
                handles = list(self.pending)
            for handle in handles:
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=self.timeout
                    )
                except Exception as exc:  # the message may come back to another worker; IDs keep that harmless
                    log.warning("could not extend a message's visibility timeout: %s", exc)


_VISIBILITY: dict[str, int] = {}


def _visibility_timeout(sqs: Any, queue_url: str) -> int:
    if queue_url not in _VISIBILITY:
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
            _VISIBILITY[queue_url] = max(int(attrs["VisibilityTimeout"]), 1)
        except Exception as exc:
            log.warning("could not read the queue's visibility timeout (%s); assuming 30 s", exc)
            return 30
    return _VISIBILITY[queue_url]


def drain_once(
    sqs: Any,
    queue_url: str,
    s3: Any,
    sink: Sink,
    load: Callable[[Iterable[SourceObject]], RunSummary],
    wait_seconds: int = 1,
    max_messages: int = 10,
    visibility_timeout: int | None = None,
) -> QueueStats:
    """Receive one batch, load what it announces, delete what was handled; returns what happened.

    visibility_timeout: what the messages' timeout is extended to while they are processed (default:
    the queue's own VisibilityTimeout)."""
    stats = QueueStats()
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds)
    messages = response.get("Messages", ())
    if not messages:
        return stats
    timeout = visibility_timeout or _visibility_timeout(sqs, queue_url)
    with _KeepInvisible(sqs, queue_url, timeout, (m["ReceiptHandle"] for m in messages)) as invisible:

        def finish(message: dict[str, Any], delete: bool) -> None:
            try:
                if delete:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    stats.deleted += 1
                else:
                    stats.kept += 1
            finally:
                invisible.done(message["ReceiptHandle"])

        announcing: list[dict[str, Any]] = []
        refs: list[ObjectRef] = []
        for message in messages:
            stats.messages += 1
            try:
                refs += object_refs(message["Body"])
                announcing.append(message)
            except NotificationError as exc:
                finish(message, _dead_letter(message, queue_url, exc, sink, stats))
        if announcing:  # one load for the whole batch: `--workers` parses its objects in parallel
            try:
                stats.summary.add(load(s3_object(s3, r.bucket, r.key, r.size, r.etag) for r in refs))
                loaded = True
            except Exception:
                ids = ", ".join(m["MessageId"] for m in announcing)
                log.exception("messages %s kept on the queue for retry", ids)
                loaded = False
            for message in announcing:
                finish(message, loaded)
    return stats


def _dead_letter(
    message: dict[str, Any], queue_url: str, exc: NotificationError, sink: Sink, stats: QueueStats
) -> bool:
    """Store a message that is not a notification as a dead letter; True when it is (delete the message),
    False when the store is down (keep it: its letter is written next time)."""
    path = f"sqs:{queue_url}#{message['MessageId']}"
    try:
        sink.write_dead_letters([DeadLetter(path, 0, "object", str(exc), None, message["Body"][:16384])])
    except Exception as store_error:
        log.warning("message %s kept on the queue: its dead letter could not be stored: %s", path, store_error)
        return False
    stats.summary.dead_lettered += 1
    stats.summary.errors.append(f"{path}: {exc}")
    return True
