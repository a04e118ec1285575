"""Batched selection on OpenSearch: pattern leaves decided once per batch, over the values the store holds.

Why. Profiling a batch of ~220 rules on the real node showed the cost is neither round trips nor
matching documents: it is Lucene building an automaton for every case-insensitive ``term``,
``wildcard``, ``prefix`` and ``regexp`` leaf, on every shard a query reaches, for every query —
about 10 ms per leaf per shard whatever the data size (the web rules alone, ~600 such leaves, cost 9
CPU-seconds of the node). ``_msearch`` or one ``filters`` aggregation saves the round trips but
still builds every automaton (measured: the same node CPU).

What. The rules of a batch read a few keyword fields many times over (``user_agent.original``,
``url.original``, ``event.action``...). For each such field one ``terms`` aggregation lists the
distinct values the store holds, in the index families the rules can match, under the batch's point
in time. Each leaf is then decided over those values in-process with the reference evaluator's
meaning — which is the DSL's meaning, since only leaves the compiler translates *exactly* are taken —
and becomes a ``terms`` query on the values it accepts (or ``match_none``): no automaton is built.
A field with more than ``MAX_VALUES`` distinct values (free text, unique ids) keeps its leaves as
they are, so the cost of the values pass stays bounded by what it saves. Number leaves on keyword
fields (``auditd.execve.a0 == 0x...``: a Unicode-digit regexp each, or a post-filter) are decided
the same way when the values tell their answer exactly (``_numbers``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from siem.detect import ir
from siem.detect.engines import datasets
from siem.detect.engines.opensearch_dsl import FLOAT_TEXT, MATCH_ALL, Compiler, all_of, any_of
from siem.detect.evaluate import _compare, _number, _regex, wildcard_regex

_FLOAT = re.compile(FLOAT_TEXT)
MAX_VALUES = 20_000  # distinct values of one field worth listing
Resolved = dict[ir.Node, tuple[str, list[str]]]  # leaf → (field, the values it accepts)


def _leaves(node: ir.Node) -> Iterable[ir.Node]:
    if isinstance(node, ir.And | ir.Or):
        for arg in node.args:
            yield from _leaves(arg)
    elif isinstance(node, ir.Not):
        yield from _leaves(node.arg)
    elif isinstance(node, ir.Keyword):
        yield from _leaves(node.as_fields())
    else:
        yield node


def _automaton_field(compiler: Compiler, leaf: ir.Node) -> str | None:
    """The keyword field an exact, automaton-backed leaf queries, or a number leaf on a keyword field
    (a regexp, or no query at all); None: anything else stays."""
    if not isinstance(leaf, ir.Str | ir.Regex | ir.Num):
        return None
    ft = compiler.types(leaf.field)
    if ft.kind != "keyword" or ft.flat_root is not None or ft.path != leaf.field:
        return None
    if isinstance(leaf, ir.Num):
        return ft.path
    query = compiler.leaf(leaf)
    if not isinstance(query, dict) or len(query) != 1:
        return None  # not exact in DSL: the rule is post-filtered, leave it alone
    kind, spec = next(iter(query.items()))
    if kind in ("wildcard", "regexp", "prefix"):
        return ft.path
    if kind == "term" and isinstance(spec.get(ft.path), dict) and spec[ft.path].get("case_insensitive"):
        return ft.path
    return None


def _numbers(leaf: ir.Num, stored: list[str]) -> list[str] | None:
    """The stored values a number leaf accepts, or None when that cannot be told from the values.

    The reference reads a JSON number, or a string of at most 18 decimal digits. A keyword term of
    such digits is the same number whichever it came from; a term that reads as a float may be a JSON
    float (a number) or a string (not one): when such a term would be accepted, the leaf is left to
    the query and its post-filter."""
    out = []
    for value in stored:
        number = _number(value)
        if number is not None:
            if _compare(number, leaf.op, leaf.value):
                out.append(value)
        elif _FLOAT.fullmatch(value) and _compare(float(value), leaf.op, leaf.value):
            return None
    return out


def _accepted(leaf: ir.Str | ir.Regex, stored: list[str], lowered: list[str], joined: dict[bool, str]) -> list[str]:
    """The stored values a leaf accepts, with the reference meaning (``evaluate.matches`` on a
    document holding the value). ``joined`` holds every value (as is, and lowered) NUL-separated:
    a pattern whose longest literal chunk appears nowhere in it accepts nothing, which is the
    common answer and costs one substring search."""
    if isinstance(leaf, ir.Regex):
        rx = _regex(leaf.pattern, leaf.flags)
        return [value for value in stored if rx.search(value)]
    cased = leaf.cased
    chunks = [p if cased else p.lower() for p in leaf.parts if isinstance(p, str)]
    longest = max(chunks, key=len, default="")
    if longest and "\0" not in longest and longest not in joined[cased]:
        return []
    texts = stored if cased else lowered
    parts = leaf.parts
    if len(parts) == 3 and isinstance(parts[0], ir.AnyChars) and isinstance(parts[2], ir.AnyChars) and chunks:
        needle = chunks[0]  # a contains-pattern: a substring test
        return [value for value, text in zip(stored, texts, strict=True) if needle in text]
    rx = wildcard_regex(parts, cased)
    return [value for value, text in zip(stored, texts, strict=True) if rx.fullmatch(text)]


def plan(compiler: Compiler, conditions: list[ir.Node]) -> dict[str, tuple[Counter[ir.Node], set[str] | None]]:
    """field → (its automaton leaves with how often the conditions use each — every use is an
    automaton the node builds —, the index families whose values matter; None = every index)."""
    from siem.sinks.index_layout import family_of

    out: dict[str, tuple[Counter[ir.Node], set[str] | None]] = {}
    for condition in conditions:
        names = datasets(condition)
        families = None if names is None else {family_of(n) for n in names}
        for leaf in _leaves(condition):
            field = _automaton_field(compiler, leaf)
            if field is None:
                continue
            leaves, known = out.setdefault(field, (Counter(), set()))
            leaves[leaf] += 1
            if known is not None:
                out[field] = (leaves, None if families is None else known | families)
    return out


def families_of(conditions: list[ir.Node]) -> set[str] | None:
    """The index families events matching any of the conditions live in (None: any family)."""
    from siem.sinks.index_layout import family_of

    out: set[str] = set()
    for condition in conditions:
        names = datasets(condition)
        if names is None:
            return None
        out |= {family_of(name) for name in names}
    return out


def families_filter(pattern: str, families: set[str] | None) -> dict[str, Any]:
    if families is None:
        return MATCH_ALL
    stem = pattern.removesuffix("*")
    return any_of([{"wildcard": {"_index": {"value": f"{stem}{family}-*"}}} for family in sorted(families)])


def distinct_values(
    msearch: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    pit: dict[str, Any],
    pattern: str,
    wanted: dict[str, set[str] | None],
    scoped: dict[str, Any] = MATCH_ALL,
) -> dict[str, list[str]]:
    """field → every distinct value in its families (among the events ``scoped`` selects: a rule's
    query is only ever asked within its batch's scope), for the fields with at most MAX_VALUES of them.

    One ``_msearch``: a search per family set, each a ``terms`` aggregation per field asking for one
    more bucket than MAX_VALUES. Complete when no document was left out (``sum_other_doc_count`` 0,
    which also covers a shard that returned only its top terms) and the buckets fit."""
    groups: dict[tuple[str, ...] | None, list[str]] = {}
    for field, families in sorted(wanted.items()):
        groups.setdefault(None if families is None else tuple(sorted(families)), []).append(field)
    lines: list[dict[str, Any]] = []
    for families, fields in groups.items():
        aggs = {f"f{n}": {"terms": {"field": field, "size": MAX_VALUES + 1}} for n, field in enumerate(fields)}
        query = all_of([scoped, families_filter(pattern, None if families is None else set(families))])
        lines += [{}, {"size": 0, "track_total_hits": False, "query": query, "aggs": aggs, "pit": pit}]
    found: dict[str, list[str]] = {}
    for fields, response in zip(groups.values(), msearch(lines), strict=True):
        if "error" in response:
            raise RuntimeError(f"listing the values of {', '.join(fields)}: {response['error']}")
        for n, field in enumerate(fields):
            result = response["aggregations"][f"f{n}"]
            if result.get("sum_other_doc_count", 0) == 0 and len(result["buckets"]) <= MAX_VALUES:
                found[field] = [b.get("key_as_string", str(b["key"])) for b in result["buckets"]]
    return found


def resolve(values: dict[str, list[str]], leaves: dict[str, set[ir.Node]]) -> Resolved:
    """Each leaf on a listed field → the values it accepts."""
    out: Resolved = {}
    for field, stored in values.items():
        lowered = [v.lower() for v in stored]
        joined = {True: "\0".join(stored), False: "\0".join(lowered)}
        for leaf in leaves[field]:
            if isinstance(leaf, ir.Num):
                accepted = _numbers(leaf, stored)
                if accepted is not None:
                    out[leaf] = (field, accepted)
                continue
            out[leaf] = (field, _accepted(leaf, stored, lowered, joined))  # type: ignore[arg-type]
    return out
