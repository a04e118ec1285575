"""`siem load`, `siem worker`, `siem parse` and `siem templates`: the commands that move logs in."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from siem import formats
from siem.cli_common import UserError, dataset_arg, instant_arg
from siem.config import Settings
from siem.formats.routing import Router
from siem.ledger import Recorder, SkipFinished, ledger_for
from siem.pipeline import DeadLetter, Event, RunSummary, run
from siem.progress import Progress
from siem.sinks import Store, open_store
from siem.sources import SourceObject
from siem.sources.read_ahead import read_ahead
from siem.sources.selection import Selection


def _objects(
    locations: Sequence[str], settings: Settings, endpoint_url: str | None, selection: Selection | None = None
) -> Iterator[SourceObject]:
    """The objects of every location, each location checked first (it exists and holds something the
    selection takes), so a typo in the last argument is an error before the first one is loaded, not after."""
    selection = selection or Selection()
    client = None
    listings: list[Iterator[SourceObject]] = []
    for location in locations:
        if location.startswith("s3://"):
            from siem.sources.s3 import parse_s3_uri, s3_client

            try:
                parse_s3_uri(location)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            client = client or s3_client(endpoint_url or settings.s3["endpoint_url"])
        elif not Path(location).exists():
            raise UserError(f"{location}: no such file or directory")
        listing = _listing(location, client, selection)
        first = next(listing, None)
        if first is None:
            raise UserError(_nothing_in(location, selection))
        listings.append(itertools.chain([first], listing))
    return itertools.chain.from_iterable(listings)


def _listing(location: str, client: Any, selection: Selection) -> Iterator[SourceObject]:
    if location.startswith("s3://"):
        from siem.sources.s3 import s3_objects

        yield from s3_objects(location, client, selection)
        return
    from siem.sources.local import local_objects

    try:
        yield from local_objects(location, selection)
    except FileNotFoundError as exc:  # removed since the check
        raise UserError(str(exc)) from None


def _nothing_in(location: str, selection: Selection) -> str:
    what = "objects under this prefix" if location.startswith("s3://") else "files in this folder"
    if not location.startswith("s3://"):
        what += " (hidden files are skipped)"
    if selection.active:
        return f"{location}: no {what} match {selection.describe()}"
    return f"{location}: no {what}"


def _selection(args: argparse.Namespace) -> Selection:
    since, until = instant_arg("--since", args.since), instant_arg("--until", args.until)
    selection = Selection(
        datetime.fromisoformat(since) if since else None,
        datetime.fromisoformat(until) if until else None,
        tuple(args.include or ()),
        tuple(args.exclude or ()),
    )
    if selection.since and selection.until and selection.since >= selection.until:
        raise UserError(f"--since {args.since} is not before --until {args.until}")
    return selection


def _ndjson_line(e: Event) -> bytes:
    """The event as `siem parse` prints it, "_id" first; a fast path's JSON bytes are copied, not re-encoded."""
    if e.raw is not None:
        return b'{"_id":' + orjson.dumps(e.id) + b"," + e.raw[1:] + b"\n"
    return orjson.dumps({"_id": e.id, **e.doc}) + b"\n"


class NdjsonSink:
    """`siem parse` output: events to a stream, dead letters to a file (or stderr)."""

    def __init__(self, out: TextIO, dead_letter: TextIO | None) -> None:
        self.out = out.buffer if hasattr(out, "buffer") else None
        self._text = out
        self.dead_letter = dead_letter

    def write(self, events: list[Event]) -> list[DeadLetter]:
        payload = b"".join(_ndjson_line(e) for e in events)
        if self.out is not None:
            self.out.write(payload)
        else:
            self._text.write(payload.decode())
        return []

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            line = orjson.dumps(letter.to_dict()).decode()
            if self.dead_letter is not None:
                self.dead_letter.write(line + "\n")
            else:
                print(f"dead letter: {letter.path}@{letter.offset} [{letter.stage}] {letter.reason}", file=sys.stderr)


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    if args.list_types:
        for name, log_type in formats.registry().items():
            print(f"{name:24} {log_type.description}")
        return 0
    if not args.paths:
        raise UserError("siem parse: give a file or folder (or --list-types)")
    objects: Iterable[SourceObject] = _objects(args.paths, settings, None)
    total = None
    if not any(path.startswith("s3://") for path in args.paths):
        objects = list(objects)  # local files are listed whole anyway: the total is known
        total = len(objects)
    dead_letter = open(args.dead_letter, "w", encoding="utf-8") if args.dead_letter else None  # noqa: SIM115
    summary = RunSummary()
    try:
        sink = NdjsonSink(sys.stdout, dead_letter)
        with Progress("parse", summary, total) as progress:
            run(
                progress.objects(objects),
                sink,
                Router(settings.routes),
                settings.parse_options(),
                dataset_arg(args.type),
                batch_size=500,
                summary=summary,
            )
        sys.stdout.flush()
    finally:
        if dead_letter:
            dead_letter.close()
    if args.json:  # stdout carries the events: the summary is the last line on stderr
        print(orjson.dumps(summary.to_dict()).decode(), file=sys.stderr)
    else:
        print(summary.render(), file=sys.stderr)
    return 0 if summary.ok else 1


