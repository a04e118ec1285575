"""`siem pivot` and `siem dead-letters`: the read-only questions an analyst asks of the store."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from siem.cli_common import UserError, check_limit, instant_arg, open_store_for_reading
from siem.config import Settings
from siem.pivot.query import Entity, PivotQuery, ip_entity, run_pivot
from siem.pivot.render_html import render_html
from siem.pivot.render_table import render_csv, render_json, render_table


def _entity(args: argparse.Namespace) -> Entity:
    given = [(k, v) for k, v in (("ip", args.ip), ("user", args.user), ("trace", args.trace_id)) if v is not None]
    if len(given) != 1:
        raise UserError("siem pivot: give exactly one of --ip, --user, --trace-id")
    kind, value = given[0]
    if kind == "ip":
        try:
            return ip_entity(value)
        except ValueError as exc:
            raise UserError(f"--ip {exc}") from None
    if not value.strip():
        raise UserError(f"--{kind.replace('trace', 'trace-id')} needs a value")
    return Entity(kind, value)


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"--tz {name!r} is not a known time zone (e.g. Europe/Paris, America/New_York)") from None


def cmd_pivot(args: argparse.Namespace, settings: Settings) -> int:
    """Everything one IP, network, user or trace id did, across every dataset: see docs/pivot.md."""
    if args.page < 1:
        raise UserError(f"--page {args.page}: pages start at 1")
    query = PivotQuery(
        entity=_entity(args),
        start=instant_arg("--since", args.since),
        end=instant_arg("--until", args.until),
        datasets=tuple(args.dataset or ()),
        newest=args.newest,
        page=args.page,
        limit=check_limit(args.limit),
    )
    zone = _zone(args.tz)
    store = open_store_for_reading(settings)
    try:
        html = bool(args.html)
        result = run_pivot(store, query, expand=args.expand or html, alerts=html, histogram=html)
    finally:
        store.close()
    if args.html:
        Path(args.html).write_text(render_html(result, zone), encoding="utf-8")
        print(f"incident timeline written to {args.html}", file=sys.stderr)
    if not args.expand:
        result.expand = None
    result.alerts = None
    if args.format == "json":
        text = render_json(result)
    elif args.format == "csv":
        text = render_csv(result, zone)
    else:
        tty = sys.stdout.isatty()
        color = tty and not args.no_color and not os.environ.get("NO_COLOR")
        text = render_table(result, zone, color, shutil.get_terminal_size().columns if tty else None)
    if text:
        print(text)
    first, last = (query.offset + 1 if result.rows else 0), query.offset + len(result.rows)
    print(
        f"{len(result.rows)} of {result.total} events (page {query.page}, rows {first}-{last},"
        f" {'newest' if query.newest else 'oldest'} first; store: {result.store})",
        file=sys.stderr,
    )
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
    p = sub.add_parser(
        "pivot",
        help="everything one IP/CIDR, user or trace id did, across all log types: per-dataset summary and timeline",
    )
    p.add_argument("--ip", help="an IP address or a CIDR network (10.0.0.0/8, 2001:db8::/32)")
    p.add_argument("--user", help="a user name, matched case-insensitively")
    p.add_argument("--trace-id", help="a trace.id or http.request.id (ALB X-Amzn-Trace-Id, app request ids)")
    p.add_argument("--since", help="ISO 8601 start (inclusive)")
    p.add_argument("--until", help="ISO 8601 end (exclusive)")
    p.add_argument("--dataset", action="append", help="restrict to a log type (repeatable)")
    p.add_argument("--newest", action="store_true", help="newest events first")
    p.add_argument("--page", type=int, default=1, help="page number (of --limit rows), from 1")
    p.add_argument("--limit", type=int, default=200, help="rows per page")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--tz", help="show times in this zone (e.g. Europe/Paris); default UTC")
    p.add_argument("--no-color", action="store_true", help="no colour even on a terminal")
    p.add_argument("--expand", action="store_true", help="also list the users seen with an IP / the IPs with a user")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained incident timeline page")
    p.set_defaults(func=cmd_pivot)

    p = sub.add_parser("dead-letters", help="list records and objects that could not be indexed, with the reason")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_dead_letters)
