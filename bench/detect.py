"""The detection runner over ~1M indexed events: batched selection vs one query per rule, per store.

Events are synthetic CloudTrail sign-ins: 99 % from a few common actions, 1 % from many rare ones;
the rules are selective single-event rules on rare actions (what most detections look like) plus
suppressed ones, so the cost measured is mostly the per-rule query round trips batching removes.
Each round clears the alerts, then runs one retro-hunt cycle over everything with the engine as
it is (``select_many`` where the engine has it: one ``_msearch`` for every rule) and with
``select_many`` hidden (one query per rule). Interleaved rounds; medians reported.

    .venv/bin/python bench/detect.py --store embedded
    SIEM_OPENSEARCH_URL=http://127.0.0.1:9250 .venv/bin/python bench/detect.py --store opensearch

If indexing the requested size would exceed ``--load-budget`` seconds, loading stops there and the
size actually used is printed with the reason.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siem.detect.rules import load_paths  # noqa: E402
from siem.detect.runner import Runner, make_engine  # noqa: E402
from siem.detect.state import open_state, store_counter  # noqa: E402
from siem.normalize import iso_utc  # noqa: E402
from siem.pipeline import Event  # noqa: E402

COMMON = [f"Describe{i}" for i in range(20)]
RARE = [f"Rare{i}" for i in range(1000)]
END = datetime(2026, 3, 2, tzinfo=UTC)


def events(first: int, count: int, rng: random.Random) -> list[Event]:
    out = []
    for n in range(first, first + count):
        action = rng.choice(RARE) if rng.random() < 0.01 else rng.choice(COMMON)
        ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"
        user = f"user{rng.randrange(500)}"
        ts = END - timedelta(seconds=rng.randrange(86400))
        doc = {
            "@timestamp": iso_utc(ts),
            "event": {
                "dataset": "aws.cloudtrail",
                "action": action,
                "outcome": "failure" if rng.random() < 0.2 else "success",
                "ingested": iso_utc(ts + timedelta(minutes=5)),
            },
            "source": {"ip": ip},
            "user": {"name": user},
            "related": {"ip": [ip], "user": [user]},
        }
        out.append(Event(f"bench-{n:09d}", "aws.cloudtrail", doc))
    return out


def write_rules(folder: Path, count: int) -> list[Any]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        extra = "suppress: {by: [source.ip], for: 1h}\n" if i % 5 == 4 else ""
        (folder / f"r{i:03d}.yml").write_text(
            f"title: rare action {i}\nid: 33333333-0000-0000-0000-{i:012d}\nstatus: test\n"
            "logsource: {product: aws, service: cloudtrail}\n"
            f"detection:\n  sel: {{eventName: {RARE[i * 7]}}}\n  condition: sel\nlevel: low\n{extra}"
        )
    rules = load_paths([folder])
    assert all(not r.problems for r in rules), [r.problems for r in rules]
    return rules


class OnePerRule:
    """The engine with ``select_many`` hidden: the runner falls back to one query per rule."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name = engine, engine.name

    def select(self, rule: Any, scope: Any) -> Any:
        return self.engine.select(rule, scope)

    def correlate(self, rule: Any, scope: Any) -> Any:
        return self.engine.correlate(rule, scope)

    def fetch(self, ids: list[str]) -> Any:
        return self.engine.fetch(ids)


def open_bench_store(kind: str, tmp: Path) -> Any:
    if kind == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        return EmbeddedStore(tmp / "data")
    from opensearchpy import OpenSearch

    from siem.sinks.opensearch import OpenSearchStore
    from siem.templates import install_templates

    url = os.environ.get("SIEM_OPENSEARCH_URL")
    if not url:
        raise SystemExit("set SIEM_OPENSEARCH_URL for --store opensearch")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    client = OpenSearch(hosts=[url], timeout=300, http_compress=True)
    install_templates(client, prefix)
    return OpenSearchStore(client, prefix=prefix, batch_size=5000)


def drop(store: Any) -> None:
    if store.name != "opensearch":
        return
    client, prefix = store.client, store.prefix
    client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    for name in ("events", "deadletter", "alerts", "outbox"):
        client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
    for name in ("settings", "ecs"):
        client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


def clear_alerts(store: Any) -> None:
    if store.name == "opensearch":  # emptied, not deleted: re-creating the index is not what we measure
        body = {"query": {"match_all": {}}}
        params = {"refresh": "true", "conflicts": "proceed", "ignore": 404}
        store.client.indices.refresh(index=f"{store.prefix}-alerts", params={"ignore": 404})
        store.client.delete_by_query(index=f"{store.prefix}-alerts", body=body, params=params)
    else:
        open_state(store)  # creates the table on first use
        store.db.execute("DELETE FROM alerts")


def load(store: Any, wanted: int, budget: float, rng: random.Random) -> int:
    started, done, chunk = time.monotonic(), 0, 20000
    while done < wanted:
        batch = events(done, min(chunk, wanted - done), rng)
        for start in range(0, len(batch), store.batch_size):
            rejected = store.write(batch[start : start + store.batch_size])
            assert not rejected, rejected[:1]
        done += len(batch)
        elapsed = time.monotonic() - started
        if done < wanted and elapsed > min(30.0, budget / 4) and elapsed / done * wanted > budget:
            print(
                f"  loading {wanted:,} events would take ~{elapsed / done * wanted:.0f}s here (budget {budget:.0f}s):"
                f" stopping at {done:,} events ({done / elapsed:,.0f} events/s indexing)"
            )
            break
    store.refresh()
    print(f"  indexed {done:,} events in {time.monotonic() - started:.1f}s")
    return done


def bench(kind: str, args: argparse.Namespace) -> None:
    print(f"[{kind}]")
    with tempfile.TemporaryDirectory() as tmp:
        rules = write_rules(Path(tmp) / "rules", args.rules)
        store = open_bench_store(kind, Path(tmp))
        try:
            load(store, args.events, args.load_budget, random.Random(7))
            engine = make_engine(store)
            modes = {"batched": engine, "one query per rule": OnePerRule(engine)}
            if not hasattr(engine, "select_many"):
                print(f"  note: the {engine.name} engine has no select_many; both modes query once per rule")
            times: dict[str, list[float]] = {m: [] for m in modes}
            results: dict[str, Any] = {}
            since, until = iso_utc(END - timedelta(days=2)), iso_utc(END)
            for _ in range(args.rounds):
                for mode, eng in modes.items():
                    clear_alerts(store)
                    runner = Runner(eng, open_state(store), counter=store_counter(store))
                    report = runner.run_cycle(rules, since=since, until=until)
                    assert report.exit_code == 0, report.render()
                    times[mode].append(report.seconds)
                    results[mode] = (report.events_scanned, report.new)
            for mode, secs in times.items():
                scanned, new = results[mode]
                median = statistics.median(secs)
                print(
                    f"  {mode:20} {median:8.2f}s  {scanned / median:12,.0f} events/s"
                    f"  ({len(rules)} rules, {scanned:,} events scanned, {new:,} alerts)"
                )
            ratio = statistics.median(times["one query per rule"]) / statistics.median(times["batched"])
            print(f"  batched is {ratio:.1f}x one-query-per-rule (target >= 5x)")
        finally:
            drop(store)
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("embedded", "opensearch", "both"), default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load-budget", type=float, default=300.0, help="seconds allowed for indexing")
    args = parser.parse_args()
    kinds = ["embedded", "opensearch"] if args.store == "both" else [args.store]
    for kind in kinds:
        bench(kind, args)


if __name__ == "__main__":
    main()