def _open_store_for_writing(settings: Settings, install: bool = True) -> Store:
    store = open_store(settings)
    if store.name == "opensearch" and install:
        from siem.templates import install_templates

        install_templates(store.client, settings.opensearch["index_prefix"])  # type: ignore[attr-defined]
    return store


@contextmanager
def _loader(
    store: Store,
    settings: Settings,
    dataset: str | None,
    progress: Progress | None = None,
    commit_seconds: float | None = None,
    workers: int = 1,
    endpoint_url: str | None = None,
) -> Iterator[Callable[..., RunSummary]]:
    """A function loading objects into the store, recording each finished one in the store's ledger: in
    this process (workers 1), or parsed by that many processes (siem/parallel.py) ended on exit."""
    ledger = ledger_for(store)
    recorder = Recorder(ledger) if ledger is not None else None
    if workers > 1:
        from siem.parallel import ParallelLoader

        with ParallelLoader(
            store, settings, dataset, workers, progress, recorder, commit_seconds, endpoint_url
        ) as parallel:
            yield parallel
        return
    router, options = Router(settings.routes), settings.parse_options()

    def load(objects: Iterable[SourceObject], summary: RunSummary | None = None) -> RunSummary:
        objects = read_ahead(objects)  # the next S3 object downloads while this one is parsed
        if progress is not None:
            objects = progress.objects(objects)
        return run(
            objects,
            store,
            router,
            options,
            dataset,
            batch_size=store.batch_size,
            summary=summary,
            committed=recorder,
            commit_seconds=commit_seconds,
        )

    yield load


class _Interrupt:
    """Ctrl-C during a load: the first finishes the object in hand and stops (the summary says what was
    done); a second one stops at once. Outside the main thread (no signals there) it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, *_: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("siem: interrupted; finishing the current object (Ctrl-C again to stop at once)", file=sys.stderr)

    def objects(self, objects: Iterable[SourceObject]) -> Iterator[SourceObject]:
        for obj in objects:
            if self.requested:
                return
            yield obj
            if self.requested:
                return


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    dataset = dataset_arg(args.type)
    workers = _workers(args.workers, settings)
    if args.checkpoint_seconds < 0:
        raise UserError(f"--checkpoint-seconds {args.checkpoint_seconds}: must be 0 or more")
    selection = _selection(args)
    objects: Iterable[SourceObject] = _objects(args.sources, settings, args.endpoint_url, selection)
    summary = RunSummary()
    with _Interrupt() as interrupt:
        store = _open_store_for_writing(settings, not args.no_templates)
        try:
            ledger = ledger_for(store)
            skip = SkipFinished(ledger) if ledger is not None and not args.force else None
            if skip is not None:
                objects = skip(objects)
            total = None
            if not any(source.startswith("s3://") for source in args.sources):
                objects = list(objects)  # local files are listed whole anyway: the total (and an ETA) is known
                total = len(objects)
                workers = _local_workers(workers, objects, bool(args.workers or settings.load["workers"]))
            with (
                Progress("load", summary, total) as progress,
                _loader(
                    store, settings, dataset, progress, args.checkpoint_seconds, workers, args.endpoint_url
                ) as load,
            ):
                load(interrupt.objects(objects), summary)
            summary.objects_skipped = skip.skipped if skip is not None else 0
            store.refresh()
        except KeyboardInterrupt:
            print(
                "siem: interrupted; what was written so far is kept (a re-run skips finished objects and "
                "overwrites the rest, never duplicates)",
                file=sys.stderr,
            )
            return 130
        finally:
            store.close()
    _report(summary, store.name, args.json)
    if interrupt.requested:
        print(f"siem: interrupted after {summary.objects} objects; run the load again for the rest", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Consume S3 event notifications from SQS until interrupted (or one batch with --once)."""
    import signal

    import boto3

    from siem.sources.s3 import s3_client
    from siem.sources.sqs import drain_once

    queue_url = args.queue_url or settings.sqs["queue_url"]
    if not queue_url:
        raise UserError("siem worker: give --queue-url or set sqs.queue_url / SIEM_SQS_QUEUE_URL")
    endpoint = settings.sqs["endpoint_url"]
    sqs = boto3.client("sqs", endpoint_url=endpoint) if endpoint else boto3.client("sqs")
    s3 = s3_client(settings.s3["endpoint_url"])
    workers = _workers(args.workers, settings)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    store = _open_store_for_writing(settings)
    total = RunSummary()
    try:
        with (
            Progress("worker", total) as progress,
            _loader(store, settings, dataset_arg(args.type), progress, workers=workers) as load,
        ):
            while not stopping:
                stats = drain_once(sqs, queue_url, s3, store, load, wait_seconds=settings.sqs["wait_seconds"])
                total.add(stats.summary)
                if stats.messages:
                    logging.getLogger("siem.worker").info(
                        "messages=%d deleted=%d kept=%d events=%d",
                        stats.messages,
                        stats.deleted,
                        stats.kept,
                        stats.summary.events,
                    )
                if args.once:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        try:
            store.refresh()
        finally:
            store.close()
    _report(total, store.name, args.json)
    return 0 if total.ok else 1


