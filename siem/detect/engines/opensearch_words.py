"""Batched selection on OpenSearch: pattern leaves on analysed text decided over the documents a word finds.

Why. Rules search ``message`` with case-insensitive patterns that the node verifies through the
``wildcard`` sub-field — an automaton per leaf per shard, per query (``opensearch_values`` says why
that is the cost). ``message`` has too many distinct values to list, but it is also analysed: the
standard analyser breaks words where Unicode word segmentation (UAX #29) must, and lowercases with
Java's ``toLowerCase``, which folds the Kelvin sign to ``k`` as Python's ``str.lower`` does. So a word
standing whole inside a pattern — ASCII letters and digits with a breaking character on each side,
like ``promiscuous`` in ``*entered promiscuous mode*`` or ``bin`` in ``*/bin/sh -i*`` — is a token of
every message the pattern matches, and a plain ``term`` query on it finds a superset of the leaf's
documents without building any automaton.

What. One ``filters`` aggregation counts the documents of every whole word of every leaf (in the
families the rules read, under the batch's point in time; one query, not one per word); each leaf
takes its rarest word — ``*invalid certificate signing key*`` is found through ``signing``, not the
longer and commoner ``certificate``. The words found in at most ``MAX_PER_WORD`` documents each, and
``MAX_CANDIDATES`` in all, are fetched in one search, each leaf is evaluated on the documents its word
found with the reference evaluator, and becomes a ``terms`` query on the ids it accepts. A leaf with
no such word, or only common ones, stays as it is. Document ids
are unique across the events indices (they hash the source object and position).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from siem.detect import ir
from siem.detect.engines.opensearch_dsl import MATCH_ALL, Compiler, all_of, any_of
from siem.detect.engines.opensearch_values import Resolved, _leaves, families_filter
from siem.detect.evaluate import matches

MAX_CANDIDATES = 10_000  # documents fetched for all words of a batch (one page: index.max_result_window)
# A commoner word costs more to fetch and check than the automata it saves. Measured on the retro-hunt
# of bench/detect.py (360k events, 222 rules, median cycle): 500 → 2.4 s, 100 → 2.1–2.2 s, 30 → 2.2 s,
# no word resolution → 2.2–2.4 s.
MAX_PER_WORD = 100
# Characters at which Unicode word segmentation (UAX #29, Lucene's StandardTokenizer) always breaks,
# whatever is beside them: not letters, digits, ``_``, nor the in-word punctuation ``' . : , ;``.
_BREAK = re.escape(' !"#$%&()*+-/<=>?@[\\]^`{|}~')
_WORD = re.compile(rf"(?<=[{_BREAK}])[A-Za-z0-9]{{3,255}}(?=[{_BREAK}])")


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
    """Each leaf whose rarest word is rare enough → ("_id", the ids of the documents in ``scoped``
    it matches)."""
    scope = all_of([scoped, families_filter(pattern, families)])
    every = sorted({(field, word) for field, found in words.values() for word in found})
    filters = {f"{field} {word}": {"term": {field: word}} for field, word in every}
    body = {"size": 0, "track_total_hits": False, "query": scope, "aggs": {"w": {"filters": {"filters": filters}}}}
    buckets = search(body={**body, "pit": pit})["aggregations"]["w"]["buckets"]
    counts = {term: buckets[f"{term[0]} {term[1]}"]["doc_count"] for term in every}
    rarest = {
        leaf: min(((field, w) for w in found), key=lambda t: (counts[t], t)) for leaf, (field, found) in words.items()
    }
    terms = sorted(set(rarest.values()))
    chosen, total = set(), 0
    for term in sorted(terms, key=lambda t: counts[t]):
        if counts[term] > MAX_PER_WORD or total + counts[term] > MAX_CANDIDATES:
            break
        chosen.add(term)
        total += counts[term]
    if not chosen:
        return {}
    hits: list[dict[str, Any]] = []
    if total:
        fields = sorted({field for field, _ in chosen})
        named = [{"term": {field: {"value": word, "_name": f"{field} {word}"}}} for field, word in sorted(chosen)]
        query = all_of([scope, any_of(named)])
        body = {"size": MAX_CANDIDATES, "query": query, "_source": {"includes": fields}, "pit": pit}
        hits = search(body=body)["hits"]["hits"]
    found: dict[tuple[str, str], list[dict[str, Any]]] = {term: [] for term in chosen}
    for hit in hits:  # each leaf is evaluated on the documents its own word found
        for name in hit.get("matched_queries", ()):
            field, _, word = name.rpartition(" ")
            found[(field, word)].append(hit)
    out: Resolved = {}
    for leaf, term in rarest.items():
        if term in chosen:
            out[leaf] = ("_id", sorted(hit["_id"] for hit in found[term] if matches(leaf, hit["_source"])))
    return out
