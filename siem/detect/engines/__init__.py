"""Engines run compiled rules over stored events; each must agree with the offline evaluator.

* ``memory``: the offline evaluator over a list of events (``siem rules test``; the oracle).
* ``duckdb``: SQL over the embedded store's ``events`` table.
* ``opensearch``: Query DSL and aggregations over ``<prefix>-events-*``.

All three answer the same two questions, with the same meaning (``siem.detect.ir`` for a single
event, ``docs/detection.md`` and ``siem.detect.windows`` for correlations).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from siem.detect import ir
from siem.detect.rules import Rule
from siem.detect.windows import Window


@dataclass(frozen=True, slots=True)
class Scope:
    """Which events a query looks at: half-open ISO 8601 UTC ranges; None = unbounded."""

    ingested: tuple[str, str] | None = None  # on event.ingested (scheduled cycles)
    timestamp: tuple[str, str] | None = None  # on @timestamp (retro-hunts, correlation windows)

    def holds(self, doc: dict[str, Any]) -> bool:
        """Is the event inside the scope, to the microsecond (engines whose store query is coarser
        check each hit with this)?"""
        for bounds, name in ((self.ingested, "event.ingested"), (self.timestamp, "@timestamp")):
            if bounds is None:
                continue
            found = _first(doc, name)
            low, high = _span(bounds)
            if found is None or not (low <= micros(found) < high):
                return False
        return True


@lru_cache(maxsize=256)
def _span(bounds: tuple[str, str]) -> tuple[int, int]:
    """A scope's bounds in epoch microseconds (``holds`` runs for every hit: parse them once)."""
    return micros(bounds[0]), micros(bounds[1])


def _first(doc: dict[str, Any], path: str) -> str | None:
    """The text of the first value at a dotted path (``evaluate.values``; a string held by objects
    alone, as a time always is, without building the list)."""
    node: Any = doc
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, str):
        return node
    from siem.detect.evaluate import values

    found = values(doc, path)
    return str(found[0]) if found else None


class Engine(Protocol):
    name: str

    def select(self, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        """(document id, document) of every event in scope matching ``rule.condition``,
        ordered by (@timestamp, id). Streams: no limit on how many."""
        ...

    def correlate(self, rule: Rule, scope: Scope) -> list[Window]:
        """Every satisfying window of a correlation rule among the events in scope
        (``scope.timestamp`` bounds the member events), ordered by group then anchor."""
        ...

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Documents by id (alerts show the ECS fields of the events they cover)."""
        ...


def micros(iso: str) -> int:
    """Epoch microseconds of an ISO 8601 instant (the unit window arithmetic uses)."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


DATASET = "event.dataset"


def datasets(node: ir.Node) -> frozenset[str] | None:
    """Lower-cased ``event.dataset`` values one of which every event matching ``node`` must have, or
    None when the condition does not pin it down: a literal Str leaf on ``event.dataset``, an And with
    such a conjunct, an Or whose every branch has one. (The events table's ``dataset`` column holds
    the document's ``event.dataset``: the pipeline takes the one from the other.)"""
    if isinstance(node, ir.Str):
        literal = node.literal
        return frozenset({literal.lower()}) if node.field == DATASET and literal is not None else None
    if isinstance(node, ir.And):
        found = [d for d in (datasets(a) for a in node.args) if d is not None]
        return min(found, key=len) if found else None
    if isinstance(node, ir.Or):
        parts = [datasets(a) for a in node.args]
        if not parts or any(d is None for d in parts):
            return None
        return frozenset().union(*parts)  # type: ignore[arg-type]
    return None
