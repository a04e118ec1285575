"""The parse processes of `siem load --workers N` (siem/parallel.py holds the parent, the one writer).

A parse process takes whole objects, opens each itself (so N S3 downloads run at once), runs the same
`parse_object` as the in-process path, and encodes each event for the store (`Store.encode`: the
embedded store's staging line, OpenSearch's bulk lines): the parent receives bytes, never dict
trees. Results go out in parts of <= PART_EVENTS events through a sender thread and a queue of
SEND_AHEAD parts, so parsing goes on while the parent writes (a bulk request or a DuckDB statement
overlaps the parsing of the next parts) and memory in flight stays a few parts per process.

It ignores SIGINT and SIGTERM: Ctrl-C or a stop lets it finish the objects in hand, as in-process,
and the parent ends it; when the parent goes away its pipes close and it exits. An exception that
`parse_object` does not turn into dead letters (an S3 throttle, a bug) is sent to the parent, which
stops the run with it, as in-process.

Test hook: with SIEM_TEST_KILL_PARSE set to a substring of an object's path, the process reading it
sends its first part and then kills itself with SIGKILL (tests/test_load_workers.py).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import pickle
import queue
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from siem import formats
from siem.formats.base import Skipped
from siem.gc_batch import GEN0, OLDER
from siem.pipeline import DeadLetter, Event, has_unmapped, parse_object
from siem.sources import SourceObject

PART_EVENTS = 1000  # events per message to the parent
PART_BYTES = 4 << 20  # ... or this many encoded bytes, whichever comes first
SEND_AHEAD = 4  # parts encoded and not yet taken by the parent
KILL_HOOK = "SIEM_TEST_KILL_PARSE"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What a parse process needs to open an object itself (a SourceObject's opener is a closure)."""

    path: str
    identity: str
    size: int | None
    version: str | None
    local: str | None  # the file to open, or None for s3://bucket/key in path

    @classmethod
    def of(cls, obj: SourceObject) -> ObjectRef:
        if obj.path.startswith("s3://"):
            return cls(obj.path, obj.identity, obj.size, obj.version, None)
        if obj.identity.startswith("file://"):
            return cls(obj.path, obj.identity, obj.size, obj.version, obj.identity.removeprefix("file://"))
        raise ValueError(f"{obj.path}: this source cannot be read by a parse process")

    def source(self, s3: Callable[[], Any]) -> SourceObject:
        if self.local is not None:
            opener = partial(open, self.local, "rb")
            return SourceObject(self.path, self.identity, opener, self.size, self.version)  # type: ignore[arg-type]
        from siem.sources.s3 import s3_object

        bucket, _, key = self.path.removeprefix("s3://").partition("/")
        return s3_object(s3(), bucket, key, self.size, self.version)


@dataclass(frozen=True)
class ChildSetup:
    """Everything a parse process needs, pickled once when it starts (never logged: the S3 endpoint is
    a URL, credentials stay in the environment and boto3's chain)."""

    settings: Any  # siem.config.Settings without its cached enricher or notifications
    dataset: str | None
    store: str  # embedded | opensearch
    endpoint_url: str | None


def _encoder(setup: ChildSetup) -> Callable[[Event], bytes | DeadLetter]:
    if setup.store == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        return EmbeddedStore.encode
    from siem.sinks.opensearch import OpenSearchStore

    cfg = setup.settings.opensearch
    layout = OpenSearchStore(  # no client: only its index layout and encoding are used here
        None,  # type: ignore[arg-type]
        cfg["index_prefix"],
        index_period=cfg["index_period"],
        monthly_families=cfg["monthly_families"],
    )
    return layout.encode


class _Counting:
    """An object's stream, counting the (compressed) bytes read, for the progress line."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.count = inner, 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.inner.close()


class _Sender:
    """Hands messages to the parent from a thread, so parsing goes on while a send waits for the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: queue.Queue[Any] = queue.Queue(SEND_AHEAD)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:  # the parent is gone: nobody is left to tell
                os._exit(0)
            self.queue.task_done()
        self.queue.task_done()

    def put(self, message: Any) -> None:
        self.queue.put(message)

    def flush(self) -> None:
        self.queue.join()


def child(tasks: Connection, results: Connection, setup: ChildSetup) -> None:
    """A parse process: objects in, encoded parts out, until the parent sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.set_threshold(GEN0, OLDER, OLDER)  # this process only parses: batch_gc's thresholds for its life
    from siem.formats.routing import Router

    router, options = Router(setup.settings.routes), setup.settings.parse_options()
    forced = formats.get(setup.dataset) if setup.dataset else None
    encode = _encoder(setup)
    client: list[Any] = []

    def s3() -> Any:
        if not client:
            from siem.sources.s3 import s3_client

            client.append(s3_client(setup.endpoint_url))
        return client[0]

    sender = _Sender(results)
    sender.put(("ready", 0))
    kill_on = os.environ.get(KILL_HOOK)
    try:
        while (task := tasks.recv()) is not None:
            seq, ref = task
            sender.put(("start", seq))
            try:
                _parse(seq, ref.source(s3), router, options, forced, encode, sender, kill_on)
            except Exception as exc:
                sender.put(("raise", seq, _picklable(exc)))
    except (EOFError, OSError):  # the parent is gone
        return
    sender.put(None)
    sender.thread.join()


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _parse(
    seq: int,
    obj: SourceObject,
    router: Any,
    options: Any,
    forced: Any,
    encode: Callable[[Event], bytes | DeadLetter],
    sender: _Sender,
    kill_on: str | None,
) -> None:
    stream: list[_Counting] = []

    def opener(inner: Callable[[], BinaryIO] = obj.opener) -> BinaryIO:
        stream.append(_Counting(inner()))
        return stream[-1]  # type: ignore[return-value]

    part = Part()
    for item in parse_object(dataclasses.replace(obj, opener=opener), router, options, forced):
        if isinstance(item, Event):
            part.add(item, encode(item))
        elif isinstance(item, Skipped):
            part.skipped += 1
        else:
            part.letters.append(item)
        if part.full:
            sender.put(("part", seq, part))
            if kill_on and kill_on in obj.path:
                sender.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            part = Part()
    sender.put(("part", seq, part))
    sender.put(("done", seq, sum(s.count for s in stream)))


@dataclass
class Part:
    """A slice of one object's results, counted as pipeline.run counts them."""

    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    skipped: int = 0
    unmapped: int = 0
    by_dataset: Counter[str] = field(default_factory=Counter)
    letters: list[DeadLetter] = field(default_factory=list)  # from parsing: records or the object
    rejected: list[DeadLetter] = field(default_factory=list)  # events the encoder refused

    def add(self, event: Event, line: bytes | DeadLetter) -> None:
        self.by_dataset[event.dataset] += 1
        if has_unmapped(event):
            self.unmapped += 1
        if isinstance(line, DeadLetter):
            self.rejected.append(line)
        else:
            self.lines.append(line)
            self.size += len(line)

    @property
    def full(self) -> bool:
        return len(self.lines) >= PART_EVENTS or self.size >= PART_BYTES or len(self.letters) >= PART_EVENTS