def _workers(given: int | None, settings: Settings) -> int:
    """--workers, else load.workers, else the machine's cores: parse processes; 1 parses in this process."""
    if given is None:
        return settings.load["workers"] or os.cpu_count() or 1
    if given < 1:
        raise UserError(f"--workers {given}: must be 1 or more")
    return given


SMALL_LOAD_BYTES = 1 << 20  # local files smaller than this in all load in this process unless --workers says


def _local_workers(workers: int, objects: list[SourceObject], chosen: bool) -> int:
    """Never more processes than objects, and none for a small local load when the count is the default:
    starting them (about a second of CPU) would cost more than they save."""
    if not chosen and sum(obj.size or 0 for obj in objects) < SMALL_LOAD_BYTES:
        return 1
    return min(workers, max(len(objects), 1))


def _report(summary: RunSummary, store_name: str, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps({"store": store_name, **summary.to_dict()}).decode())
    print(f"store: {store_name}\n{summary.render()}", file=sys.stderr)


def cmd_templates(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.opensearch["url"]:
        raise UserError("templates need an OpenSearch cluster: set SIEM_OPENSEARCH_URL or opensearch.url")
    from siem.sinks.opensearch import make_client
    from siem.templates import install_templates

    client = make_client(settings)
    try:
        names = install_templates(client, settings.opensearch["index_prefix"])
    finally:
        client.close()
    if args.json:
        print(orjson.dumps({"installed": names}).decode())
    else:
        print("installed: " + ", ".join(names))
    return 0


WORKERS_HELP = "parse objects in N processes, one writer (default: the machine's cores; 1: in this process)"


def register(sub: Any) -> None:
    """Add the loading commands to the `siem` parser."""
    p = sub.add_parser("load", help="load logs from s3://bucket/prefix or local paths into the store")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--type", help="force a log type instead of routing by key and content")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: config s3.endpoint_url or AWS_ENDPOINT_URL_S3)")
    p.add_argument("--no-templates", action="store_true", help="do not (re)install index templates first")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--since", help="backfill: objects whose key date (YYYY/MM/DD[/HH] folders) is at or after this")
    p.add_argument("--until", help="backfill: only objects whose key date is before this (exclusive)")
    p.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="only paths (relative to the folder or prefix) matching this glob; `*` crosses /; repeatable",
    )
    p.add_argument("--exclude", action="append", metavar="GLOB", help="leave out paths matching this glob; repeatable")
    p.add_argument("--force", action="store_true", help="load objects the ledger has as done and unchanged, too")
    p.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="record finished objects in the ledger at least this often (default 2; 0: after every object)",
    )
    p.add_argument("--workers", type=int, metavar="N", help=WORKERS_HELP)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("worker", help="load objects announced by S3 event notifications on an SQS queue")
    p.add_argument("--queue-url", help="default: sqs.queue_url / SIEM_SQS_QUEUE_URL")
    p.add_argument("--type", help="force a log type instead of routing by key and content")
    p.add_argument("--once", action="store_true", help="process one batch of messages and exit")
    p.add_argument("--workers", type=int, metavar="N", help=WORKERS_HELP)
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("parse", help="print normalized events of a file as NDJSON (what does my log become?)")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--type", default="auto", help="log type, or auto (default)")
    p.add_argument("--dead-letter", metavar="FILE", help="write bad records here as NDJSON with reason and position")
    p.add_argument("--list-types", action="store_true", help="list the log types")
    p.add_argument("--json", action="store_true", help="print the run summary as one JSON line on stderr")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("templates", help="index templates")
    p.add_argument("action", choices=("install",))
    p.add_argument("--json", action="store_true", help="print the installed template names as JSON")
    p.set_defaults(func=cmd_templates)
