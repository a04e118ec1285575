"""``siem detect run|serve`` and ``siem alerts list|show|ack|close`` — the same commands on both stores.

Exit codes: 0 every rule ran; 1 a rule was skipped (cannot run here), failed (retried next cycle)
or a rule file did not load — the summary names it; 2 a problem to fix first (bad path, bad
``--since``, unknown alert id), one line, no traceback.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

from siem.detect.alerts import STATUSES


def register(sub: Any) -> None:
    p = sub.add_parser("detect", help="run detection rules over the stored events")
    actions = p.add_subparsers(dest="detect_command", required=True)
    run = actions.add_parser("run", help="one detection cycle (from each rule's checkpoint, or a retro-hunt)")
    run.add_argument("--once", action="store_true", help="one cycle, then exit (the only mode of `run`)")
    run.add_argument("--rules", nargs="+", metavar="PATH", help="rule files or folders (default: detect.rules)")
    run.add_argument("--since", help="retro-hunt from this @timestamp (ISO 8601, inclusive); checkpoints untouched")
    run.add_argument("--until", help="retro-hunt until this @timestamp (ISO 8601, exclusive; default now)")
    run.add_argument("--json", action="store_true", help="print the cycle summary as JSON on stdout")
    run.set_defaults(func=cmd_run)
    serve = actions.add_parser("serve", help="run every rule at its schedule interval until SIGTERM")
    serve.add_argument("--rules", nargs="+", metavar="PATH", help="rule files or folders (default: detect.rules)")
    serve.set_defaults(func=cmd_serve)

    p = sub.add_parser("alerts", help="list, show, acknowledge and close alerts")
    actions = p.add_subparsers(dest="alerts_command", required=True)
    lst = actions.add_parser("list", help="alerts, most recently seen first")
    lst.add_argument("--status", choices=STATUSES)
    lst.add_argument("--rule", help="rule id or title")
    lst.add_argument("--since", help="last seen at or after this time (ISO 8601)")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--json", action="store_true", help="one alert document per line")
    lst.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="one alert document, with its notification states")
    show.add_argument("id")
    show.set_defaults(func=cmd_show)
    for status, name in (("acknowledged", "ack"), ("closed", "close")):
        cmd = actions.add_parser(name, help=f"mark alerts {status} (who: --by or $USER; why: --reason)")
        cmd.add_argument("ids", nargs="+", metavar="ID")
        cmd.add_argument("--reason", help="why (kept on the alert)")
        cmd.add_argument("--by", help="who (default: $USER)")
        cmd.set_defaults(func=cmd_status, status=status)


def _user_error(message: str) -> Exception:
    from siem.cli_common import UserError

    return UserError(message)


@contextmanager
def _opened(settings: Any):
    """(store, state, outbox or None); templates installed on OpenSearch (idempotent)."""
    from siem.detect.state import open_state
    from siem.sinks import open_store

    try:
        store = open_store(settings)
    except Exception as exc:  # DuckDB allows one writing process per file
        if "duckdb" in type(exc).__module__ and "lock" in str(exc).lower():
            raise _user_error(f"the embedded store is in use by another process (siem detect serve?): {exc}") from None
        raise
    try:
        if store.name == "opensearch":
            from siem.templates import install_templates

            install_templates(store.client, settings.opensearch["index_prefix"])  # type: ignore[attr-defined]
        yield store, open_state(store), _outbox(store, settings)
    finally:
        store.close()


def _outbox(store: Any, settings: Any) -> Any:
    try:
        from siem.detect.notify import Outbox
    except ImportError:  # notifications not installed: alerts are still stored
        return None
    return Outbox(store, getattr(settings, "notifications", ()) or ())


def _rules(paths: list[str] | None, settings: Any) -> tuple[list[Any], list[str]]:
    import logging

    from siem.detect.rules import RuleError, load_file, rule_files

    logging.getLogger("sigma").setLevel(logging.ERROR)
    try:
        files = rule_files(paths or settings.detect["rules"])
    except RuleError as exc:
        raise _user_error(str(exc)) from None
    from siem.detect.mapping import Mapper

    mapper = Mapper()
    rules, errors = [], []
    for file in files:
        try:
            rules.extend(load_file(file, mapper))
        except RuleError as exc:
            errors.append(str(exc))
    return rules, errors


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """The objects alive before the cycles (the rules, pySigma's objects behind them) left out of
    the garbage collections that a cycle's many short-lived response objects trigger: they would
    walk them every time. Measured on the 1M-event retro-hunt of bench/detect.py: 10-20% of the
    client's CPU time in a cycle. Unfrozen after, for a caller that goes on (tests call in process)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _runner(store: Any, state: Any, outbox: Any, settings: Any) -> Any:
    from siem.detect.runner import Runner, make_engine
    from siem.detect.state import store_counter

    cfg = settings.detect
    return Runner(
        make_engine(store),
        state,
        overlap_seconds=cfg["overlap_seconds"],
        settle_seconds=cfg["settle_seconds"],
        lookback_seconds=cfg["lookback_seconds"],
        max_event_ids=cfg["max_event_ids"],
        outbox=outbox,
        counter=store_counter(store),
    )


def cmd_run(args: argparse.Namespace, settings: Any) -> int:
    from siem.cli_common import instant_arg

    since, until = instant_arg("--since", args.since), instant_arg("--until", args.until)
    if since and until and since >= until:
        raise _user_error(f"--since {args.since} is not before --until {args.until}")
    rules, errors = _rules(args.rules, settings)
    delivery = None
    with _opened(settings) as (store, state, outbox):
        runner = _runner(store, state, outbox, settings)
        with _heap_frozen():
            report = runner.run_cycle(rules, since=since, until=until)
        report.load_errors = errors
        state.refresh()
        if outbox is not None and outbox.routes:  # a cron-driven `run --once` notifies too
            delivery = _deliver(outbox)
    if delivery:
        print(f"notifications: {delivery}", file=sys.stderr)
    if args.json:
        print(orjson.dumps({"store": store.name, **report.to_dict()}).decode())
    print(f"store: {store.name}\n{report.render()}", file=sys.stderr)
    return report.exit_code


def cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    rules, errors = _rules(args.rules, settings)
    for error in errors:
        print(f"siem: cannot load {error}", file=sys.stderr)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()  # the cycle in progress finishes; the loop exits after it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_cycle(report: Any) -> None:
        print(report.render(), file=sys.stderr, flush=True)

    with _opened(settings) as (store, state, outbox):
        runner = _runner(store, state, outbox, settings)

        def after() -> None:
            state.refresh()
            if outbox is not None and outbox.routes:
                _deliver(outbox)

        def on_start(due: list[Any]) -> None:
            print(f"cycle: {len(due)} rules due", file=sys.stderr, flush=True)

        with _heap_frozen():
            runner.serve(rules, stop.is_set, stop.wait, on_cycle=on_cycle, after_cycle=after, on_start=on_start)
    print("siem detect serve: stopped", file=sys.stderr)
    return 0


def _deliver(outbox: Any) -> str:
    """One delivery pass; a failure is the outbox's to retry (recorded there), never the cycle's."""
    import logging

    try:
        report = outbox.deliver_due()
    except Exception as exc:
        logging.getLogger("siem.detect").warning("notification delivery: %s", exc)
        return f"delivery pass failed ({type(exc).__name__}); pending notifications are retried next time"
    return f"{report.sent} sent, {report.retried} to retry, {report.dead} dead"


def _with_notifications(doc: dict[str, Any], outbox: Any) -> dict[str, Any]:
    if outbox is None:
        return doc
    try:
        states = outbox.states(doc["alert"]["id"])
    except Exception:  # no outbox index/table yet
        return doc
    if states:
        doc["alert"]["notifications"] = {route: s.state for route, s in sorted(states.items())}
    return doc


def cmd_list(args: argparse.Namespace, settings: Any) -> int:
    from siem.cli_common import instant_arg

    since = instant_arg("--since", args.since)
    with _opened(settings) as (_store, state, _outbox):
        docs = state.search(status=args.status, rule=args.rule, since=since, size=args.limit)
    for doc in docs:
        if args.json:
            print(orjson.dumps(doc).decode())
        else:
            a = doc["alert"]
            print(
                f"{a['id']}  {a['status']:12} {a['last_seen']:27} {a['count']:>6}  "
                f"{doc['rule']['name'][:40]:40}  {a['reason']}"
            )
    print(f"{len(docs)} alerts", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, settings: Any) -> int:
    with _opened(settings) as (_store, state, outbox):
        doc = state.get([args.id]).get(args.id)
        if doc is None:
            raise _user_error(f"no alert {args.id}")
        doc = _with_notifications(doc, outbox)
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_status(args: argparse.Namespace, settings: Any) -> int:
    who = args.by or os.environ.get("USER") or _login()
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with _opened(settings) as (_store, state, outbox):
        found = state.get(args.ids)
        missing = [i for i in args.ids if i not in found]
        if missing:
            raise _user_error(f"no alert {', '.join(missing)}")
        docs = []
        for doc in found.values():
            doc["alert"].update(status=args.status, status_by=who, status_reason=args.reason, status_at=at)
            docs.append(doc)
        if args.status == "closed" and outbox is not None:
            for doc in docs:  # recorded before the status: a crash in between re-records (a no-op)
                _resolve(doc, outbox)
        state.save(docs, {})
        state.refresh()
    for doc in docs:
        print(f"{doc['alert']['id']}: {args.status} by {who}" + (f" ({args.reason})" if args.reason else ""))
    return 0


def _resolve(doc: dict[str, Any], outbox: Any) -> None:
    """A resolve to every route that got this alert's trigger (PagerDuty closes its incident)."""
    try:
        triggered = [route for route, s in outbox.states(doc["alert"]["id"]).items() if s.kind == "trigger"]
    except Exception:
        return
    routes = [outbox.routes[name] for name in triggered if name in outbox.routes]
    if routes:
        outbox.enqueue(doc, routes, "resolve")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
