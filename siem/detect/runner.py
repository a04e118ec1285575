"""The detection runner: one cycle of every due rule, and the scheduler `siem detect serve` runs.

A **scheduled** cycle looks at events by ``event.ingested`` in ``[checkpoint − overlap, now − settle)``
(a rule's first cycle: ``[now − lookback, now − settle)``: the rule's ``schedule.lookback``, else
``detect.lookback_seconds``, default 24h).
A **retro-hunt** (``--since/--until``) looks at ``@timestamp`` instead and leaves checkpoints alone.

What the window yields are a rule's *new matches*. They only say which alerts to (re)build; each
alert is then rebuilt from everything it covers, found by ``@timestamp``:

* single-event rule: the match is the alert (rule id + version + event id);
* ``suppress: {by, for}``: the events of each touched (key, period) bucket, by ``@timestamp``;
* correlation: ``engine.correlate`` over ``@timestamp`` around the new matches, every correlation
  of the cycle handed to the engine together; the satisfying windows that contain a new match name
  the touched (group, period) alerts, each folding every satisfying window anchored in its period
  (``siem.detect.correlations``). A retro-hunt does not select a correlation's matches (every
  member in its range is new): its windows are computed over the range's reach at once.

So an alert is a function of the data only: overlapping windows, reruns, restarts and retro-hunts
rebuild the same document ("updated" only when count or first/last seen moved); late events
(old ``@timestamp``, ingested now) are new matches of the next cycle and land on their alert once.

Per rule, in this order: build → enqueue notifications of NEW alerts (the outbox ignores a record
it already holds) → write alerts → advance the checkpoint to the window's end. ``kill -9``
anywhere repeats at most the unfinished rule's window, which rebuilds the same alerts. A rule that
fails (query error, timeout) is reported, keeps its checkpoint and is retried next cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from siem.detect import alerts as alerts_mod
from siem.detect import correlations
from siem.detect.cycle import CycleReport, RuleRun
from siem.detect.engines import Engine, Scope, micros
from siem.detect.fold import alert_id, event_key
from siem.detect.rules import Rule
from siem.detect.state import AlertState
from siem.detect.windows import merged
from siem.normalize import iso_utc

log = logging.getLogger(__name__)
Match = tuple[str, dict[str, Any]]


def iso(us: int) -> str:
    return alerts_mod.iso_of_micros(us)


def now_iso() -> str:
    return iso_utc(datetime.now(UTC))


class Runner:
    def __init__(
        self,
        engine: Engine,
        state: AlertState,
        *,
        overlap_seconds: int = 120,
        settle_seconds: int = 30,
        lookback_seconds: int = 86400,
        max_event_ids: int = 100,
        outbox: Any = None,
        counter: Callable[[Scope], int] | None = None,
    ) -> None:
        self.engine = engine
        self.state = state
        self.overlap = timedelta(seconds=overlap_seconds)
        self.settle = timedelta(seconds=settle_seconds)
        self.lookback = timedelta(seconds=lookback_seconds)
        self.max_event_ids = max_event_ids
        self.outbox = outbox
        self.counter = counter

    # -- one cycle ---------------------------------------------------------------------------------

    def run_cycle(
        self, rules: list[Rule], *, since: str | None = None, until: str | None = None, now: datetime | None = None
    ) -> CycleReport:
        started = time.monotonic()
        now = now or datetime.now(UTC)
        retro = since is not None or until is not None
        report = CycleReport("retro-hunt" if retro else "scheduled")
        runs = {id(r): RuleRun(r) for r in rules}
        report.runs = list(runs.values())
        runnable = []
        for rule in rules:
            if rule.problems:
                runs[id(rule)].skipped = "; ".join(rule.problems)
            else:
                runnable.append(rule)
        scopes = self._scopes(runnable, now, since, until)
        groups: dict[Scope, list[Rule]] = {}
        for rule in runnable:
            scope = scopes[rule.id]
            bounds = scope.timestamp or scope.ingested
            runs[id(rule)].window = bounds
            if bounds is not None and bounds[0] >= bounds[1]:
                continue  # nothing new yet (settle longer than the time since the checkpoint)
            groups.setdefault(scope, []).append(rule)
        detected = iso_utc(now)
        for scope, members in groups.items():
            if self.counter is not None:
                report.events_scanned += self.counter(scope)
            built = self._build(members, scope, runs, retro)
            try:
                self._store(built, runs, detected, None if retro else scope)
            except Exception as exc:  # the store refused the writes: every rule of the group retries
                for rule, _ in built:
                    run = runs[id(rule)]
                    run.new = run.updated = 0
                    run.error = run.error or _describe(exc)
        report.seconds = time.monotonic() - started
        return report

    def _build(
        self, rules: list[Rule], scope: Scope, runs: dict[int, RuleRun], retro: bool
    ) -> list[tuple[Rule, dict[str, dict[str, Any]]]]:
        """Every rule's alerts for the scope: selection batched, correlations computed together."""
        # a retro-hunt's every member event is new: a correlation needs its windows, not its matches
        hunted = [r for r in rules if retro and r.correlation is not None]
        selected = [r for r in rules if not (retro and r.correlation is not None)]
        wanted = {rule.id: correlations.over_range(rule, scope) for rule in hunted}
        hunting = correlations.start(self.engine, list(wanted.values()))  # beside the selection
        try:
            picked: list[tuple[Rule, list[Match] | None]] = list(self._select_all(selected, scope, runs))
        finally:
            windows = hunting()
        picked += [(rule, None) for rule in hunted]
        around = {
            rule.id: correlations.around(rule, matches)
            for rule, matches in picked
            if rule.correlation is not None and matches  # a scheduled cycle's: where its new matches are
        }
        windows.update(correlations.compute(self.engine, list(around.values())) if around else {})
        wanted.update(around)
        built: list[tuple[Rule, dict[str, dict[str, Any]]]] = []
        for rule, matches in picked:
            run = runs[id(rule)]
            try:
                if rule.id in wanted:
                    found = windows[rule.id]
                    if isinstance(found, BaseException):
                        raise found
                    alerts, members_new = correlations.build(wanted[rule.id], found, self._fetch, self.max_event_ids)
                    run.matches = members_new if matches is None else len(matches)
                    built.append((rule, alerts))
                else:
                    run.matches = len(matches or [])
                    built.append((rule, self._alerts(rule, matches, scope) if matches else {}))
            except Exception as exc:  # one rule's failure never stops the others
                log.warning("rule %s failed: %s", rule.title, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                run.error = _describe(exc)
        return built

    def _scopes(self, rules: list[Rule], now: datetime, since: str | None, until: str | None) -> dict[str, Scope]:
        if since is not None or until is not None:
            bounds = (since or "1970-01-01T00:00:00Z", until or iso_utc(now))
            return {r.id: Scope(timestamp=bounds) for r in rules}
        end = now - self.settle
        marks = self.state.checkpoints([r.id for r in rules]) if rules else {}
        out = {}
        for rule in rules:
            mark = marks.get(rule.id)
            start = _parse(mark) - self.overlap if mark else now - (rule.lookback or self.lookback)
            out[rule.id] = Scope(ingested=(iso_utc(start), iso_utc(end)))
        return out

    def _select_all(self, rules: list[Rule], scope: Scope, runs: dict[int, RuleRun]) -> Iterator[tuple[Rule, list]]:
        """Every rule's new matches: one batched request where the engine can (``select_many``)."""
        batched: dict[str, list[Match]] | None = None
        select_many = getattr(self.engine, "select_many", None)
        if select_many is not None and len(rules) > 1:
            try:
                batched = _by_rule(select_many(rules, scope), rules)
            except Exception as exc:
                log.warning("batched selection failed (%s); one query per rule", exc)
        for rule in rules:
            if batched is not None and isinstance(batched.get(rule.id), list):
                yield rule, batched[rule.id]
                continue
            try:
                matches = list(self.engine.select(rule, scope))
            except Exception as exc:
                runs[id(rule)].error = _describe(exc)
                continue
            yield rule, matches

    # -- alert building ----------------------------------------------------------------------------

    def _alerts(self, rule: Rule, matches: list[Match], scope: Scope) -> dict[str, dict[str, Any]]:
        """A single-event rule's alerts: one per match, or one per suppression key and period."""
        if rule.suppress is None:
            out = {}
            for doc_id, doc in matches:
                key = event_key(rule, doc_id, doc)
                covered = alerts_mod.Covered(self.max_event_ids)
                ts = alerts_mod.event_ts(doc)
                covered.add(doc_id, ts, doc)
                aid = alert_id(rule, key)
                out[aid] = alerts_mod.build(rule, aid, covered, group={}, window_start=ts)
            return out
        return self._suppressed(rule, matches, scope)

    def _suppressed(self, rule: Rule, matches: list[Match], scope: Scope) -> dict[str, dict[str, Any]]:
        assert rule.suppress is not None
        period = _us(rule.suppress.period)
        touched = {event_key(rule, i, d) for i, d in matches}
        folds: dict[tuple, alerts_mod.Covered] = {}
        pending = dict(matches)  # new matches not (yet) seen by the rebuild query

        def add(doc_id: str, doc: dict[str, Any]) -> None:
            key = event_key(rule, doc_id, doc)
            if key in touched:
                folds.setdefault(key, alerts_mod.Covered(self.max_event_ids)).add(doc_id, alerts_mod.event_ts(doc), doc)

        seen = (micros(scope.timestamp[0]), micros(scope.timestamp[1])) if scope.timestamp else (0, 0)
        for low, high in merged([(k[2] * period, (k[2] + 1) * period) for k in touched]):
            if seen[0] <= low and high <= seen[1]:
                continue  # a retro-hunt over these whole periods: the matches are all of their events
            for doc_id, doc in self.engine.select(rule, Scope(timestamp=(iso(low), iso(high)))):
                pending.pop(doc_id, None)
                add(doc_id, doc)
        for doc_id, doc in pending.items():
            add(doc_id, doc)
        out = {}
        for key, covered in folds.items():
            group = dict(zip(rule.suppress.by, key[1], strict=True))
            aid = alert_id(rule, key)
            out[aid] = alerts_mod.build(rule, aid, covered, group=group, window_start=key[2] * period)
        return out

    def _fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        docs: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 1000):
            docs.update(self.engine.fetch(ids[start : start + 1000]))
        return docs

    # -- storing -------------------------------------------------------------------------------------

    def _store(
        self,
        built: list[tuple[Rule, dict[str, dict[str, Any]]]],
        runs: dict[int, RuleRun],
        detected: str,
        scope: Scope | None,
    ) -> None:
        """Merge onto the stored alerts, record notifications of new ones, then one write of the
        alerts followed by the checkpoints of the rules that ran."""
        ids = [aid for _, fresh in built for aid in fresh]
        stored = self.state.get(ids) if ids else {}
        writes: list[dict[str, Any]] = []
        done: list[Rule] = []
        for rule, fresh in built:
            run, mine, created = runs[id(rule)], [], []
            for aid, doc in fresh.items():
                doc["@timestamp"] = detected
                kept, what = alerts_mod.merge(stored.get(aid), doc)
                if what != "same":
                    mine.append(kept)
                    (created if what == "new" else []).append(kept)
            try:
                if created and self.outbox is not None and (rule.notify or self.outbox.routes):
                    for doc in created:  # recorded before the alert: a crash in between re-records (a no-op)
                        self.outbox.enqueue_alert(doc, rule.notify, "trigger")
            except Exception as exc:  # e.g. an unknown route: this rule retries, the others are written
                run.error = _describe(exc)
                continue
            run.new, run.updated = len(created), len(mine) - len(created)
            writes.extend(mine)
            done.append(rule)
        marks = {rule.id: scope.ingested[1] for rule in done} if scope is not None and scope.ingested else {}
        self.state.save(writes, marks)

    # -- serve -----------------------------------------------------------------------------------------

    def serve(
        self,
        rules: list[Rule],
        should_stop: Callable[[], bool],
        wait: Callable[[float], Any],
        on_cycle: Callable[[CycleReport], None] = lambda r: None,
        after_cycle: Callable[[], None] = lambda: None,
        on_start: Callable[[list[Rule]], None] = lambda rules: None,
    ) -> None:
        """Run each rule every ``rule.interval`` until ``should_stop()``; a cycle is never interrupted."""
        due = {r.id: 0.0 for r in rules}
        while not should_stop():
            now = time.time()
            ready = [r for r in rules if due[r.id] <= now]
            if ready:
                on_start(ready)
                on_cycle(self.run_cycle(ready, now=datetime.fromtimestamp(now, UTC)))
                for r in ready:
                    due[r.id] = now + r.interval.total_seconds()
                after_cycle()
                continue
            wait(max(0.05, min(due.values()) - time.time()))


def make_engine(store: Any) -> Engine:
    if store.name == "opensearch":
        from siem.detect.engines.opensearch import OpenSearchEngine

        return OpenSearchEngine(store)
    from siem.detect.engines.duckdb import DuckDBEngine

    return DuckDBEngine(store)


def _by_rule(result: Any, rules: list[Rule]) -> dict[str, list[Match]]:
    """``select_many``'s answer as rule id → matches (a mapping by rule id or Rule, or pairs)."""
    items: Iterable[tuple[Any, Any]] = result.items() if isinstance(result, dict) else result
    out: dict[str, list[Match]] = {}
    for key, matches in items:
        rule_id = key.id if isinstance(key, Rule) else str(key)
        if isinstance(matches, BaseException):
            continue  # that rule failed in the batch: it is retried alone
        out[rule_id] = list(matches)
    return out


def _us(span: timedelta) -> int:
    return int(span.total_seconds() * 1_000_000)


def _parse(value: str) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros(value))


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
