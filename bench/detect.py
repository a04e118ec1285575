"""A detection cycle over ~1M indexed events: batched selection vs one query per rule, per store.

Rules: every shipped rule (``detections/``) plus every runnable SigmaHQ rule (``../shared/sigmahq/rules``,
or ``$SIEM_SHARED_DIR/sigmahq/rules``); rules that do not load or map are left out (counted). The
runner puts the single-event rules — and, in a scheduled cycle, the member selection of correlation
rules — in one batch (``select_many``: one ``_msearch`` per page on OpenSearch, one scan per dataset
set on DuckDB), then hands every correlation to the engine together (``correlate_many``: side by
side on OpenSearch; DuckDB has none and runs them in turn). "One query per rule" hides both: each
rule's selection and each correlation is its own query, one after the other.

Events: the bundled samples (``tests/data/samples/logs``) parsed through siem's real parsers, then
replicated with varied IPs, user names and times (spread over one day) in a fixed mix of datasets
(printed). The CloudTrail samples are all writes (CreateUser, CreateGroup...): 85% of CloudTrail
copies are read-only calls generated as AWS writes them instead (``representative.py``: STS, EC2,
S3, KMS, SSM... by roles, CI users and services), as in a working account. The samples are rich in
attacks (they were published to show them), production traffic is not: each template (sample or
generated call) is classified once with the reference evaluator, and the copies are drawn so
that about ``--suspicious-share`` of them (0.2% by default) come from templates some rule matches
(every assumed-role call matches SigmaHQ's "AWS STS AssumeRole Misuse": those count as matched); the
rest are the benign samples of the same dataset. The share of events that match is printed.

Each round clears the alerts (and the node's request cache) and runs one cycle with the engine as it is
(batched) and with ``select_many`` hidden (one query per rule); rounds are interleaved and medians reported. Two
windows: every event at once (a retro-hunt: the node's work on the events dominates) and the last
``--recent`` minutes (the size of a scheduled cycle's window: per-query costs dominate). The
scheduled window is taken on ``@timestamp`` here; a real scheduled cycle selects on
``event.ingested``, which the generator sets 30 s to 10 min after ``@timestamp``. The floor is
measured in the same run: one full read of the ``doc`` column and
one ``json_extract`` of one path over the events table (DuckDB), one ``match_all`` count and one
``match_all`` query for the first page (OpenSearch).

    .venv/bin/python bench/detect.py                      # both stores (OpenSearch at $SIEM_OPENSEARCH_URL)
    .venv/bin/python bench/detect.py --store embedded --events 200000

The default size is 1M events, cut to what indexes within ``--load-budget`` seconds (180) per store;
the size used, and why, is printed.
"""

from __future__ import annotations

import argparse
import gc
import io
import ipaddress
import itertools
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siem.detect.evaluate import matches  # noqa: E402
from siem.detect.rules import Rule, load_paths  # noqa: E402
from siem.detect.runner import Runner, make_engine  # noqa: E402
from siem.detect.state import open_state, store_counter  # noqa: E402
from siem.formats.base import ParseOptions  # noqa: E402
from siem.formats.routing import Router  # noqa: E402
from siem.normalize import iso_utc  # noqa: E402
from siem.pipeline import Event, parse_object  # noqa: E402
from siem.sources import SourceObject  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from representative import cloudtrail_read_records  # noqa: E402

SAMPLES = REPO / "tests" / "data" / "samples" / "logs"
SHARED = Path(os.environ.get("SIEM_SHARED_DIR", REPO.parent / "shared"))
END = datetime(2026, 3, 2, tzinfo=UTC)
DETECT_MEMORY = "2GB"  # DuckDB's buffer pool for the embedded runs (a load alone is capped lower)
# share of each dataset in the generated events (the rest of the bundled datasets share "other")
MIX = {
    "aws.cloudtrail": 0.20,
    "aws.vpcflow": 0.12,
    "linux.syslog": 0.10,
    "linux.auth": 0.10,
    "linux.auditd": 0.10,
    "kubernetes.audit": 0.08,
    "apache.access": 0.06,
    "nginx.access": 0.06,
    "aws.alb": 0.05,
    "aws.route53_resolver": 0.05,
    "other": 0.08,
}
# The CloudTrail samples are writes (CreateUser, CreateGroup... Elastic published them to show their
# mapping); a working account's management events are mostly reads. CloudTrail copies are this share
# of generated read-only calls (``representative.cloudtrail_read_records``: STS, EC2, S3, KMS, SSM...).
READ_SHARE = 0.85
CLOUDTRAIL_READS = 400


