"""Many single-event rules in one OpenSearch query: each rule a named clause, the hits tagged.

One query per rule (or one ``_msearch`` line per rule, which the node still runs as that many
searches) pays for every rule on every shard, every page. Here the rules of a batch become the
``should`` clauses of one query, each named after its rule (``_name``); the node walks the events
once, and every hit says which rules it matched (``matched_queries``). The hits are streamed in
(@timestamp, id) order under one point in time, like ``OpenSearchEngine.stream``, and each is
checked against its rules exactly where the DSL is only a superset (``exact`` false).

Lucene counts the clauses of a whole query against ``indices.query.bool.max_clause_count`` (1024
by default), so rules are packed into batches under a budget of leaves; the count is an estimate
(how the node expands a leaf is its business), so a batch refused for its clauses is halved and
retried by the caller. A batch refused for another reason (a regexp the node cannot determinize)
is answered rule by rule instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from siem.detect.engines import Scope
from siem.detect.engines.opensearch_dsl import MATCH_NONE, all_of
from siem.detect.evaluate import matches
from siem.detect.rules import Rule

CLAUSE_BUDGET = 400  # estimated leaves per batch, well under the node's default max_clause_count of 1024
_LEAVES = frozenset({"term", "terms", "prefix", "wildcard", "regexp", "range", "exists", "match", "ids", "match_none"})

Compiled = tuple[Rule, dict[str, Any], bool]  # rule, its DSL, whether the DSL is exact
Found = dict[str, list[tuple[str, dict[str, Any]]]]


def leaves(query: Any) -> int:
    """How many leaf queries Lucene will count for ``query``."""
    if isinstance(query, dict):
        return sum(1 if key in _LEAVES else leaves(value) for key, value in query.items())
    if isinstance(query, list):
        return sum(leaves(item) for item in query)
    return 0


def batches(compiled: list[Compiled], budget: int | None = None) -> list[list[Compiled]]:
    """The rules packed in order into batches of at most ``budget`` leaves (default ``CLAUSE_BUDGET``;
    a bigger rule alone)."""
    budget = CLAUSE_BUDGET if budget is None else budget
    out: list[list[Compiled]] = []
    used = budget
    for entry in compiled:
        size = leaves(entry[1]) + 1
        if used + size > budget:
            out.append([])
            used = 0
        out[-1].append(entry)
        used += size
    return out


def too_many_clauses(error: Any) -> bool:
    """Did the node refuse a query for its number of clauses (``maxClauseCount``)?"""
    text = str(getattr(error, "info", None) or error).lower()
    return "maxclausecount" in text or "too many nested clauses" in text or "too_many_clauses" in text


def combined_query(batch: list[Compiled], scoped: dict[str, Any]) -> dict[str, Any]:
    """One query matching an event if any rule of the batch does, each rule's clause named ``r<n>``."""
    should = [{"bool": {"filter": [dsl], "_name": f"r{n}"}} for n, (_, dsl, _) in enumerate(batch)]
    return all_of([scoped, {"bool": {"should": should, "minimum_should_match": 1}}])


def select_batch(
    stream: Callable[[dict[str, Any], Any, bool], Iterator[dict[str, Any]]],
    batch: list[Compiled],
    scope: Scope,
    scoped: dict[str, Any],
    out: Found,
) -> None:
    """Every event in scope matching a rule of the batch, appended to ``out[rule.id]`` in order."""
    live = [entry for entry in batch if entry[1] != MATCH_NONE]
    if not live:
        return
    for hit in stream(combined_query(live, scoped), True, scope.timestamp is not None):
        doc = hit["_source"]
        if not scope.holds(doc):
            continue
        for name in hit.get("matched_queries", ()):
            rule, _, exact = live[int(name[1:])]
            if exact or matches(rule.condition, doc):
                out[rule.id].append((hit["_id"], doc))
