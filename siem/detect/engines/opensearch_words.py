"""Batched selection on OpenSearch: pattern leaves on analysed text decided over the documents their words find.

Why. Rules search ``message`` with case-insensitive patterns that the node verifies through the
``wildcard`` sub-field: per leaf, per query, every document its n-grams let through is checked
against the pattern (the profile API on the costliest queries of ``bench/detect.py`` at 1M events:
the check is ~70% of their time, building the automaton under 1%).
``message`` has too many distinct values to list, but it is also analysed: the
standard analyser breaks words where Unicode word segmentation (UAX #29) must, and lowercases with
Java's ``toLowerCase``, which folds the Kelvin sign to ``k`` as Python's ``str.lower`` does. So a word
standing whole inside a pattern — ASCII letters and digits with a breaking character on each side,
like ``promiscuous`` in ``*entered promiscuous mode*``, or ``bin``, ``sh`` and ``e`` in
``*nc -e /bin/sh *`` — is a token of every message the pattern matches, and plain ``term`` queries on
all of them together find a superset of the leaf's documents with no pattern to check.

What. One ``filters`` aggregation counts, for every such leaf, the documents holding all of its words
(in the families the rules read, under the batch's point in time; one query, not one per leaf):
``bin`` alone is in most syslog lines, ``bin`` with ``sh`` and ``e`` in none. The leaves whose words
find at most ``MAX_PER_LEAF`` documents each, ``MAX_CANDIDATES`` in all, have those fetched in one
search; each leaf is evaluated on the documents its own words found with the reference evaluator, and
becomes a ``terms`` query on the ids it accepts. A leaf with no whole word, or whose words are common
together, stays as it is. Document ids are unique across the events indices (they hash the source
object and position).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from siem.detect import ir
from siem.detect.engines.opensearch_dsl import MATCH_ALL, Compiler, all_of, any_of
from siem.detect.engines.opensearch_values import Resolved, _leaves, families_filter
from siem.detect.evaluate import matches

MAX_CANDIDATES = 10_000  # documents fetched for all leaves of a batch (one page: index.max_result_window)
# Commoner words cost more to fetch and check than the pattern check they save. Measured on the retro-hunt
# of bench/detect.py (360k events, 222 rules, median cycle, one word per leaf): 500 → 2.4 s,
# 100 → 2.1–2.2 s, 30 → 2.2 s, no word resolution → 2.2–2.4 s.
MAX_PER_LEAF = 100
# Characters at which Unicode word segmentation (UAX #29, Lucene's StandardTokenizer) always breaks,
# whatever is beside them: not letters, digits, ``_``, nor the in-word punctuation ``' . : , ;``.
_BREAK = re.escape(' !"#$%&()*+-/<=>?@[\\]^`{|}~')
_WORD = re.compile(rf"(?<=[{_BREAK}])[A-Za-z0-9]{{1,255}}(?=[{_BREAK}])")


def words_of(leaf: ir.Str) -> tuple[str, ...]:
    """The whole words of the pattern's literal text, lowered (each a token of every match)."""
    return tuple(sorted({w.lower() for part in leaf.parts if isinstance(part, str) for w in _WORD.findall(part)}))


def plan(compiler: Compiler, conditions: list[ir.Node]) -> dict[ir.Str, tuple[str, tuple[str, ...]]]:
    """String leaves on analysed text fields → (field, their whole words)."""
    out: dict[ir.Str, tuple[str, tuple[str, ...]]] = {}
    for condition in conditions:
        for leaf in _leaves(condition):
            if isinstance(leaf, ir.Str) and compiler.types(leaf.field).kind == "match_only_text":
                words = words_of(leaf)
                if words:
                    out[leaf] = (leaf.field, words)
    return out


def resolve(
    search: Callable[..., dict[str, Any]],
    pit: dict[str, Any],
    pattern: str,
    words: dict[ir.Str, tuple[str, tuple[str, ...]]],
    families: set[str] | None,
    scoped: dict[str, Any] = MATCH_ALL,
) -> Resolved:
    """Each leaf whose words together are rare enough → ("_id", the ids of the documents in
    ``scoped`` it matches)."""
    scope = all_of([scoped, families_filter(pattern, families)])
    keys = sorted(set(words.values()))  # (field, words): leaves sharing their words share a search
    name = {key: f"q{n}" for n, key in enumerate(keys)}
    filters = {name[key]: _together(*key) for key in keys}
    body = {"size": 0, "track_total_hits": False, "query": scope, "aggs": {"w": {"filters": {"filters": filters}}}}
    buckets = search(body={**body, "pit": pit})["aggregations"]["w"]["buckets"]
    counts = {key: buckets[name[key]]["doc_count"] for key in keys}
    chosen, total = set(), 0
    for key in sorted(keys, key=lambda k: (counts[k], k)):
        if counts[key] > MAX_PER_LEAF or total + counts[key] > MAX_CANDIDATES:
            break
        chosen.add(key)
        total += counts[key]
    if not chosen:
        return {}
    hits: list[dict[str, Any]] = []
    if total:
        fields = sorted({field for field, _ in chosen})
        named = [{"bool": {"filter": [_together(*key)], "_name": name[key]}} for key in sorted(chosen)]
        query = all_of([scope, any_of(named)])
        body = {"size": MAX_CANDIDATES, "query": query, "_source": {"includes": fields}, "pit": pit}
        hits = search(body=body)["hits"]["hits"]
    found: dict[str, list[dict[str, Any]]] = {name[key]: [] for key in chosen}
    for hit in hits:  # each leaf is evaluated on the documents its own words found
        for query_name in hit.get("matched_queries", ()):
            found[query_name].append(hit)
    out: Resolved = {}
    for leaf, key in words.items():
        if key in chosen:
            out[leaf] = ("_id", sorted(hit["_id"] for hit in found[name[key]] if matches(leaf, hit["_source"])))
    return out


def _together(field: str, words: tuple[str, ...]) -> dict[str, Any]:
    return all_of([{"term": {field: word}} for word in words])
