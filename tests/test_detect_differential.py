"""Differential tests: the three detection engines mean the same thing.

Every shipped rule (``detections/``), every runnable SigmaHQ rule (``../shared/sigmahq/rules``) and a
set of hand-made rules covering every IR leaf on every field kind get events generated "around"
their values (``tests/_differential.py``). All events of all rules are written once per store — the
embedded DuckDB store and a real OpenSearch node (one index prefix for the module) — and every rule
is run by every engine. The offline evaluator (``MemoryEngine``) is the reference: the other
engines must return exactly the same ids in the same (``@timestamp``, id) order, with the stored
documents, and exactly the same correlation windows (group, anchor, members, value). A difference
is a bug in an engine, never a tolerance.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from _differential import (
    BASE_TIME,
    Batch,
    Generator,
    Schema,
    correlation_events,
    iso,
    synthetic_correlations,
    synthetic_rules,
)

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.engines.memory import MemoryEngine
from siem.detect.evaluate import matches
from siem.detect.rules import Rule, load_paths

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIEM_SHARED_DIR", REPO.parent / "shared"))
DETECTIONS = REPO / "detections"
SIGMAHQ = SHARED / "sigmahq" / "rules"
ENGINES = ("duckdb", "opensearch")
ENGINE_CLASSES = {"duckdb": "DuckDBEngine", "opensearch": "OpenSearchEngine"}


# ---------------------------------------------------------------------------------------------
# the corpus: rules and their events, built once (collection needs the rule keys)


def _rules() -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for origin, folder in (("shipped", DETECTIONS), ("sigmahq", SIGMAHQ)):
        if not folder.is_dir() or not any(folder.rglob("*.yml")):
            continue
        for rule in load_paths([folder]):
            if rule.runnable:
                key = f"{origin}:{rule.path.relative_to(folder)}"
                out[key if key not in out else f"{key}:{rule.name}"] = rule
    for rule in [*synthetic_rules(), *synthetic_correlations()]:
        out[f"synthetic:{rule.name.removeprefix('synthetic-')}"] = rule
    return out


RULES = _rules()
SINGLE = [k for k, r in RULES.items() if r.correlation is None]
CORRELATIONS = [k for k, r in RULES.items() if r.correlation is not None]


class Corpus:
    def __init__(self) -> None:
        conditions = [r.condition for r in RULES.values()]
        for rule in RULES.values():
            if rule.correlation:
                conditions += [r.condition for r in rule.correlation.rules]
                extra = [*rule.correlation.group_by, *filter(None, [rule.correlation.value_field])]
                conditions += [ir.Exists(name) for name in extra]
        self.schema = Schema(conditions)
        self.generator = Generator(self.schema)
        self.batch = Batch(self.schema)
        self.regions: dict[str, tuple[str, str]] = {}  # correlation key → its members' time range
        self.own: dict[str, list[str]] = {}  # rule key → ids of the events generated for it
        for n, key in enumerate(SINGLE):
            start = BASE_TIME + timedelta(minutes=10 * n)
            before = len(self.batch.events)
            self.batch.add(
                key, self.generator.events(RULES[key].condition), start, timedelta(seconds=1, microseconds=137_000)
            )
            self.own[key] = [e.id for e in self.batch.events[before:]]
        corr_start = BASE_TIME + timedelta(days=5)
        for n, key in enumerate(CORRELATIONS):
            corr = RULES[key].correlation
            assert corr is not None
            positives = []
            for member in corr.rules:
                docs = self.generator.events(member.condition)
                hit = next((d for d in docs if matches(member.condition, d)), None)
                positives.append(hit or docs[0])
            start = corr_start + timedelta(hours=8 * n)
            before = len(self.batch.events)
            self.batch.add_timed(key, correlation_events(corr, positives, self.schema, start))
            self.own[key] = [e.id for e in self.batch.events[before:]]
            self.regions[key] = (iso(start), iso(start + timedelta(hours=8)))
        datasets = {e.dataset for e in self.batch.events}
        self.seeds = self.batch.seed_events(datasets)
        self.events = [*self.seeds, *self.batch.events]
        self.docs = {e.id: e.doc for e in self.events}
        assert len(self.docs) == len(self.events), "generated event ids must be distinct"
        self.by_dataset: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for e in self.events:
            self.by_dataset.setdefault(e.doc["event"]["dataset"], []).append((e.id, e.doc))
        self._memory: dict[frozenset[str], MemoryEngine] = {}
        self._select: dict[tuple[str, Scope], list[str]] = {}
        self._correlate: dict[tuple[str, Scope], list[tuple[Any, ...]]] = {}

    def memory(self, rule: Rule) -> MemoryEngine:
        """The reference engine over the events the rule's dataset condition can admit (exact: an
        event whose event.dataset fails that conjunct cannot match; this only saves time)."""
        scope = _dataset_conjuncts(rule.condition)
        names = frozenset(ds for ds in self.by_dataset if matches(scope, {"event": {"dataset": ds}}))
        if names not in self._memory:
            self._memory[names] = MemoryEngine([pair for ds in sorted(names) for pair in self.by_dataset[ds]])
        return self._memory[names]

    def select(self, key: str, scope: Scope) -> list[str]:
        if (key, scope) not in self._select:
            self._select[key, scope] = [i for i, _ in self.memory(RULES[key]).select(RULES[key], scope)]
        return self._select[key, scope]

    def correlate(self, key: str, scope: Scope) -> list[tuple[Any, ...]]:
        if (key, scope) not in self._correlate:
            rule = RULES[key]
            self._correlate[key, scope] = windows(self.memory(rule).correlate(rule, scope))
        return self._correlate[key, scope]


def _dataset_conjuncts(node: ir.Node) -> ir.Node:
    """The conjuncts of a condition that read only event.dataset (TRUE when there are none)."""
    if isinstance(node, ir.Or):
        return ir.any_of([_dataset_conjuncts(a) for a in node.args])
    args = node.args if isinstance(node, ir.And) else (node,)
    return ir.all_of([a for a in args if ir.fields_of(a) == {"event.dataset"}])


@cache
def corpus() -> Corpus:
    return Corpus()


def windows(found: list[Any]) -> list[tuple[Any, ...]]:
    return [(w.group, w.anchor.id, w.anchor.ts, tuple(m.id for m in w.members), w.value) for w in found]


# ---------------------------------------------------------------------------------------------
# the stores and engines (one of each for the module)


def _engine_class(name: str) -> Any:
    module = importlib.import_module(f"siem.detect.engines.{name}")  # a missing engine fails, never skips
    return getattr(module, ENGINE_CLASSES[name])


@pytest.fixture(scope="module")
def duckdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cls = _engine_class("duckdb")
    from siem.sinks.embedded import EmbeddedStore

    data = corpus()
    store = EmbeddedStore(tmp_path_factory.mktemp("differential-duckdb"))
    assert store.write(data.seeds) == []
    assert store.write(data.batch.events) == []
    store.refresh()
    try:
        yield cls(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def module_prefix(opensearch_client: Any) -> Iterator[str]:
    """One index prefix for the module's events (like conftest's index_prefix, module-scoped)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    for name in ("events", "deadletter", "alerts"):
        opensearch_client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
    for name in ("settings", "ecs"):
        opensearch_client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


