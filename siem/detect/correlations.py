"""A cycle's correlation alerts: which windows to compute, computed together, folded into alerts.

Which: a scheduled cycle's new matches of a correlation rule say where its windows can be
(``around``: ``[bucket(t − timespan), bucket_end(t) + timespan)`` around each, stretches less than an
hour apart computed in one query); a retro-hunt does not select them at all, since every member in
its range is new (``over_range``: the range's reach at once, a member new when its @timestamp is in
the range).

Together: every correlation of a group is handed to the engine at once. An engine with
``correlate_many`` runs them side by side (on OpenSearch each is a chain of round trips: mapping,
aggregation pages, point in time, member pages); otherwise one after the other.

Folded: the satisfying windows with a new member name the touched (group, period) alerts, and every
satisfying window anchored in such a period is folded into it, so an alert is a function of the
data only: reruns and overlapping windows rebuild the same document.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from siem.detect import alerts as alerts_mod
from siem.detect.engines import Engine, Scope, micros
from siem.detect.fold import alert_id, window_key
from siem.detect.rules import Rule
from siem.detect.windows import Member, Window, merged

Match = tuple[str, dict[str, Any]]

# Correlation windows around matches less than an hour apart are computed in one query: reading the
# base rules' events of the gap costs less than a round trip per match (bench/detect.py).
JOIN_US = 3600 * 1_000_000


@dataclass
class Wanted:
    """One correlation rule's windows to compute this cycle: over ``spans`` (epoch µs, half-open);
    ``is_new`` says which members make a window's alert worth rebuilding."""

    rule: Rule
    spans: list[tuple[int, int]]
    is_new: Callable[[Member], bool]


def around(rule: Rule, matches: list[Match]) -> Wanted:
    new_ids = {i for i, _ in matches}
    times = {alerts_mod.event_ts(d) for _, d in matches}
    return Wanted(rule, merged([reach(rule, t, t + 1) for t in times], join=JOIN_US), lambda m: m.id in new_ids)


def over_range(rule: Rule, scope: Scope) -> Wanted:
    assert scope.timestamp is not None
    low, high = micros(scope.timestamp[0]), micros(scope.timestamp[1])
    return Wanted(rule, [reach(rule, low, high)], lambda m: low <= m.ts < high)


def start(engine: Engine, wanted: list[Wanted]) -> Callable[[], dict[str, list[Window] | BaseException]]:
    """``compute``, begun now where the engine runs correlations side by side: the windows of a
    retro-hunt do not depend on its selection, so the node works on both at once (measured on the
    1M-event retro-hunt of ``bench/detect.py``: the correlations' client work and the selection's node
    work overlap). Call the result for the windows. Elsewhere it computes when called."""
    if not wanted or getattr(engine, "correlate_many", None) is None:
        return lambda: compute(engine, wanted)
    pool = ThreadPoolExecutor(1, thread_name_prefix="hunt")
    future = pool.submit(compute, engine, wanted)
    pool.shutdown(wait=False)
    return future.result


def compute(engine: Engine, wanted: list[Wanted]) -> dict[str, list[Window] | BaseException]:
    """rule id → every satisfying window over its spans (or what the engine raised for it)."""
    requests = [(w.rule, Scope(timestamp=(_iso(low), _iso(high)))) for w in wanted for low, high in w.spans]
    many = getattr(engine, "correlate_many", None)
    results: list[list[Window] | BaseException]
    if many is not None and len(requests) > 1:
        results = many(requests)
    else:
        results = [_attempt(engine, rule, scope) for rule, scope in requests]
    failed: dict[str, BaseException] = {}
    found: dict[str, dict[tuple, Window]] = {w.rule.id: {} for w in wanted}
    for (rule, _), result in zip(requests, results, strict=True):
        if isinstance(result, BaseException):
            failed.setdefault(rule.id, result)
        else:
            found[rule.id].update(((w.group, w.anchor.id), w) for w in result)
    return {rule_id: failed.get(rule_id, list(windows.values())) for rule_id, windows in found.items()}


def build(
    wanted: Wanted,
    windows: list[Window],
    fetch: Callable[[list[str]], dict[str, dict[str, Any]]],
    max_event_ids: int,
) -> tuple[dict[str, dict[str, Any]], int]:
    """The alerts of every (group, period) a satisfying window with a new member touches, each
    folding every satisfying window anchored in that period; and how many new members they hold."""
    rule, corr = wanted.rule, wanted.rule.correlation
    assert corr is not None
    keyed = [(window_key(rule, w), w) for w in windows]
    touched = {key for key, w in keyed if any(wanted.is_new(m) for m in w.members)}
    chosen: dict[tuple, list[Window]] = {}
    for key, w in keyed:
        if key in touched:
            chosen.setdefault(key, []).append(w)
    held = {key: _union(ws) for key, ws in chosen.items()}
    members: dict[str, Member] = {i: m for union in held.values() for i, m in union.items()}
    docs = fetch(sorted(i for i, m in members.items() if m.shown is None))  # read with the windows otherwise
    out = {}
    for key, ws in chosen.items():
        covered = alerts_mod.Covered(max_event_ids)
        for doc_id in sorted(held[key]):
            member = members[doc_id]
            if member.shown is not None:
                covered.add_shown(doc_id, member.ts, member.shown)
            else:
                covered.add(doc_id, member.ts, docs.get(doc_id, {}))
        group = dict(zip(corr.group_by, ws[0].group, strict=True))
        aid = alert_id(rule, key)
        out[aid] = alerts_mod.build(
            rule, aid, covered, group=group, window_start=min(w.start for w in ws), value=max(w.value for w in ws)
        )
    return out, sum(1 for m in members.values() if wanted.is_new(m))


def _union(windows: list[Window]) -> dict[str, Member]:
    """The members of windows of one group, each read once: a window holds every member of its group
    from its anchor on for one timespan (``windows.satisfying``), so what a later-anchored window
    holds up to the furthest member read so far was read already. Windows of a busy group overlap
    almost whole; walking each (thousands of members times thousands of windows) was the cost."""
    out: dict[str, Member] = {}
    furthest: tuple[int, str] | None = None
    for w in sorted(windows, key=lambda w: (w.anchor.ts, w.anchor.id)):
        start = 0 if furthest is None else bisect_right(w.members, furthest, key=_order)
        for m in w.members[start:]:
            out[m.id] = m
        if w.members and (furthest is None or _order(w.members[-1]) > furthest):
            furthest = _order(w.members[-1])
    return out


def _order(m: Member) -> tuple[int, str]:
    return m.ts, m.id


def reach(rule: Rule, first: int, end: int) -> tuple[int, int]:
    """Where every window a member at ``[first, end)`` can be in lies, with every window anchored in
    the periods those touch: ``[period(first − timespan), period_end(end − 1) + timespan)``."""
    assert rule.correlation is not None
    span = _us(rule.correlation.timespan.total_seconds())
    period = _us(rule.suppress.period.total_seconds()) if rule.suppress else span
    return (first - span) // period * period, ((end - 1) // period + 1) * period + span


def _attempt(engine: Engine, rule: Rule, scope: Scope) -> list[Window] | BaseException:
    try:
        return engine.correlate(rule, scope)
    except Exception as exc:  # that rule fails alone
        return exc


def _iso(us: int) -> str:
    return alerts_mod.iso_of_micros(us)


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)
