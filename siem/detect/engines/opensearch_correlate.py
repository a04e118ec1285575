"""Correlations on OpenSearch: aggregations prune the groups, ``windows.satisfying`` decides.

1. A ``composite`` aggregation over the group-by fields, paged with ``after_key`` (no bucket limit),
   or one ``terms`` aggregation keeping only the groups with enough events where that is exact
   (``_few_candidates``), computes per group what bounds the condition from above: ``doc_count`` (event_count), the
   ``cardinality`` of ``condition.field`` (value_count; for a number or an address, which may have
   several text forms, its ``value_count``) or how many referenced rules matched at all
   (temporal, through a ``filters`` sub-aggregation). For ``gte``/``gt`` a group whose bound misses
   the threshold cannot satisfy in any window and is dropped; for ``lte``/``lt``/``eq`` (and when a
   group-by field is neither a plain keyword nor an address) every group is a candidate. The
   candidates are then bounded per pair of neighbouring ``timespan``-wide buckets of ``@timestamp``
   (``_in_time``): a group busy all day but never in one burst is dropped too, and only the buckets
   around the bursts that pass are read.
2. The candidates' member events are streamed (point in time, timestamp order) with only the fields
   the windows need and those their alert shows (``windows.SHOWN``: the runner need not read a
   member twice); each referenced rule is a named query, so ``matched_queries`` says which rules
   an event matched (rules that are not exact in DSL are re-checked with ``evaluate.matches``).
   Group keys come from ``windows.group_keys`` — the same function the reference uses — so a
   multi-valued group-by field puts an event in every combination, as composite does.
3. ``windows.satisfying`` computes the sliding windows: one definition for every engine.
"""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import TransportError

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.engines.opensearch import OpenSearchEngine, index_filter, refused_regexp, scope_query, ts_micros
from siem.detect.engines.opensearch_dsl import MATCH_NONE, Compiler, all_of, any_of, live_types
from siem.detect.evaluate import matches, values
from siem.detect.rules import Rule
from siem.detect.windows import SHOWN, Member, Window, group_keys, merged, satisfying, shown
from siem.sinks.opensearch import PartialAnswer

COMPOSITE_PAGE = 10_000
KEYS_PER_FETCH = 1000
MAX_SPANS = 1000  # more spans of time than this: the candidates' events are fetched whole


def correlate(engine: OpenSearchEngine, rule: Rule, scope: Scope) -> list[Window]:
    try:
        return _correlate(engine, rule, scope, True)
    except (TransportError, PartialAnswer) as exc:  # a node may refuse a regexp on some shards only
        if not refused_regexp(exc):
            raise
        return _correlate(engine, rule, scope, False)


def _correlate(engine: OpenSearchEngine, rule: Rule, scope: Scope, regexp: bool) -> list[Window]:
    corr = rule.correlation
    assert corr is not None
    fields = set(corr.group_by) | ({corr.value_field} if corr.value_field else set())
    for ref in corr.rules:
        fields |= ir.fields_of(ref.condition)
    types = live_types(engine.client, engine.pattern, fields)
    compiler = Compiler(types, regexp)
    compiled = [compiler.compile(ref.condition) for ref in corr.rules]
    named = [{"bool": {"filter": [dsl], "_name": f"r{i}"}} for i, (dsl, _) in enumerate(compiled) if dsl != MATCH_NONE]
    members = ir.any_of([ref.condition for ref in corr.rules])
    base = all_of([scope_query(scope), index_filter(engine.pattern, members), any_of(named)])
    if base == MATCH_NONE:
        return []
    kinds = {types(f).kind if not types(f).flat_root else "flat_object" for f in corr.group_by}
    candidates: list[tuple[str, ...]] | None = None
    if corr.op in ("gte", "gt") and kinds <= {"keyword", "ip"} and corr.group_by:
        sub = _bound_aggregation(corr, compiled, types)
        if sub is not None:
            candidates = _few_candidates(engine, base, corr, sub)
            if candidates is None:
                candidates = list(_candidates(engine, base, corr, sub))
            if candidates:
                candidates, spans = _in_time(engine, base, corr, sub, candidates)
                if scope.timestamp is not None and 0 < len(spans) <= MAX_SPANS:
                    base = all_of([base, any_of([{"range": {"@timestamp": _millis(*s)}} for s in spans])])
            if not candidates:
                return []
    includes = sorted(fields | {"@timestamp", "event.ingested", *SHOWN})
    inexact = {i for i, (_, exact) in enumerate(compiled) if not exact}
    groups: dict[tuple[str, ...], list[Member]] = {}
    batches = (
        [None]
        if candidates is None
        else [candidates[i : i + KEYS_PER_FETCH] for i in range(0, len(candidates), KEYS_PER_FETCH)]
    )
    for batch in batches:
        query = base
        wanted = None
        if batch is not None:
            # an ip bucket key is the address's canonical text, the group key the event's own: the
            # terms query keeps the candidates' events, and a group it did not pick has a bound under
            # the threshold (its events here are a subset of all of them), so no window
            wanted = set(batch) if kinds == {"keyword"} else None
            terms = [{"terms": {f: sorted({key[n] for key in batch})}} for n, f in enumerate(corr.group_by)]
            query = all_of([base, *terms])
        for hit in engine.stream(query, {"includes": includes}, scope.timestamp is not None):
            doc = hit["_source"]
            if not scope.holds(doc):
                continue
            named_hits = {int(name[1:]) for name in hit.get("matched_queries", [])}
            hit_rules = frozenset(i for i in named_hits if i not in inexact or matches(corr.rules[i].condition, doc))
            if not hit_rules:
                continue
            value: tuple[str, ...] = ()
            if corr.value_field:
                texts = {t for v in values(doc, corr.value_field) if (t := ir.text_form(v)) is not None}
                value = tuple(sorted(texts))
            member = Member(hit["_id"], ts_micros(doc), hit_rules, value, shown(doc))
            for key in group_keys(doc, corr.group_by):
                if wanted is None or key in wanted:
                    groups.setdefault(key, []).append(member)
    return satisfying(corr, groups)


