"""The `siem` command: load, worker, parse, pivot, dead-letters, templates.

Errors a user can fix (bad config, unknown type, unreachable cluster) print one clear line and
exit 2; a run that dead-lettered records or failed objects exits 1 after printing its summary,
so a cron job or CI step notices; success exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from siem import formats
from siem.config import ConfigError, Settings, load_settings
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, RunSummary, run
from siem.sinks import EventQuery, Store, open_store
from siem.sources import SourceObject


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def _objects(locations: Sequence[str], settings: Settings, endpoint_url: str | None) -> Iterator[SourceObject]:
    """The objects of every location, each location checked first (it exists and holds something), so a
    typo in the last argument is an error before the first one is loaded, not after."""
    from siem.sources.local import local_objects

    client = None
    for location in locations:
        if location.startswith("s3://"):
            from siem.sources.s3 import first_key, parse_s3_uri, s3_client

            try:
                parse_s3_uri(location)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            client = client or s3_client(endpoint_url or settings.s3["endpoint_url"])
            if first_key(location, client) is None:
                raise UserError(f"{location}: no objects under this prefix")
        else:
            path = Path(location)
            if not path.exists():
                raise UserError(f"{location}: no such file or directory")
            if path.is_dir() and next(local_objects(location), None) is None:
                raise UserError(f"{location}: no files in this folder (hidden files are skipped)")
    return _each_object(locations, client)


def _each_object(locations: Sequence[str], client: Any) -> Iterator[SourceObject]:
    from siem.sources.local import local_objects

    for location in locations:
        if location.startswith("s3://"):
            from siem.sources.s3 import s3_objects

            yield from s3_objects(location, client)
        else:
            try:
                yield from local_objects(location)
            except FileNotFoundError as exc:  # removed since the check
                raise UserError(str(exc)) from None


def _dataset(value: str | None) -> str | None:
    if value in (None, "auto"):
        return None
    if value not in formats.registry():
        raise UserError(f"unknown log type {value!r}; `siem parse --list-types` lists them")
    return value


class NdjsonSink:
    """`siem parse` output: events to a stream, dead letters to a file (or stderr)."""

    def __init__(self, out: TextIO, dead_letter: TextIO | None) -> None:
        self.out = out.buffer if hasattr(out, "buffer") else None
        self._text = out
        self.dead_letter = dead_letter

    def write(self, events: list[Event]) -> list[DeadLetter]:
        payload = b"".join(orjson.dumps({"_id": e.id, **e.doc}) + b"\n" for e in events)
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
    objects = _objects(args.paths, settings, None)
    dead_letter = open(args.dead_letter, "w", encoding="utf-8") if args.dead_letter else None  # noqa: SIM115
    try:
        sink = NdjsonSink(sys.stdout, dead_letter)
        summary = run(
            objects,
            sink,
            Router(settings.routes),
            settings.parse_options(),
            _dataset(args.type),
            batch_size=500,
        )
        sys.stdout.flush()
    finally:
        if dead_letter:
            dead_letter.close()
    print(summary.render(), file=sys.stderr)
    return 0 if summary.ok else 1


def _open_store_for_writing(settings: Settings, install: bool = True) -> Store:
    store = open_store(settings)
    if store.name == "opensearch" and install:
        from siem.templates import install_templates

        install_templates(store.client, settings.opensearch["index_prefix"])  # type: ignore[attr-defined]
    return store


def _loader(store: Store, settings: Settings, dataset: str | None) -> Callable[[Iterable[SourceObject]], RunSummary]:
    router, options = Router(settings.routes), settings.parse_options()

    def load(objects: Iterable[SourceObject]) -> RunSummary:
        return run(objects, store, router, options, dataset, batch_size=store.batch_size)

    return load


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
    dataset = _dataset(args.type)
    objects = _objects(args.sources, settings, args.endpoint_url)  # every source checked before any is loaded
    with _Interrupt() as interrupt:
        store = _open_store_for_writing(settings, not args.no_templates)
        try:
            summary = _loader(store, settings, dataset)(interrupt.objects(objects))
            store.refresh()
        except KeyboardInterrupt:
            print(
                "siem: interrupted; what was written so far is kept (a re-run overwrites it, never duplicates)",
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
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    store = _open_store_for_writing(settings)
    load = _loader(store, settings, _dataset(args.type))
    total = RunSummary()
    try:
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


def _report(summary: RunSummary, store_name: str, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps({"store": store_name, **summary.to_dict()}).decode())
    print(f"store: {store_name}\n{summary.render()}", file=sys.stderr)


def _describe(doc: dict[str, Any]) -> str:
    event = doc.get("event", {})
    http = doc.get("http", {})
    if http.get("request", {}).get("method") or doc.get("url"):
        status = http.get("response", {}).get("status_code", "")
        return f"{http.get('request', {}).get('method', '')} {doc.get('url', {}).get('original', '')} {status}".strip()
    outcome = f" ({event['outcome']})" if event.get("outcome") else ""
    if event.get("action"):
        return f"{event['action']}{outcome}"
    if doc.get("message"):
        return str(doc["message"])[:120]
    dest = doc.get("destination", {})
    if dest:
        where = dest.get("domain") or dest.get("ip") or ""
        port = f":{dest['port']}" if dest.get("port") else ""
        return f"{'/'.join(event.get('type', []))} → {where}{port}{outcome}"
    return ""


def _instant_arg(flag: str, value: str | None) -> str | None:
    """An ISO 8601 date or time as a UTC instant string; a time without a zone is taken as UTC."""
    if value is None:
        return None
    from datetime import UTC, datetime

    from siem.normalize import iso_utc

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{flag} {value!r} is not an ISO 8601 date or time (e.g. 2024-05-01T09:00:00Z)") from None
    try:
        return iso_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except (OverflowError, ValueError):
        raise UserError(f"{flag} {value!r} is out of range (years 1 to 9999 in UTC)") from None


def _limit(value: int) -> int:
    if value < 0:
        raise UserError(f"--limit {value}: must be 0 or more")
    return value


def _open_store_for_reading(settings: Settings) -> Store:
    """Read-only commands open the embedded store read-only: they never block (or are blocked by) other readers."""
    if settings.opensearch["url"]:
        return open_store(settings)
    from siem.sinks.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir, read_only=True)


def cmd_pivot(args: argparse.Namespace, settings: Settings) -> int:
    if not args.ip and not args.user:
        raise UserError("siem pivot: give --ip and/or --user")
    if args.ip:
        from siem.normalize import valid_ip

        canonical = valid_ip(args.ip)
        if canonical is None:
            raise UserError(f"--ip {args.ip!r} is not an IP address")
        args.ip = canonical
    query = EventQuery(
        start=_instant_arg("--since", args.since),
        end=_instant_arg("--until", args.until),
        datasets=tuple(args.dataset or ()),
        ip=args.ip,
        user=args.user,
        size=_limit(args.limit),
    )
    store = _open_store_for_reading(settings)
    try:
        total = store.count(query)
        docs = store.search(query)
    finally:
        store.close()
    if args.format == "json":
        for doc in docs:
            print(orjson.dumps(doc).decode())
    else:
        print(f"{'@timestamp':27} {'dataset':22} {'source.ip':18} {'user.name':20} what")
        for doc in docs:
            print(
                f"{doc.get('@timestamp', ''):27} {doc.get('event', {}).get('dataset', ''):22} "
                f"{doc.get('source', {}).get('ip', '') or '':18} {doc.get('user', {}).get('name', '') or '':20} "
                f"{_describe(doc)}"
            )
    print(f"{len(docs)} of {total} events", file=sys.stderr)
    return 0


def cmd_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    """What could not be indexed, with where and why: the other half of every run summary."""
    size = _limit(args.limit)
    store = _open_store_for_reading(settings)
    try:
        letters = store.dead_letters(size=size)
    finally:
        store.close()
    for letter in letters:
        if args.format == "json":
            print(orjson.dumps(letter).decode())
        else:
            print(f"{letter['path']}@{letter['offset']} [{letter['stage']}] {letter['reason']}")
    print(f"{len(letters)} dead letters shown (store: {store.name})", file=sys.stderr)
    return 0


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
    print("installed: " + ", ".join(names))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siem", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config file (default: $SIEM_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and retries")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("load", help="load logs from s3://bucket/prefix or local paths into the store")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--type", help="force a log type instead of routing by key and content")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: config s3.endpoint_url or AWS_ENDPOINT_URL_S3)")
    p.add_argument("--no-templates", action="store_true", help="do not (re)install index templates first")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("worker", help="load objects announced by S3 event notifications on an SQS queue")
    p.add_argument("--queue-url", help="default: sqs.queue_url / SIEM_SQS_QUEUE_URL")
    p.add_argument("--type", help="force a log type instead of routing by key and content")
    p.add_argument("--once", action="store_true", help="process one batch of messages and exit")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("parse", help="print normalized events of a file as NDJSON (what does my log become?)")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--type", default="auto", help="log type, or auto (default)")
    p.add_argument("--dead-letter", metavar="FILE", help="write bad records here as NDJSON with reason and position")
    p.add_argument("--list-types", action="store_true", help="list the log types")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("pivot", help="every event of one IP and/or user, across all log types, oldest first")
    p.add_argument("--ip")
    p.add_argument("--user")
    p.add_argument("--since", help="ISO 8601 start (inclusive)")
    p.add_argument("--until", help="ISO 8601 end (exclusive)")
    p.add_argument("--dataset", action="append", help="restrict to a log type (repeatable)")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_pivot)

    p = sub.add_parser("dead-letters", help="list records and objects that could not be indexed, with the reason")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("templates", help="index templates")
    p.add_argument("action", choices=("install",))
    p.set_defaults(func=cmd_templates)

    from siem.detect.cli_detect import register as register_detect
    from siem.detect.cli_rules import register as register_rules

    register_rules(sub)
    register_detect(sub)
    return parser


_QUIET_LOGGERS = ("urllib3", "opensearch", "botocore")  # a downed cluster is one line, not a page of retries


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    quieted = {} if args.verbose else {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return _main(args)
    finally:  # main() is also called in-process (loader/, tests): leave logging as it was
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)


def _main(args: argparse.Namespace) -> int:
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        return int(args.func(args, settings))
    except (ConfigError, UserError) as exc:
        print(f"siem: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siem: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        from siem.sinks.embedded import StoreInUse
        from siem.sinks.opensearch import StoreUnavailable, redact_url

        if isinstance(exc, StoreInUse):
            print(f"siem: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, BotoCoreError | ClientError):
            service = "S3" if args.command in ("load", "parse") else "AWS"
            print(f"siem: {service} error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
        if isinstance(exc, StoreUnavailable | ConnectionError) or type(exc).__module__.startswith("opensearchpy"):
            message = str(exc)
            url = settings.opensearch["url"] if settings else None
            if url:  # credentials in the URL never reach the terminal or a log collector
                message = message.replace(url, redact_url(url))
            if settings and settings.opensearch_password:
                message = message.replace(settings.opensearch_password, "***")
            print(f"siem: OpenSearch error: {_one_line(message)}", file=sys.stderr)
            return 2
        raise


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