@pytest.fixture(scope="module")
def opensearch_engine(opensearch_client: Any, module_prefix: str) -> Any:
    cls = _engine_class("opensearch")
    from siem.sinks.opensearch import OpenSearchStore
    from siem.templates import install_templates

    data = corpus()
    install_templates(opensearch_client, module_prefix)
    store = OpenSearchStore(opensearch_client, prefix=module_prefix, refresh=True)
    rejected = store.write(data.seeds) + store.write(data.batch.events)
    # a rejected document is a generator bug (an event the index templates do not accept)
    assert not rejected, [(d.dataset, d.reason, d.raw[:300]) for d in rejected[:5]]
    store.refresh()
    return cls(store)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_engine")


# Disagreements found by these tests and not fixed yet: (engine, rule key) → the reproduction. Strict,
# so a fix turns them into failures to remove from here. (Exists on a hollow object was the last one.)
KNOWN: dict[tuple[str, str], str] = {}


def _cases(keys: list[str]) -> list[Any]:
    """(engine, rule key) pairs, the known disagreements marked xfail(strict=True)."""
    out = []
    for key in keys:
        for name in ENGINES:
            reason = KNOWN.get((name, key))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(name, key, marks=marks, id=f"{key}-{name}"))
    return out


def _show(ids: list[str], limit: int = 3) -> list[Any]:
    docs = corpus().docs
    return [(i, docs.get(i)) for i in ids[:limit]]


