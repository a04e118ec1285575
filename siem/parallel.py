"""`siem load --workers N` and `siem worker --workers N`: objects parsed in N processes, one writer.

Parsing and mapping are pure Python and hold the GIL, so threads cannot use a second core; processes
can (siem/parse_process.py: each takes whole objects, an object being the ledger's unit, and sends
back events encoded for the store). This parent is the single writer: DuckDB allows one, and one
writer keeps the ledger exact. An object is committed to the ledger only after its "done" message,
which comes after all of its events on the same pipe, and after the write holding the last of them,
so `pipeline.run`'s guarantee holds: a kill at any point leaves objects loaded but unrecorded, never
recorded but not loaded. Memory: one store batch here plus a few parts per process in flight.

A parse process that dies (killed, out of memory, a crash in native code) fails the object it was
reading: a dead letter at stage "object" says so, what it had sent is stored, the ledger records
"failed", so a re-run loads it again (deterministic ids: an overwrite). Its queued objects go to
the others and a new process takes its place. Processes are started with "spawn": the parent holds
a DuckDB connection and threads, which must not be forked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import pickle
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import orjson

from siem import limits
from siem.cli_common import UserError
from siem.parse_process import ChildSetup, ObjectRef, Part, child
from siem.pipeline import DeadLetter, Event, ObjectOutcome, RunSummary
from siem.sources import SourceObject

ASSIGNED = 2  # objects given to a parse process at once: the next is ready when one ends


class _BulkLines(Sequence[Event]):
    """OpenSearch bulk lines seen as events, decoded only for a document the cluster rejects."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return _BulkLines(self.lines[i])
        action, source, _ = self.lines[i].split(b"\n", 2)
        doc = orjson.loads(source)
        return Event(orjson.loads(action)["index"]["_id"], doc["event"]["dataset"], doc)


@dataclass
class _Worker:
    process: Any
    tasks: Connection
    results: Connection
    assigned: deque[int] = field(default_factory=deque)  # in the order given; the first is being read
    started: int | None = None
    ready: bool = False  # set up and taking objects: one that dies before is a start-up failure


class ParallelLoader:
    """The `load` of cli_load._loader over N parse processes, started on first use and kept across calls
    (a `siem worker` loads one queue batch per call); `close()` ends them."""

    def __init__(
        self,
        store: Any,
        settings: Any,
        dataset: str | None,
        workers: int,
        progress: Any = None,
        committed: Callable[[list[ObjectOutcome]], None] | None = None,
        commit_seconds: float | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        plain = dataclasses.replace(settings, notifications=[])  # a fresh copy: no cached, unpicklable enricher
        self.setup = ChildSetup(plain, dataset, store.name, endpoint_url or settings.s3["endpoint_url"])
        self.store, self.count, self.progress = store, workers, progress
        self.committed, self.commit_seconds = committed, commit_seconds
        self.context = multiprocessing.get_context("spawn")  # the parent holds DuckDB and threads: never fork
        self.workers: list[_Worker] = []

    def __enter__(self) -> ParallelLoader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start(self) -> _Worker:
        task_recv, task_send = self.context.Pipe(duplex=False)
        result_recv, result_send = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=child, args=(task_recv, result_send, self.setup), name="siem-parse", daemon=True
        )
        process.start()
        task_recv.close()
        result_send.close()
        return _Worker(process, task_send, result_recv)

    def close(self, now: bool = False) -> None:
        """Stop the parse processes: each after its objects in hand, or at once (a run cut short)."""
        for worker in self.workers:
            if not now:
                with contextlib.suppress(OSError):
                    worker.tasks.send(None)
        for worker in self.workers:
            worker.process.join(timeout=0 if now else 60)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.tasks.close()
            worker.results.close()
        self.workers = []

    def __call__(self, objects: Iterable[SourceObject], summary: RunSummary | None = None) -> RunSummary:
        summary = summary if summary is not None else RunSummary()
        try:
            return _Run(self, summary).run(iter(objects))
        except BaseException:
            self.close(now=True)  # objects half read in the processes: the next call starts afresh
            raise