def _bound_aggregation(corr: Any, compiled: list[tuple[dict[str, Any], bool]], types: Any) -> dict[str, Any] | None:
    """The sub-aggregation bounding the condition per group (None: doc_count is the bound)."""
    if corr.type == "event_count":
        return {}
    if corr.type == "value_count":
        if not corr.value_field or types(corr.value_field).flat_root:
            return None
        kind = types(corr.value_field).kind
        if kind == "keyword":
            return {"v": {"cardinality": {"field": corr.value_field, "precision_threshold": 40000}}}
        if kind in ("long", "ip"):  # one number may have several text forms: count values, not distinct ones
            return {"v": {"value_count": {"field": corr.value_field}}}
        return None
    filters = {f"r{i}": dsl for i, (dsl, _) in enumerate(compiled)}
    return {"r": {"filters": {"filters": filters}}}


def _bound(corr: Any, *buckets: dict[str, Any]) -> int:
    """What bounds the condition over the events of ``buckets`` together."""
    if corr.type == "event_count":
        return sum(int(b["doc_count"]) for b in buckets)
    if corr.type == "value_count":  # distinct values of a union: at most the sum
        return sum(int(b["v"]["value"]) for b in buckets)
    hit = {name for b in buckets for name, rb in b["r"]["buckets"].items() if rb["doc_count"] > 0}
    if corr.type == "temporal_ordered" and "r0" not in hit:
        return 0
    return len(hit)


def _candidates(engine: OpenSearchEngine, base: dict[str, Any], corr: Any, sub: dict[str, Any]):
    """The groups whose bound over every event in scope passes the threshold."""
    sources = [{f"g{n}": {"terms": {"field": f}}} for n, f in enumerate(corr.group_by)]
    for bucket in _buckets(engine, base, sources, sub):
        if _passes(corr, _bound(corr, bucket)):
            yield _group(corr, bucket)


def _few_candidates(engine: OpenSearchEngine, base: dict[str, Any], corr: Any, sub: dict[str, Any]) -> list | None:
    """``_candidates`` in one ``terms`` aggregation when that is exact, else None.

    A group needs at least ``least`` events to pass: its events bound a count, its matched rules,
    and — when no event holds two values of ``condition.field`` (the request checks: as many values
    as events with one) — its distinct values. Composite pages build a bucket for every group (one
    per address in a day of VPC flows: ~50k buckets, ~0.4 s of the node per cycle); ``terms`` with
    ``min_doc_count`` returns only the groups with enough events and computes the bound only for
    them (``breadth_first``). That is exact only when one shard holds every event in scope
    (``shard_min_doc_count`` prunes per shard, and the node skips the shards whose index or time
    range cannot match: ``pre_filter_shard_size`` 1) and when fewer groups than a page pass."""
    if len(corr.group_by) != 1:
        return None
    least = max(corr.count + (corr.op == "gt"), 1)
    terms = {
        "field": corr.group_by[0],
        "size": COMPOSITE_PAGE,
        "shard_size": COMPOSITE_PAGE,
        "min_doc_count": least,
        "shard_min_doc_count": least,
        "collect_mode": "breadth_first",
    }
    aggs: dict[str, Any] = {"groups": {"terms": terms, **({"aggs": sub} if sub else {})}}
    if corr.type == "value_count":
        aggs["values"] = {"value_count": {"field": corr.value_field}}
        aggs["holding"] = {"filter": {"exists": {"field": corr.value_field}}}
    response = engine.search(
        index=engine.pattern,
        body={"query": base, "size": 0, "aggs": aggs, "track_total_hits": False},
        params={"ignore_unavailable": "true", "allow_no_indices": "true", "pre_filter_shard_size": "1"},
    )
    shards, found = response["_shards"], response.get("aggregations") or {}
    if shards["total"] - shards.get("skipped", 0) > 1:
        return None
    buckets = (found.get("groups") or {}).get("buckets", [])
    if len(buckets) >= COMPOSITE_PAGE:
        return None
    if corr.type == "value_count" and found and found["values"]["value"] != found["holding"]["doc_count"]:
        return None
    return [(str(b["key"]),) for b in buckets if _passes(corr, _bound(corr, b))]