# ---------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("key", SINGLE, ids=SINGLE)
def test_generator_reaches_both_sides(key: str) -> None:
    """The events generated for a rule include matches and non-matches (else the rule is untested)."""
    data = corpus()
    rule = RULES[key]
    own = [data.docs[i] for i in data.own[key]]
    hits = sum(matches(rule.condition, d) for d in own)
    assert 0 < hits < len(own), f"{hits} of {len(own)} generated events match {rule.condition!r}"


@pytest.mark.parametrize(("engine", "key"), _cases(SINGLE), indirect=["engine"])
def test_select_agrees(engine: Any, key: str) -> None:
    data = corpus()
    expected = data.select(key, Scope())
    got = list(engine.select(RULES[key], Scope()))
    ids = [i for i, _ in got]
    missing = [i for i in expected if i not in set(ids)]
    extra = [i for i in ids if i not in set(expected)]
    assert not missing and not extra, (
        f"{engine.name} disagrees with the reference on {RULES[key].condition!r}\n"
        f"matched by the reference only: {_show(missing)}\nmatched by {engine.name} only: {_show(extra)}"
    )
    assert ids == expected, "same ids, different order: select must order by (@timestamp, id)"
    for doc_id, doc in got[:20]:
        assert doc == data.docs[doc_id], f"document {doc_id} came back changed"


@pytest.mark.parametrize(("engine", "key"), _cases(SINGLE[::7]), indirect=["engine"])
def test_select_scoped_agrees(engine: Any, key: str) -> None:
    """Half-open scopes on event.ingested and @timestamp cut through the rule's own events."""
    data = corpus()
    own = sorted(data.docs[i]["@timestamp"] for i in data.own[key])
    ingested = sorted(data.docs[i]["event"]["ingested"] for i in data.own[key])
    scopes = [
        Scope(timestamp=(own[len(own) // 3], own[2 * len(own) // 3])),
        Scope(ingested=(ingested[len(ingested) // 4], ingested[-1])),
        Scope(ingested=(ingested[0], ingested[-1]), timestamp=(own[len(own) // 2], own[-1])),
    ]
    for scope in scopes:
        expected = data.select(key, scope)
        ids = [i for i, _ in engine.select(RULES[key], scope)]
        assert ids == expected, f"{engine.name} on {scope}: only reference {set(expected) - set(ids)}, " + (
            f"only {engine.name} {set(ids) - set(expected)}"
        )


@pytest.mark.parametrize(("engine", "key"), _cases(CORRELATIONS), indirect=["engine"])
def test_correlate_agrees(engine: Any, key: str) -> None:
    data = corpus()
    rule = RULES[key]
    for scope in (Scope(), Scope(timestamp=data.regions[key])):
        expected = data.correlate(key, scope)
        got = windows(engine.correlate(rule, scope))
        assert got == expected, (
            f"{engine.name} windows differ for {rule.correlation!r} in {scope}\n"
            f"reference only: {[w for w in expected if w not in got][:3]}\n"
            f"{engine.name} only: {[w for w in got if w not in expected][:3]}"
        )


@pytest.mark.parametrize("key", CORRELATIONS, ids=CORRELATIONS)
def test_correlation_events_fire_and_miss(key: str) -> None:
    """The generated member events give each correlation satisfying and unsatisfying anchors."""
    data = corpus()
    found = data.correlate(key, Scope(timestamp=data.regions[key]))
    anchors = {w[1] for w in found}
    own = set(data.own[key])
    assert anchors & own, f"no window of {key} fires on its own events"
    assert own - anchors, f"every event of {key} anchors a satisfying window"
