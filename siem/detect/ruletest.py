"""``siem rules test``: every rule's own test cases, through the real parsers, on every engine.

A case is raw log text in its original format (or a file next to the rule). It goes through the
same router, parser and normalizer as ``siem load``, so a parser change that breaks a detection
fails here. The events are then evaluated by the offline engine, by DuckDB (a throw-away embedded
store) and — when an OpenSearch URL is configured — by OpenSearch (a throw-away index prefix,
deleted afterwards). Every engine must meet the expectation; a case that parses into dead
letters fails too, since a detection test on data the parser rejects proves nothing.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from siem import formats
from siem.detect.engines import Engine, Scope
from siem.detect.fold import alert_keys
from siem.detect.rules import Rule, TestCase
from siem.formats.base import ParseOptions
from siem.formats.routing import Router
from siem.pipeline import DeadLetter, Event, parse_object
from siem.sources import SourceObject


@dataclass
class CaseResult:
    rule: Rule
    case: TestCase
    engine: str
    ok: bool
    detail: str  # what was expected and what happened


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    skipped: list[tuple[Rule, str]] = field(default_factory=list)  # rules that cannot run here
    untested: list[Rule] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]


def parse_case(case: TestCase, router: Router, options: ParseOptions) -> tuple[list[Event], list[DeadLetter]]:
    """The events the real pipeline makes of a case's log text."""
    if case.file is not None:
        data, path = case.file.read_bytes(), str(case.file)
    else:
        data, path = (case.lines or "").encode(), f"rule-test/{case.name}"
    obj = SourceObject(path=path, identity=f"rule-test:{path}:{case.name}", opener=partial(io.BytesIO, data))
    forced = formats.get(case.log_type) if case.log_type else None
    events: list[Event] = []
    letters: list[DeadLetter] = []
    for item in parse_object(obj, router, options, forced):
        if isinstance(item, Event):
            events.append(item)
        elif isinstance(item, DeadLetter):
            letters.append(item)
    return events, letters


def outcome(rule: Rule, engine: Engine) -> tuple[int, int]:
    """(matching events, alerts) of one rule on an engine holding only the case's events."""
    if rule.correlation is not None:
        windows = engine.correlate(rule, Scope())
        return sum(len(w.members) for w in windows), len(alert_keys(rule, windows=windows))
    hits = list(engine.select(rule, Scope()))
    return len(hits), len(alert_keys(rule, events=hits))


def judge(case: TestCase, matches: int, alerts: int) -> tuple[bool, str]:
    (key, want) = next(iter(case.expect.items()))
    got = {"match": matches > 0, "matches": matches, "alerts": alerts}[key]
    return got == want, f"expected {key}={want}, got {key}={got} ({matches} matching events, {alerts} alerts)"


EngineFactory = Callable[[list[Event]], Any]


def run_tests(rules: list[Rule], engines: dict[str, EngineFactory], options: ParseOptions | None = None) -> Report:
    """Run every case of every runnable rule on every engine."""
    router, options = Router(), options or ParseOptions()
    report = Report()
    for rule in rules:
        if not rule.runnable:
            report.skipped.append((rule, "; ".join(rule.problems)))
            continue
        if not rule.tests:
            report.untested.append(rule)
            continue
        for case in rule.tests:
            events, letters = parse_case(case, router, options)
            if letters:
                reasons = "; ".join(f"{d.stage}@{d.offset}: {d.reason}" for d in letters[:3])
                for name in engines:
                    report.results.append(CaseResult(rule, case, name, False, f"log text rejected: {reasons}"))
                continue
            for name, factory in engines.items():
                try:
                    with factory(events) as engine:
                        ok, detail = judge(case, *outcome(rule, engine))
                except Exception as exc:  # one engine's failure is that case's result, not the run's end
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                report.results.append(CaseResult(rule, case, name, ok, detail))
    return report


@contextmanager
def offline_engine(events: list[Event]) -> Iterator[Engine]:
    from siem.detect.engines.memory import MemoryEngine

    yield MemoryEngine([(e.id, e.doc) for e in events])


@contextmanager
def duckdb_engine(events: list[Event]) -> Iterator[Engine]:
    from siem.detect.engines.duckdb import DuckDBEngine
    from siem.sinks.embedded import EmbeddedStore

    with tempfile.TemporaryDirectory(prefix="siem-ruletest-") as tmp:
        store = EmbeddedStore(Path(tmp))
        try:
            store.write(events)
            yield DuckDBEngine(store)
        finally:
            store.close()


class OpenSearchCases:
    """Cases on the configured cluster: one throw-away index prefix for the run (templates installed
    once); each case's events are written, queried, then deleted by id, so cases never see each other."""

    def __init__(self, settings: Any) -> None:
        from siem.sinks.opensearch import make_client

        self.client = make_client(settings)
        self.prefix = f"siem-ruletest-{uuid.uuid4().hex[:8]}"
        self._store: Any = None

    def _ready(self) -> Any:
        if self._store is None:
            from siem.sinks.opensearch import OpenSearchStore
            from siem.templates import install_templates

            install_templates(self.client, self.prefix)
            self._store = OpenSearchStore(self.client, prefix=self.prefix, refresh=True)
        return self._store

    @contextmanager
    def __call__(self, events: list[Event]) -> Iterator[Engine]:
        from siem.detect.engines.opensearch import OpenSearchEngine

        store = self._ready()
        rejected = store.write(events)
        if rejected:
            raise RuntimeError(f"OpenSearch rejected the case's events: {rejected[0].reason}")
        try:
            yield OpenSearchEngine(store)
        finally:
            self.client.delete_by_query(
                index=store.events_pattern,
                body={"query": {"ids": {"values": [e.id for e in events]}}},
                params={"refresh": "true", "conflicts": "proceed", "ignore_unavailable": "true"},
            )

    def close(self) -> None:
        try:
            self.client.indices.delete(index=f"{self.prefix}-*", params={"ignore_unavailable": "true"})
            for name in ("events", "deadletter", "alerts"):
                self.client.indices.delete_index_template(name=f"{self.prefix}-{name}", params={"ignore": 404})
            for name in ("settings", "ecs"):
                self.client.cluster.delete_component_template(name=f"{self.prefix}-{name}", params={"ignore": 404})
        finally:
            self.client.close()
