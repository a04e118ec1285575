"""`siem pivot` and `siem dead-letters`: the read-only questions an analyst asks of the store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from siem.cli_common import UserError, check_limit, instant_arg, open_store_for_reading
from siem.config import Settings
from siem.sinks import EventQuery


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
        start=instant_arg("--since", args.since),
        end=instant_arg("--until", args.until),
        datasets=tuple(args.dataset or ()),
        ip=args.ip,
        user=args.user,
        size=check_limit(args.limit),
    )
    store = open_store_for_reading(settings)
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
    size = check_limit(args.limit)
    store = open_store_for_reading(settings)
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


def register(sub: Any) -> None:
    """Add the read-only analyst commands to the `siem` parser."""
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
