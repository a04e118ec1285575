"""Sliding correlation windows: the reference computation (see docs/detection.md).

Every event of a group anchors a window ``[t, t + timespan)``; the satisfying anchors are the
result. Engines that cannot express this natively (OpenSearch: aggregations prune the groups that
cannot satisfy, then the candidates' timestamps are fetched) call ``satisfying`` on the few
fields they fetched, so every engine shares one definition; DuckDB computes it in SQL with
window functions and is tested against this.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from siem.detect import ir
from siem.detect.evaluate import values
from siem.detect.rules import Correlation

# what a correlation alert shows of each event it covers (``alerts.Covered``)
SHOWN = ("related.ip", "related.user", "event.action")
Shown = tuple[tuple[str, ...], ...]  # the text forms of each SHOWN field


@dataclass(frozen=True, slots=True)
class Member:
    """One event of a correlation: what the window computation needs, and what its alert shows when
    the engine read that with it (``shown``; None: the runner fetches the event)."""

    id: str
    ts: int  # @timestamp in epoch microseconds
    rules: frozenset[int]  # indexes of the referenced rules it matched
    value: tuple[str, ...] = ()  # value_count: text forms of condition.field
    shown: Shown | None = field(default=None, compare=False)


def texts(doc: dict[str, Any], path: str) -> list[str]:
    """Text forms of the values at a dotted path (``evaluate.values`` semantics; objects only is fast)."""
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, dict):
            break
        node = node.get(key)
    else:
        if node is None or isinstance(node, dict):
            return []
        if not isinstance(node, list):
            text = ir.text_form(node)
            return [] if text is None else [text]
        if all(isinstance(v, str) for v in node):
            return list(node)
    return [t for v in values(doc, path) if (t := ir.text_form(v)) is not None]


def shown(doc: dict[str, Any]) -> Shown:
    return tuple(tuple(texts(doc, path)) for path in SHOWN)


@dataclass(frozen=True, slots=True)
class Window:
    group: tuple[str, ...]
    anchor: Member
    members: tuple[Member, ...]
    value: int  # what the condition was tested on

    @property
    def start(self) -> int:
        return self.anchor.ts


def group_keys(doc: dict[str, Any], group_by: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every combination of the group-by values (a multi-valued field puts the event in each group)."""
    per_field = []
    for name in group_by:
        texts = sorted({t for v in values(doc, name) if (t := ir.text_form(v)) is not None})
        if not texts:
            return []
        per_field.append(texts)
    return [tuple(combo) for combo in product(*per_field)]


def satisfying(corr: Correlation, groups: dict[tuple[str, ...], list[Member]]) -> list[Window]:
    """The satisfying anchors of every group, ordered by group then anchor (ts, id)."""
    span = int(corr.timespan.total_seconds() * 1_000_000)
    ordered = corr.type == "temporal_ordered"
    out: list[Window] = []
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda m: (m.ts, m.id))
        times = [m.ts for m in members]
        following = _following(members, len(corr.rules)) if ordered else []
        for at, anchor in enumerate(members):
            first = bisect_left(times, anchor.ts)  # events at the anchor's time are in its window
            last = bisect_left(times, anchor.ts + span)
            window = members[first:last]
            value = _steps(anchor, at, last, following) if ordered else _value(corr, window)
            if value is not None and corr.holds(value):
                out.append(Window(group, anchor, tuple(window), value))
    return out


def _value(corr: Correlation, window: list[Member]) -> int:
    if corr.type == "event_count":
        return len(window)
    if corr.type == "value_count":
        return len({v for m in window for v in m.value})
    return len({r for m in window for r in m.rules})  # temporal


def _following(members: list[Member], steps: int) -> list[list[int]]:
    """For each later step k (1 ≤ k < steps), the index of the first member at or after each
    position that matched rule k (``len(members)``: none): an anchor's ordered steps are then found
    in a few lookups, not by walking its window — one common group (a user name copied all day)
    has windows of thousands of members."""
    out: list[list[int]] = [[]]  # step 0 is the anchor itself
    for k in range(1, steps):
        row = [len(members)] * (len(members) + 1)
        for i in range(len(members) - 1, -1, -1):
            row[i] = i if k in members[i].rules else row[i + 1]
        out.append(row)
    return out


def _steps(anchor: Member, at: int, end: int, following: list[list[int]]) -> int | None:
    """temporal_ordered: the anchor (``members[at]``) matches the first rule, and each next rule is
    matched by a later member of the window (index below ``end``), in order."""
    if 0 not in anchor.rules:
        return None
    step, position = 1, at
    while step < len(following):
        found = following[step][position + 1]
        if found >= end:
            break
        step, position = step + 1, found
    return step


def merged(intervals: list[tuple[int, int]], join: int = 0) -> list[tuple[int, int]]:
    """Half-open intervals merged where they overlap or lie less than ``join`` apart (the runner reads
    one stretch of time per query: a late event from last week does not make a cycle read the whole
    week in between, while matches minutes apart share one query)."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(intervals):
        if out and low <= out[-1][1] + join:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def members_of(
    corr: Correlation, docs: Iterable[tuple[str, dict[str, Any]]], ts_of: Any
) -> dict[tuple[str, ...], list[Member]]:
    """Group (id, doc) pairs of events that matched any referenced rule (offline use)."""
    from siem.detect.evaluate import matches

    groups: dict[tuple[str, ...], list[Member]] = {}
    for doc_id, doc in docs:
        hit = frozenset(i for i, rule in enumerate(corr.rules) if matches(rule.condition, doc))
        if not hit:
            continue
        value: tuple[str, ...] = ()
        if corr.value_field:
            value = tuple(sorted({t for v in values(doc, corr.value_field) if (t := ir.text_form(v)) is not None}))
        for key in group_keys(doc, corr.group_by):
            groups.setdefault(key, []).append(Member(doc_id, ts_of(doc), hit, value, shown(doc)))
    return groups