class _Run:
    """One call of ParallelLoader: dispatch, receive, write, commit."""

    def __init__(self, loader: ParallelLoader, summary: RunSummary) -> None:
        self.loader, self.summary = loader, summary
        self.store = loader.store
        self.pending: dict[int, tuple[ObjectRef, ObjectOutcome]] = {}
        self.backlog: deque[tuple[int, ObjectRef, SourceObject]] = deque()
        self.seq = 0
        self.lines: list[bytes] = []
        self.letters: list[DeadLetter] = []
        self.letter_bytes = 0
        self.finished: list[ObjectOutcome] = []
        self.last_commit = time.monotonic()

    def run(self, objects: Iterator[SourceObject]) -> RunSummary:
        loader = self.loader
        while len(loader.workers) < loader.count:
            loader.workers.append(loader._start())
        exhausted = False
        while True:
            exhausted = self._dispatch(objects, exhausted)
            if exhausted and not self.pending and not self.backlog:
                break
            ready = wait([w.results for w in loader.workers] + [w.process.sentinel for w in loader.workers])
            for worker in list(loader.workers):
                if worker.results in ready:
                    self._receive(worker)
                if worker.process.sentinel in ready:
                    self._died(worker)
        self._flush()
        return self.summary

    def _dispatch(self, objects: Iterator[SourceObject], exhausted: bool) -> bool:
        for worker in self.loader.workers:
            while len(worker.assigned) < ASSIGNED:
                if self.backlog:
                    seq, ref, obj = self.backlog.popleft()
                else:
                    obj = None if exhausted else next(objects, None)
                    if obj is None:
                        return True
                    self.seq += 1
                    seq, ref = self.seq, ObjectRef.of(obj)
                    self.pending[seq] = (ref, ObjectOutcome(obj))
                worker.tasks.send((seq, ref))
                worker.assigned.append(seq)
        return exhausted

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.results.poll():
                self._handle(worker, pickle.loads(worker.results.recv_bytes()))
        except (EOFError, OSError):  # the process died mid-message: _died deals with its object
            return

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind, seq = message[0], message[1]
        summary = self.summary
        if kind == "ready":
            worker.ready = True
        elif kind == "start":
            worker.started = seq
            summary.objects += 1
        elif kind == "part":
            self._part(seq, message[2])
        elif kind == "done":
            worker.assigned.remove(seq)
            worker.started = None
            self._done(seq, message[2])
        else:  # "raise": what parse_object lets through stops the run, as in-process
            raise message[2]

    def _part(self, seq: int, part: Part) -> None:
        summary, outcome = self.summary, self.pending[seq][1]
        events = len(part.lines) + len(part.rejected)
        outcome.events += events
        summary.events += events
        summary.records += events + part.skipped
        summary.skipped += part.skipped
        summary.by_dataset.update(part.by_dataset)
        summary.fields_unmapped += part.unmapped
        for letter in part.letters:
            self._letter(letter)
            outcome.count_letter(letter, summary)
        for letter in part.rejected:
            self._letter(letter)
        self.lines += part.lines
        if len(self.lines) >= self.store.batch_size:
            self._flush()

    def _letter(self, letter: DeadLetter) -> None:
        self.summary.dead_lettered += 1
        self.letters.append(letter)
        self.letter_bytes += len(letter.raw) + len(letter.reason) + len(letter.path) + 200
        if len(self.letters) >= limits.MAX_PENDING_LETTERS or self.letter_bytes >= limits.MAX_PENDING_LETTER_BYTES:
            self._flush()

    def _done(self, seq: int, read: int) -> None:
        _, outcome = self.pending.pop(seq)
        if outcome.failed:
            self.summary.objects_failed += 1
        if self.loader.progress is not None:
            self.loader.progress.done += 1
            self.loader.progress.bytes_read += read
        if self.loader.committed is not None:
            self.finished.append(outcome)
            seconds = self.loader.commit_seconds
            if seconds is not None and time.monotonic() - self.last_commit >= seconds:
                self._flush()

    def _died(self, worker: _Worker) -> None:
        """A parse process ended without being asked: fail the object it was reading, give its queued ones
        to the others, start another in its place."""
        self._receive(worker)  # whatever it sent before dying counts
        worker.process.join()
        code = worker.process.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        if not worker.ready:  # replacing it would fail the same way, forever
            raise UserError(f"a parse process stopped while starting ({how}); its error is above, or use --workers 1")
        for seq in worker.assigned:
            ref, outcome = self.pending[seq]
            if seq != worker.started:
                self.backlog.append((seq, ref, outcome.obj))
                continue
            reason = (
                f"{ref.path}: the parse process reading it stopped ({how}); what it had sent is stored, "
                "and a re-run loads the object again"
            )
            self._part(seq, Part(letters=[DeadLetter(ref.path, 0, "object", reason)]))
            self._done(seq, 0)
        worker.tasks.close()
        worker.results.close()
        self.loader.workers.remove(worker)
        self.loader.workers.append(self.loader._start())

    def _flush(self) -> None:
        """Write what is held, then record the objects whose every event and dead letter is now stored."""
        summary = self.summary
        if self.lines:
            lines, self.lines = self.lines, []
            if self.store.name == "opensearch":
                rejected = self.store.write_encoded(_BulkLines(lines), lines)
            else:
                rejected = self.store.write_encoded(lines)
            summary.written += len(lines) - len(rejected)
            summary.dead_lettered += len(rejected)
            self.letters += rejected
        if self.letters:
            self.store.write_dead_letters(self.letters)
            self.letters, self.letter_bytes = [], 0
        self.last_commit = time.monotonic()
        if self.loader.committed is not None and self.finished:
            self.loader.committed(self.finished)
            self.finished = []