def _in_time(
    engine: OpenSearchEngine, base: dict[str, Any], corr: Any, sub: dict[str, Any], candidates: list[tuple[str, ...]]
) -> tuple[list[tuple[str, ...]], list[tuple[int, int]]]:
    """The candidates some window could satisfy, and the spans of time (epoch milliseconds,
    half-open, merged) their satisfying windows can lie in.

    A window ``[t, t + timespan)`` lies within two consecutive ``timespan``-wide buckets of
    ``@timestamp`` (aligned on the epoch; the node keeps milliseconds, floored, which puts an event
    in the bucket its microseconds do when the timespan is whole milliseconds), so the bounds of two
    neighbours together bound every window. A group active all day but never in a burst is dropped
    here, before its events are fetched; a group kept for one burst has only the events of the
    buckets around its bursts fetched. That leaves every satisfying window whole, and a window it
    cuts short had a bound under the threshold anyway: fewer events never raise a count, a number
    of distinct values or of ordered steps."""
    span_us = int(corr.timespan.total_seconds() * 1_000_000)
    if span_us % 1000:
        return candidates, []
    span = span_us // 1000
    sources = [{f"g{n}": {"terms": {"field": f}}} for n, f in enumerate(corr.group_by)]
    sources.append({"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{span}ms"}}})
    kept: set[tuple[str, ...]] = set()
    spans: list[tuple[int, int]] = []
    for start in range(0, len(candidates), KEYS_PER_FETCH):
        batch = candidates[start : start + KEYS_PER_FETCH]
        terms = [{"terms": {f: sorted({key[n] for key in batch})}} for n, f in enumerate(corr.group_by)]
        previous: tuple[tuple[str, ...], int, dict[str, Any]] | None = None
        for bucket in _buckets(engine, all_of([base, *terms]), sources, sub):
            group, at = _group(corr, bucket), bucket["key"]["t"]
            pair = [bucket]
            if previous is not None and previous[0] == group and previous[1] == at - span:
                pair.append(previous[2])
            if _passes(corr, _bound(corr, *pair)):
                kept.add(group)
                spans.append((at - span * (len(pair) - 1), at + span))
            previous = (group, at, bucket)
    return [key for key in candidates if key in kept], merged(spans)


def _millis(low: int, high: int) -> dict[str, Any]:
    return {"gte": low, "lt": high, "format": "epoch_millis"}


def _buckets(engine: OpenSearchEngine, query: dict[str, Any], sources: list[dict[str, Any]], sub: dict[str, Any]):
    """Every bucket of a ``composite`` aggregation, paged with ``after_key`` (no bucket limit)."""
    after = None
    while True:
        composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
        if after is not None:
            composite["after"] = after
        aggs: dict[str, Any] = {"groups": {"composite": composite}}
        if sub:
            aggs["groups"]["aggs"] = sub
        response = engine.search(
            index=engine.pattern,
            body={"query": query, "size": 0, "aggs": aggs, "track_total_hits": False},
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        result = response.get("aggregations", {}).get("groups")
        if not result or not result["buckets"]:
            return
        yield from result["buckets"]
        after = result.get("after_key")
        if after is None or len(result["buckets"]) < COMPOSITE_PAGE:  # every shard's groups are out
            return


def _group(corr: Any, bucket: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(bucket["key"][f"g{n}"]) for n in range(len(corr.group_by)))


def _passes(corr: Any, bound: int) -> bool:
    return bound > corr.count or (corr.op == "gte" and bound == corr.count)