# -- events ------------------------------------------------------------------------------------------


class Template:
    """One parsed sample event, ready to be replicated: its JSON text, the IPs and users in it, and
    whether a single-event rule matches it (``suspicious``)."""

    def __init__(self, event: Event, suspicious: bool, generated: bool = False) -> None:
        self.dataset = event.dataset
        self.suspicious = suspicious
        self.generated = generated  # a read-only CloudTrail call of ``representative``, not a sample
        self.text = orjson.dumps(event.doc)
        self.ips: list[str] = []
        self.users: list[str] = []
        self._walk(event.doc, "")
        self.ips.sort(key=len, reverse=True)  # the longer first: 10.0.0.10 before 10.0.0.1
        alternatives = b"|".join(re.escape(ip.encode()) for ip in self.ips)
        self.ip_pattern = re.compile(rb"(?<![0-9.])(" + alternatives + rb")(?![0-9])") if self.ips else None

    def _walk(self, value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                self._walk(inner, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for inner in value:
                self._walk(inner, path)
        elif isinstance(value, str):
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                address = None
            if address is not None and address.version == 4 and value not in self.ips:
                self.ips.append(value)
            elif path in ("user.name", "related.user") and len(value) > 2 and value not in self.users:
                self.users.append(value)

    def replicate(self, doc_id: str, at: datetime, rng: random.Random) -> Event:
        text = self.text
        if self.ip_pattern is not None:  # every occurrence, in fields and messages alike, in one pass
            new: dict[bytes, bytes] = {}
            for ip in self.ips:
                private = ipaddress.ip_address(ip).is_private
                first = 10 if private else rng.choice((34, 52, 81, 185, 203))
                address = f"{first}.{rng.randrange(8 if private else 256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                new[ip.encode()] = address.encode()
            text = self.ip_pattern.sub(lambda m: new[m.group(1)], text)
        for user in self.users:  # half the copies keep the sample's user (root stays common)
            if rng.random() < 0.5:
                text = text.replace(f'"{user}"'.encode(), f'"{user}{rng.randrange(300)}"'.encode())
        doc = orjson.loads(text)
        doc["@timestamp"] = iso_utc(at)
        doc["event"]["ingested"] = iso_utc(at + timedelta(seconds=rng.randrange(30, 600)))
        return Event(doc_id, self.dataset, doc)


def templates(ruleset: list[Rule]) -> dict[str, list[Template]]:
    """The bundled samples and the generated CloudTrail reads through the real parsers (routed by
    content, like ``siem parse``)."""
    single = [r.condition for r in ruleset if r.correlation is None]
    router, options = Router(), ParseOptions()
    out: dict[str, list[Template]] = {}
    reads = orjson.dumps({"Records": cloudtrail_read_records(CLOUDTRAIL_READS)})
    files = [(str(p), p.read_bytes(), False) for p in sorted(SAMPLES.rglob("*")) if p.is_file()]
    for name, data, generated in [*files, ("cloudtrail-reads.json", reads, True)]:
        obj = SourceObject(path=name, identity=name, opener=partial(io.BytesIO, data))
        for item in parse_object(obj, router, options):
            if isinstance(item, Event):
                suspicious = any(matches(condition, item.doc) for condition in single)
                out.setdefault(item.dataset, []).append(Template(item, suspicious, generated))
    return out


class Generator:
    """Copies of the templates in the dataset mix, ``suspicious`` of them drawn from matched samples."""

    def __init__(
        self, pool: dict[str, list[Template]], suspicious: float, reads: float = READ_SHARE, seed: int = 7
    ) -> None:
        self.rng = random.Random(seed)
        self.suspicious = suspicious
        if not reads:  # the samples alone: generated calls are neither benign nor matched copies
            pool = {ds: [t for t in ts if not t.generated] for ds, ts in pool.items()}
        other = [t for ds, ts in pool.items() if ds not in MIX for t in ts]
        groups = [(pool.get(ds, []) if ds != "other" else other, share) for ds, share in MIX.items()]
        self.choices = [
            (_weighted([t for t in ts if not t.suspicious] or ts, reads), [t for t in ts if t.suspicious], share)
            for ts, share in groups
            if ts
        ]
        self.counts: Counter[str] = Counter()
        self.drawn_suspicious = 0
        self.drawn_generated = 0

    def events(self, first: int, count: int) -> list[Event]:
        rng = self.rng
        groups = rng.choices([g[:2] for g in self.choices], [g[2] for g in self.choices], k=count)
        out = []
        for n, ((benign, weights), matched) in zip(range(first, first + count), groups, strict=True):
            bad = bool(matched) and rng.random() < self.suspicious
            self.drawn_suspicious += bad
            template = rng.choice(matched) if bad else rng.choices(benign, cum_weights=weights)[0]
            at = END - timedelta(microseconds=rng.randrange(86_400_000_000))
            out.append(template.replicate(f"bench-{n:09d}", at, rng))
            self.counts[template.dataset] += 1
            self.drawn_generated += template.generated
        return out


def _weighted(benign: list[Template], share: float) -> tuple[list[Template], list[float]]:
    """The benign templates of a dataset and their cumulative weights: uniform, except that CloudTrail
    copies are ``share`` generated reads and the rest the samples (which are all writes)."""
    reads = sum(t.generated for t in benign)
    if not reads or reads == len(benign):
        weights = [1.0] * len(benign)
    else:
        weights = [share / reads if t.generated else (1 - share) / (len(benign) - reads) for t in benign]
    return benign, list(itertools.accumulate(weights))


# -- rules, engines, stores ----------------------------------------------------------------------------


def rules() -> tuple[list[Rule], int]:
    folders = [REPO / "detections", SHARED / "sigmahq" / "rules"]
    loaded = load_paths([f for f in folders if f.is_dir()])
    runnable = [r for r in loaded if not r.problems]
    gc.collect()
    gc.freeze()  # as `siem detect run` and `serve` do around their cycles
    return runnable, len(loaded) - len(runnable)


class Timed:
    """The engine, with the time its queries were under way counted (``select_many`` optional)."""

    def __init__(self, engine: Any, batched: bool) -> None:
        self.engine, self.name = engine, engine.name
        self.spans: list[tuple[float, float]] = []  # (start, end) of each call; calls may overlap
        self.split: Counter[str] = Counter()  # seconds per engine call
        if batched and hasattr(engine, "select_many"):
            self.select_many = self._select_many
        if batched and hasattr(engine, "correlate_many"):
            self.correlate_many = self._correlate_many

    def _timed(self, label: str, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            ended = time.perf_counter()
            self.spans.append((started, ended))
            self.split[label] += ended - started

    @property
    def seconds(self) -> float:
        """Time some query was under way: a retro-hunt's correlations run beside its selection, so
        the calls' durations overlap and their sum would count that time twice."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            total += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        return total

    def _select_many(self, rules: Any, scope: Any) -> Any:
        return self._timed("select_many", self.engine.select_many, rules, scope)

    def _correlate_many(self, requests: Any) -> Any:
        return self._timed("correlate_many", self.engine.correlate_many, requests)

    def select(self, rule: Any, scope: Any) -> Any:
        return iter(self._timed("select", lambda: list(self.engine.select(rule, scope))))

    def correlate(self, rule: Any, scope: Any) -> Any:
        return self._timed("correlate", self.engine.correlate, rule, scope)

    def fetch(self, ids: list[str]) -> Any:
        return self._timed("fetch", self.engine.fetch, ids)


def open_bench_store(kind: str, tmp: Path, url: str | None) -> Any:
    if kind == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        return EmbeddedStore(tmp / "data", memory_limit=DETECT_MEMORY)
    from opensearchpy import OpenSearch

    from siem.sinks.opensearch import OpenSearchStore
    from siem.templates import install_templates

    if not url:
        raise SystemExit("set SIEM_OPENSEARCH_URL (or --url) for --store opensearch")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    client = OpenSearch(hosts=[url], timeout=600, http_compress=True)
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
        # size-0 aggregations are answered from the shard request cache when repeated on unchanged
        # data; a real cycle follows new events, so every measured cycle starts without it
        store.client.indices.clear_cache(index=f"{store.prefix}-*", params={"request": "true"})
    else:
        open_state(store)  # creates the table on first use
        store.db.execute("DELETE FROM alerts")


def load(store: Any, wanted: int, budget: float, gen: Generator) -> int:
    started, done, chunk = time.monotonic(), 0, 20000
    while done < wanted:
        batch = gen.events(done, min(chunk, wanted - done))
        for start in range(0, len(batch), store.batch_size):
            rejected = store.write(batch[start : start + store.batch_size])
            assert not rejected, rejected[:1]
        done += len(batch)
        elapsed = time.monotonic() - started
        late = elapsed > min(20.0, budget / 6) and elapsed / done * (done + chunk) > budget
        if done < wanted and late:
            print(
                f"  indexing {wanted:,} events would take ~{elapsed / done * wanted:.0f}s here"
                f" ({done / elapsed:,.0f} events/s, generation included; budget {budget:.0f}s):"
                f" stopping at {done:,} events"
            )
            break
    store.refresh()
    print(f"  indexed {done:,} events in {time.monotonic() - started:.1f}s")
    total = sum(gen.counts.values())
    print("  mix: " + ", ".join(f"{ds} {n / total:.0%}" for ds, n in gen.counts.most_common()))
    trail = gen.counts["aws.cloudtrail"]
    print(f"  CloudTrail: {gen.drawn_generated / max(trail, 1):.0%} generated read-only calls, the rest the samples")
    print(f"  copies of samples a rule matches: {gen.drawn_suspicious:,} ({gen.drawn_suspicious / total:.2%})")
    return done


def floor(store: Any) -> list[tuple[str, float]]:
    """The cheapest passes over every event, timed in this run."""
    out = []
    if store.name == "opensearch":
        client, index = store.client, store.events_pattern
        for label, call in (
            ("match_all count", lambda: client.count(index=index, body={"query": {"match_all": {}}})),
            (
                "match_all query (first page)",
                lambda: client.search(index=index, body={"query": {"match_all": {}}, "size": 500}),
            ),
        ):
            started = time.perf_counter()
            call()
            out.append((label, time.perf_counter() - started))
        return out
    for label, sql in (
        ("full scan of events.doc", "SELECT count(*), sum(length(doc::VARCHAR)) FROM events"),
        ("json_extract of one path", "SELECT count(json_extract_string(doc, '$.event.action')) FROM events"),
    ):
        started = time.perf_counter()
        store.db.execute(sql).fetchall()
        out.append((label, time.perf_counter() - started))
    return out


def bench(kind: str, args: argparse.Namespace, pool: dict[str, list[Template]], ruleset: list[Rule]) -> None:
    print(f"[{kind}]")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_bench_store(kind, Path(tmp), args.url)
        try:
            size = load(
                store, args.events, args.load_budget, Generator(pool, args.suspicious_share, args.cloudtrail_reads)
            )
            engine = make_engine(store)
            if not hasattr(engine, "select_many"):
                print(f"  note: the {engine.name} engine has no select_many; both modes query once per rule")
            n_corr = sum(r.correlation is not None for r in ruleset)
            print(
                f"  {len(ruleset)} rules ({len(ruleset) - n_corr} single-event, {n_corr} correlations), {size:,} events"
            )
            floors = [floor(store) for _ in range(args.rounds)]
            for label, _ in floors[0]:
                secs = statistics.median(dict(f)[label] for f in floors)
                print(f"  floor: {label:30} {secs:8.2f}s  {size / secs:12,.0f} events/s")
            windows = {
                "every event in one cycle (a retro-hunt)": (END - timedelta(days=2), END + timedelta(days=1)),
                f"the last {args.recent} minutes (a scheduled cycle)": (END - timedelta(minutes=args.recent), END),
            }
            recent = windows[f"the last {args.recent} minutes (a scheduled cycle)"]
            warm_up(store, engine, ruleset, iso_utc(recent[0]), iso_utc(recent[1]))
            for label, (since, until) in windows.items():
                print(f"  -- {label}")
                cycles(store, engine, ruleset, iso_utc(since), iso_utc(until), args.rounds)
        finally:
            drop(store)
            store.close()


def warm_up(store: Any, engine: Any, ruleset: list[Rule], since: str, until: str) -> None:
    """One unmeasured cycle per mode: what a process pays once (the Unicode tables case-insensitive
    regexps are translated with, connections, the node's first touch of each index) is in neither
    mode's figures; a ``siem detect serve`` process pays it once too."""
    started = time.perf_counter()
    for batched in (True, False):
        clear_alerts(store)
        Runner(Timed(engine, batched), open_state(store)).run_cycle(ruleset, since=since, until=until)
    print(f"  warm-up: one unmeasured cycle per mode ({time.perf_counter() - started:.1f}s)")


def cycles(store: Any, engine: Any, ruleset: list[Rule], since: str, until: str, rounds: int) -> None:
    """One cycle over [since, until) per mode and round (interleaved); medians, the split, the ratio."""
    times: dict[str, list[float]] = {"batched": [], "one query per rule": []}
    query: dict[str, list[float]] = {m: [] for m in times}
    results: dict[str, Any] = {}
    splits: dict[str, str] = {}
    for _ in range(rounds):
        for mode in times:
            clear_alerts(store)
            timed = Timed(engine, batched=mode == "batched")
            runner = Runner(timed, open_state(store), counter=store_counter(store))
            report = runner.run_cycle(ruleset, since=since, until=until)
            failed = [r for r in report.runs if r.error]
            times[mode].append(report.seconds)
            query[mode].append(timed.seconds)
            matches = sum(r.matches for r in report.runs)
            results[mode] = (report.events_scanned, report.new, matches, len(failed))
            splits[mode] = ", ".join(f"{k} {v:.1f}s" for k, v in timed.split.most_common())
            for r in failed[:3]:
                print(f"  {mode}: FAILED {r.rule.path}: {r.error}")
    for mode, secs in times.items():
        scanned, new, matches, failed = results[mode]
        median, engine_secs = statistics.median(secs), statistics.median(query[mode])
        print(
            f"  {mode:20} cycle {median:8.2f}s  {scanned / median:10,.0f} events/s  ({scanned:,} events;"
            f" queries {engine_secs:.2f}s; {matches:,} matches, {new:,} alerts, {failed} rules failed)"
            f"  rounds: {', '.join(f'{s:.1f}s' for s in secs)}"
        )
        print(f"  {'':20} last round by engine call: {splits[mode]}")
    ratio = statistics.median(times["one query per rule"]) / statistics.median(times["batched"])
    qratio = statistics.median(query["one query per rule"]) / statistics.median(query["batched"])
    print(f"  batched is {ratio:.1f}x one-query-per-rule per cycle ({qratio:.1f}x in the queries; target >= 5x)")
    same = results["batched"][1:3] == results["one query per rule"][1:3]
    print(f"  same matches and alerts in both modes: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("embedded", "opensearch", "both"), default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load-budget", type=float, default=180.0, help="seconds allowed for indexing, per store")
    parser.add_argument(
        "--suspicious-share", type=float, default=0.002, help="share of copies drawn from samples a rule matches"
    )
    parser.add_argument(
        "--cloudtrail-reads",
        type=float,
        default=READ_SHARE,
        help="share of CloudTrail copies that are generated read-only calls (0: the samples' writes only)",
    )
    parser.add_argument("--recent", type=int, default=5, help="minutes of events in the scheduled-cycle window")
    parser.add_argument("--url", default=os.environ.get("SIEM_OPENSEARCH_URL"), help="the OpenSearch node")
    args = parser.parse_args()
    ruleset, dropped = rules()
    pool = templates(ruleset)
    print(
        f"{sum(len(t) for t in pool.values())} templates (samples, generated CloudTrail reads) in {len(pool)} datasets;"
        f" {len(ruleset)} runnable rules"
        f" ({dropped} not loadable or not mappable, left out)"
    )
    kinds = ["embedded", "opensearch"] if args.store == "both" else [args.store]
    for kind in kinds:
        bench(kind, args, pool, ruleset)


if __name__ == "__main__":
    main()
