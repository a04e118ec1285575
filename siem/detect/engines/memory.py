"""The offline engine: rules over a list of normalized events, no store (``siem rules test``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from siem.detect.engines import Scope, micros
from siem.detect.evaluate import matches
from siem.detect.rules import Rule
from siem.detect.windows import Window, members_of, satisfying


class MemoryEngine:
    name = "offline"

    def __init__(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.events = sorted(events, key=lambda e: (_ts(e[1]), e[0]))
        self._by_id = dict(events)

    def select(self, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        for doc_id, doc in self.events:
            if scope.holds(doc) and matches(rule.condition, doc):
                yield doc_id, doc

    def correlate(self, rule: Rule, scope: Scope) -> list[Window]:
        assert rule.correlation is not None
        docs = [(i, d) for i, d in self.events if scope.holds(d)]
        return satisfying(rule.correlation, members_of(rule.correlation, docs, _ts))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self._by_id[i] for i in ids if i in self._by_id}


def _ts(doc: dict[str, Any]) -> int:
    ts = doc.get("@timestamp")
    return micros(ts) if isinstance(ts, str) else 0
