"""The OpenSearch engine: runs compiled rules over the events index and streams the hits back.

This module is the I/O half of the OpenSearch backend — scope bounds, point-in-time paging in
(@timestamp, id) order (``Cursor``), ``_msearch`` batching, the fallback when a node refuses a regexp,
and the post-filter for rules that are not exact in DSL. What a rule compiles to lives in
``opensearch_dsl`` (and the regexps it builds in ``opensearch_regex``); correlations are in
``opensearch_correlate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opensearchpy.exceptions import TransportError

from siem.detect import ir
from siem.detect.engines import Scope, datasets, micros
from siem.detect.engines import opensearch_words as words
from siem.detect.engines.opensearch_dsl import (
    MATCH_ALL,
    MATCH_NONE,
    Compiler,
    Types,
    all_of,
    exists,
    live_types,
    none_of,
)
from siem.detect.engines.opensearch_values import distinct_values, families_of, plan, resolve
from siem.detect.evaluate import matches
from siem.detect.fieldtypes import field_type
from siem.detect.rules import Rule
from siem.detect.windows import Window
from siem.sinks.opensearch import PartialAnswer, missing_shards, whole, whole_search

PAGE = 1000  # hits per search_after page
GROUP = 10_000  # events sharing one millisecond fetched in one request (more: scrolled)
KEEP_ALIVE = "5m"
# correlations computed at once (measured on 2 cores, 8 correlations: 1 → 1.3 s, 2 → 0.9 s, 3 → 0.8 s,
# 4 → 0.9 s: beyond that the node's queue, not the round trips, is the wait)
CORRELATE_SIDE_BY_SIDE = 3
MIN_LEAVES = 8  # uses of pattern leaves on one field worth listing its values for (each ~10 ms per shard)


def _floor_ms(iso: str) -> int:
    return micros(iso) // 1000


def _ceil_ms(iso: str) -> int:
    return -((-micros(iso)) // 1000)


def scope_query(scope: Scope) -> dict[str, Any]:
    """A superset of the scope (millisecond bounds); the exact check is ``Scope.holds`` on each hit."""
    out = []
    for bounds, name in ((scope.ingested, "event.ingested"), (scope.timestamp, "@timestamp")):
        if bounds is not None:
            out.append(
                {"range": {name: {"gte": _floor_ms(bounds[0]), "lt": _ceil_ms(bounds[1]), "format": "epoch_millis"}}}
            )
    return all_of(out)


def index_filter(pattern: str, node: ir.Node) -> dict[str, Any]:
    """A filter on ``_index`` keeping the indices of the datasets ``node`` pins down (events live in
    ``<prefix>-events-<family>-<period>``, see ``siem.sinks.index_layout``). ``_index`` is constant per
    index, so the node rewrites the rule to nothing on every other index before building its term
    automata: a CloudTrail rule costs nothing on the VPC flow indices."""
    from siem.sinks.index_layout import family_of

    names = datasets(node)
    if names is None:
        return MATCH_ALL
    stem = pattern.removesuffix("*")
    clauses = [
        {"wildcard": {"_index": {"value": f"{stem}{family}-*"}}} for family in sorted(set(map(family_of, names)))
    ]
    if not clauses:
        return MATCH_NONE
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def ts_micros(doc: dict[str, Any]) -> int:
    ts = doc.get("@timestamp")
    return micros(ts) if isinstance(ts, str) else 0


def source_of(rule: Rule, exact: bool) -> Any:
    """What to fetch of a rule's hits: the whole event, except for a correlation rule's members —
    the runner only needs when they happened (and the post-filter the fields it reads), and a burst
    rule can have thousands of them."""
    if rule.correlation is None:
        return True
    wanted = {"@timestamp", "event.ingested"} | (set() if exact else ir.fields_of(rule.condition))
    return {"includes": sorted(wanted)}


def refused_regexp(error: Any) -> bool:
    """Did the node refuse a regexp (too long, too complex to determinize)?"""
    text = str(getattr(error, "info", None) or error).lower()
    return any(s in text for s in ("regex", "determiniz", "too_complex", "toocomplex"))


class Cursor:
    """Streams one query in (@timestamp, id) order, one search body at a time (so many cursors can
    share an ``_msearch``). There is no unique sort tiebreaker here (``_id`` is not sortable,
    ``_shard_doc`` is not supported on 2.19), so pages end at a timestamp boundary: a full page's last
    millisecond is refetched whole, and every batch is re-sorted by (microseconds, id)."""

    def __init__(self, query: dict[str, Any], source: Any = True, page: int = PAGE, timed: bool = False) -> None:
        self.query = query
        self.source = source
        self.page = page if source is True else page * 10  # a few fields per hit: ten times as many
        # missing (no @timestamp: first, like ts 0; skipped when the scope bounds @timestamp) → page ⇄ group → done
        self.phase = "page" if timed else "missing"
        self.timed = timed
        self.fresh = True  # no response fed yet
        self.after: int | None = None
        self.group: int | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def body(self) -> dict[str, Any]:
        ts = "@timestamp"
        if self.phase == "missing":
            query = all_of([self.query, none_of(exists(ts))])
            return {"query": query, "size": GROUP, "track_total_hits": True, "_source": self.source}
        if self.phase == "group":
            bound = {"gte": self.group, "lte": self.group, "format": "epoch_millis"}
            query = all_of([self.query, {"range": {ts: bound}}])
            return {"query": query, "size": GROUP, "track_total_hits": True, "_source": self.source}
        query = self.query
        if self.after is not None:
            query = all_of([query, {"range": {ts: {"gt": self.after, "format": "epoch_millis"}}}])
        sort = [{ts: {"order": "asc", "unmapped_type": "date"}}]
        return {
            "query": all_of([query, exists(ts)]),
            "size": self.page,
            "sort": sort,
            "track_total_hits": False,
            "_source": self.source,
        }

    def feed(self, response: dict[str, Any], scroll: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> list:
        """The hits this response completes, in order; advances the cursor."""
        self.fresh = False
        hits = response["hits"]["hits"]
        if self.phase in ("missing", "group"):
            if response["hits"]["total"]["value"] > len(hits):
                hits = scroll(self.body())
            self.phase, self.after = ("page", self.after) if self.phase == "missing" else ("page", self.group)
            return sorted(hits, key=_order)
        if len(hits) < self.page:
            self.phase = "done"
            return sorted(hits, key=_order)
        last = hits[-1]["sort"][0]
        self.phase, self.group = "group", last
        return sorted((h for h in hits if h["sort"][0] < last), key=_order)


def _order(hit: dict[str, Any]) -> tuple[int, str]:
    return ts_micros(hit.get("_source") or {}), hit["_id"]


class OpenSearchEngine:
    name = "opensearch"

    def __init__(self, store: Any, page: int = PAGE, min_leaves: int = MIN_LEAVES) -> None:
        self.client = store.client
        self.pattern = store.events_pattern
        self.page = page
        self.min_leaves = min_leaves  # uses of a field's pattern leaves in a batch before its values are listed

    # compile ----------------------------------------------------------------------------------

    def compile(self, rule: Rule, types: Types | None = None) -> tuple[dict[str, Any], bool]:
        """The rule's condition as Query DSL, and whether it is exact (else hits are post-filtered)."""
        return Compiler(types or field_type).compile(rule.condition)

    def compile_live(self, node: ir.Node) -> tuple[dict[str, Any], bool]:
        return Compiler(live_types(self.client, self.pattern, ir.fields_of(node))).compile(node)

    # plumbing ---------------------------------------------------------------------------------

    def _pit(self) -> str | None:
        if not self.client.indices.exists(index=self.pattern, params={"allow_no_indices": "false"}):
            return None
        created = self.client.create_pit(index=self.pattern, params={"keep_alive": KEEP_ALIVE})
        problem = missing_shards(created)  # a point in time missing a shard would miss its events in every search
        if problem is not None:
            self._close(created.get("pit_id"))
            raise problem
        return created["pit_id"]

    def search(self, **kwargs: Any) -> dict[str, Any]:
        return whole_search(self.client, **kwargs)

    def _close(self, pit: str | None) -> None:
        if pit:
            self.client.delete_pit(body={"pit_id": [pit]}, params={"ignore": 404})

    def _scroll(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        body = {k: v for k, v in body.items() if k not in ("pit", "track_total_hits")}
        body["size"] = GROUP
        response = self.search(index=self.pattern, body=body, params={"scroll": KEEP_ALIVE})
        out, scroll_id = [], response.get("_scroll_id")
        try:
            while response["hits"]["hits"]:
                out.extend(response["hits"]["hits"])
                response = whole(self.client.scroll(body={"scroll_id": scroll_id, "scroll": KEEP_ALIVE}))
                scroll_id = response.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                self.client.clear_scroll(body={"scroll_id": [scroll_id]}, params={"ignore": 404})
        return out

    def stream(self, query: dict[str, Any], source: Any = True, timed: bool = False) -> Iterator[dict[str, Any]]:
        """Every hit of ``query`` over the events, in (@timestamp, id) order, under one point in time
        (``timed``: the query only matches events with a @timestamp)."""
        pit = self._pit()
        if pit is None:
            return
        try:
            cursor = Cursor(query, source, self.page, timed)
            while not cursor.done:
                body = {**cursor.body(), "pit": {"id": pit, "keep_alive": KEEP_ALIVE}}
                response = self.search(body=body)
                pit = response.get("pit_id", pit)
                yield from cursor.feed(response, self._scroll)
        finally:
            self._close(pit)

    # the Engine protocol ----------------------------------------------------------------------

    def select(self, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        types = live_types(self.client, self.pattern, ir.fields_of(rule.condition))
        produced = 0
        try:
            for found in self._select(Compiler(types), rule, scope):
                produced += 1
                yield found
        except (TransportError, PartialAnswer) as exc:  # a node may refuse a regexp on some shards only
            if produced or not refused_regexp(exc):
                raise
            yield from self._select(Compiler(types, regexp=False), rule, scope)

    def _select(self, compiler: Compiler, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        dsl, exact = compiler.compile(rule.condition)
        if dsl == MATCH_NONE:
            return
        query = all_of([scope_query(scope), index_filter(self.pattern, rule.condition), dsl])
        for hit in self.stream(query, source_of(rule, exact), scope.timestamp is not None):
            doc = hit["_source"]
            if scope.holds(doc) and (exact or matches(rule.condition, doc)):
                yield hit["_id"], doc

    def select_many(self, rules: list[Rule], scope: Scope) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """``select`` for many single-event rules: one ``_msearch`` round trip per page for all of them,
        each its own search, under one point in time; a rule whose regexp the node refuses is retried
        without regexps. Returns rule id → (id, document) in (@timestamp, id) order. The pattern leaves
        the rules share are decided once over the stored values first (``batch_compiler``): that, not
        the round trips, is what one query per rule pays for.

        Not one query with a named clause per rule: OpenSearch 2.19 drops hits from a large ``should``
        mixing ``wildcard``-field queries with other rules' clauses (a rule matching 17 events alone
        matched none among 29), so each rule stays a query of its own."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {rule.id: [] for rule in rules}
        pit = self._pit() if rules else None
        if pit is None:
            return out
        try:
            compiler = self.batch_compiler(rules, pit, scope)
            live: list[tuple[Rule, bool, Cursor]] = []
            scoped = scope_query(scope)
            for rule in rules:
                dsl, exact = compiler.compile(rule.condition)
                dsl = all_of([index_filter(self.pattern, rule.condition), dsl])
                if dsl != MATCH_NONE:
                    cursor = Cursor(
                        all_of([scoped, dsl]), source_of(rule, exact), self.page, scope.timestamp is not None
                    )
                    live.append((rule, exact, cursor))
            while live:
                lines: list[dict[str, Any]] = []
                for _rule, _exact, cursor in live:
                    lines += [{}, {**cursor.body(), "pit": {"id": pit, "keep_alive": KEEP_ALIVE}}]
                responses = self.client.msearch(body=lines)["responses"]
                for n, ((rule, exact, cursor), response) in enumerate(zip(live, responses, strict=True)):
                    problem = response.get("error") or missing_shards(response)
                    if problem:
                        if not out[rule.id] and cursor.fresh and refused_regexp(problem):
                            fallback = Compiler(compiler.types, regexp=False, resolved=compiler.resolved)
                            dsl, exact = fallback.compile(rule.condition)
                            dsl = all_of([index_filter(self.pattern, rule.condition), dsl])
                            source = source_of(rule, exact)
                            live[n] = (rule, exact, Cursor(all_of([scoped, dsl]), source, self.page, cursor.timed))
                            continue
                        raise RuntimeError(f"rule {rule.id}: {problem}")
                    pit = response.get("pit_id", pit)
                    for hit in cursor.feed(response, self._scroll):
                        doc = hit["_source"]
                        if scope.holds(doc) and (exact or matches(rule.condition, doc)):
                            out[rule.id].append((hit["_id"], doc))
                live = [entry for entry in live if not entry[2].done]
        finally:
            self._close(pit)
        return out

    def batch_compiler(self, rules: list[Rule], pit: str, scope: Scope | None = None) -> Compiler:
        """A compiler for the batch: live field types, and the pattern leaves the rules share decided
        once under ``pit``, among the events in ``scope`` — on keyword fields over the stored values
        (``opensearch_values``), on analysed text over the documents a word of the pattern finds
        (``opensearch_words``). The words are counted beside the values' listing: no rule query can
        be sent before both answers, and the node computes them at once."""
        conditions = [r.condition for r in rules]
        fields = set().union(*(ir.fields_of(c) for c in conditions))
        compiler = Compiler(live_types(self.client, self.pattern, fields))
        at = {"id": pit, "keep_alive": KEEP_ALIVE}
        scoped = scope_query(scope) if scope is not None else MATCH_ALL

        def msearch(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r if "error" in r else whole(r) for r in self.client.msearch(body=lines)["responses"]]

        resolved = {}
        texts = words.plan(compiler, conditions)
        found_words = None
        pool = ThreadPoolExecutor(1, thread_name_prefix="words")
        try:
            if len(texts) >= self.min_leaves:  # beside the values: the node answers both at once
                found_words = pool.submit(
                    words.resolve, self.search, at, self.pattern, texts, families_of(conditions), scoped
                )
            wanted = {f: p for f, p in plan(compiler, conditions).items() if p[0].total() >= self.min_leaves}
            if wanted:
                homes = {field: families for field, (_, families) in wanted.items()}
                values = distinct_values(msearch, at, self.pattern, homes, scoped)
                resolved.update(resolve(values, {field: leaves for field, (leaves, _) in wanted.items()}))
            if found_words is not None:
                resolved.update(found_words.result())
        finally:
            pool.shutdown(wait=True)
        compiler.resolved = resolved  # the leaves it compiled while planning stay compiled
        return compiler

    def correlate(self, rule: Rule, scope: Scope) -> list[Window]:
        from siem.detect.engines.opensearch_correlate import correlate

        return correlate(self, rule, scope)

    def correlate_many(self, requests: list[tuple[Rule, Scope]]) -> list[list[Window] | BaseException]:
        """``correlate`` for each (rule, scope), ``CORRELATE_SIDE_BY_SIDE`` at a time: each is a chain
        of round trips (mapping, aggregation pages, point in time, member pages) whose waits overlap
        the others' work. A request that fails returns its exception; the others still run."""

        def one(request: tuple[Rule, Scope]) -> list[Window] | BaseException:
            try:
                return self.correlate(*request)
            except Exception as exc:
                return exc

        with ThreadPoolExecutor(CORRELATE_SIDE_BY_SIDE, thread_name_prefix="correlate") as pool:
            return list(pool.map(one, requests))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), GROUP):
            batch = unique[start : start + GROUP]
            response = self.search(
                index=self.pattern,
                body={"query": {"ids": {"values": batch}}, "size": len(batch)},
                params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            )
            for hit in response["hits"]["hits"]:
                out[hit["_id"]] = hit["_source"]
        return out
