"""IR → OpenSearch Query DSL: structured queries only, never query_string; exact or a marked prefilter.

This is the compiler alone, apart from the engine that runs its queries (``opensearch``) and the
regexp text it builds on (``opensearch_regex``), so what a rule *means* in DSL can be read, tested and
printed (``siem rules compile``) without a node.

Every leaf compiles, for the field's mapped type (``siem.detect.fieldtypes``), to a query that either
selects exactly the events the reference evaluator (``siem.detect.evaluate``) accepts, or — where
the DSL cannot say it exactly — to a polarity-aware *prefilter*: under an even number of NOTs a
superset (``exists`` on the field, or ``match_all``), under an odd number a subset (``match_none``),
so the whole query selects a superset of the answer. Such a rule is compiled with ``exact=False``
and the engine post-filters the hits with ``evaluate.matches``.

Case-insensitive strings. The reference lowercases both sides with ``str.lower``; OpenSearch's
``case_insensitive`` flips the case of each character of the pattern. The two agree for ASCII
patterns without ``k`` (KELVIN SIGN lowercases to ``k``), without ``?`` and without an ``i`` next to
a wildcard (``İ`` lowercases to two characters), so those use ``term``/``prefix``/``wildcard`` with
``case_insensitive``. Any other pattern — and every pattern on a ``flat_object`` leaf, where
``case_insensitive`` also folds the *path* (verified on 2.19.6: ``*bar`` on ``f.a`` matched
``f.A``) — becomes a cased ``regexp`` from ``opensearch_regex.ci_regexp``; regular expressions are
translated by ``opensearch_regex.translate_regex``, and what Lucene cannot express falls back to the
prefilter.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from siem.detect import ir
from siem.detect.engines.opensearch_regex import (
    Untranslatable,
    ci_regexp,
    decimal_string_regexp,
    lowered_by,
    lowered_parts,
    translate_regex,
)
from siem.detect.fieldtypes import FieldType, field_type, kind_of

MATCH_ALL: dict[str, Any] = {"match_all": {}}
MATCH_NONE: dict[str, Any] = {"match_none": {}}
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
FLOAT_TEXT = r"\-?[0-9]+(\.[0-9]*)?([eE][\-\+]?[0-9]+)?"  # how a JSON number reads as text
MAX_REGEX_LENGTH = 1000  # index.max_regex_length's default, in UTF-16 units
STRING_KINDS = frozenset({"keyword", "wildcard", "flat_object"})

Types = Callable[[str], FieldType]


# --- boolean plumbing -------------------------------------------------------------------------


def all_of(queries: list[dict[str, Any]]) -> dict[str, Any]:
    out = [q for q in queries if q != MATCH_ALL]
    if any(q == MATCH_NONE for q in out):
        return MATCH_NONE
    if not out:
        return MATCH_ALL
    return out[0] if len(out) == 1 else {"bool": {"filter": out}}


def any_of(queries: list[dict[str, Any]]) -> dict[str, Any]:
    out = [q for q in queries if q != MATCH_NONE]
    if any(q == MATCH_ALL for q in out):
        return MATCH_ALL
    if not out:
        return MATCH_NONE
    return out[0] if len(out) == 1 else {"bool": {"should": out, "minimum_should_match": 1}}


def none_of(query: dict[str, Any]) -> dict[str, Any]:
    if query == MATCH_ALL:
        return MATCH_NONE
    if query == MATCH_NONE:
        return MATCH_ALL
    return {"bool": {"must_not": [query]}}


def exists(field: str) -> dict[str, Any]:
    return {"exists": {"field": field}}


# --- Str --------------------------------------------------------------------------------------

_NATIVE_CI_UNSAFE = frozenset("k")  # KELVIN SIGN lowercases to k


def _wildcard_value(parts: tuple[ir.Part, ...]) -> str:
    out = []
    for part in parts:
        if isinstance(part, ir.AnyChars):
            out.append("*")
        elif isinstance(part, ir.OneChar):
            out.append("?")
        else:
            out.append(part.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
    return "".join(out)


def _native(field: str, parts: tuple[ir.Part, ...], ci: bool) -> dict[str, Any]:
    extra = {"case_insensitive": True} if ci else {}
    literal = "".join(parts) if all(isinstance(p, str) for p in parts) else None  # type: ignore[arg-type]
    if literal is not None:
        return {"term": {field: {"value": literal, **extra}}}
    if len(parts) == 2 and isinstance(parts[0], str) and isinstance(parts[1], ir.AnyChars):
        return {"prefix": {field: {"value": parts[0], **extra}}}
    return {"wildcard": {field: {"value": _wildcard_value(parts), **extra}}}


def _caseless(parts: tuple[ir.Part, ...]) -> bool:
    """No character of the (lowered) pattern has another character lowercasing onto it, and no ``?``
    (which must not match ``İ``: it lowercases to two characters)."""
    if any(isinstance(p, ir.OneChar) for p in parts):
        return False
    return all(len(lowered_by(ch)) <= 1 for p in parts if isinstance(p, str) for ch in p)


def _native_ci_safe(parts: tuple[ir.Part, ...]) -> bool:
    flat: list[object] = []
    for p in parts:
        flat.extend(p if isinstance(p, str) else [p])
    for i, item in enumerate(flat):
        if isinstance(item, ir.OneChar):
            return False
        if isinstance(item, str):
            if not item.isascii() or item in _NATIVE_CI_UNSAFE:
                return False
            if item == "i" and i + 1 < len(flat) and isinstance(flat[i + 1], ir.Wild):
                return False
    return True


_HINT_UNSAFE = frozenset("ki")  # KELVIN SIGN lowercases to k, İ to i + U+0307


def _ngram_hint(parts: tuple[ir.Part, ...]) -> str | None:
    """The longest run (3+ characters) of a lowered literal chunk that native ``case_insensitive``
    matching finds in every value the reference accepts: ASCII, neither ``k`` nor ``i`` (the two
    letters a non-ASCII character lowercases onto), as a ``wildcard`` value; None if there is none."""
    best = ""
    for part in parts:
        if not isinstance(part, str):
            continue
        run = ""
        for ch in part + "\0":
            if ch.isascii() and ch not in _HINT_UNSAFE and ch != "\0":
                run += ch
                continue
            best = max(best, run, key=len)
            run = ""
    if len(best) < 3:
        return None
    return best.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


# --- leaves -----------------------------------------------------------------------------------


class Compiler:
    """Compiles IR for one view of the field types (the template's, or the live indices')."""

    def __init__(
        self,
        types: Types = field_type,
        regexp: bool = True,
        resolved: dict[ir.Node, tuple[str, list[str]]] | None = None,
    ) -> None:
        self.types = types
        self.use_regexp = regexp  # False: every regexp leaf is a prefilter (the node refused one)
        # leaves already decided over the field's stored values (``opensearch_values``): field, values
        self.resolved = resolved or {}
        self._leaves: dict[ir.Leaf, dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]] = {}

    def _regexp(self, field: str, value: str) -> dict[str, Any] | None:
        """A regexp query, or None when regexps are off or this one exceeds index.max_regex_length."""
        if not self.use_regexp or len(value.encode("utf-16-le")) // 2 > MAX_REGEX_LENGTH:
            return None
        return {"regexp": {field: {"value": value, "flags": "ALL"}}}

    def compile(self, node: ir.Node) -> tuple[dict[str, Any], bool]:
        return self._node(node, True)

    def _node(self, node: ir.Node, positive: bool) -> tuple[dict[str, Any], bool]:
        if isinstance(node, ir.And | ir.Or):
            parts = [self._node(a, positive) for a in node.args]
            combine = all_of if isinstance(node, ir.And) else any_of
            return combine([p[0] for p in parts]), all(p[1] for p in parts)
        if isinstance(node, ir.Not):
            query, exact = self._node(node.arg, not positive)
            return none_of(query), exact
        if isinstance(node, ir.Const):
            return (MATCH_ALL if node.value else MATCH_NONE), True
        if isinstance(node, ir.Keyword):
            return self._node(node.as_fields(), positive)
        if node in self.resolved:
            field, accepted = self.resolved[node]
            return ({"terms": {field: accepted}} if accepted else MATCH_NONE), True
        result = self.leaf(node)
        if isinstance(result, dict):
            return result, True
        superset, subset = result
        return (superset if positive else subset), False

    def leaf(self, leaf: ir.Leaf) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """An exact query, or (superset, subset) when the DSL cannot say it exactly. Compiled once
        per compiler: a batch's rules share many leaves, and planning the batch compiles them too."""
        known = self._leaves.get(leaf)
        if known is None:
            known = self._leaves[leaf] = self._leaf(leaf)
        return known

    def _leaf(self, leaf: ir.Leaf) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        if isinstance(leaf, ir.FieldRef):
            return self._fieldref(leaf)
        assert not isinstance(leaf, ir.Keyword)
        if leaf.field.endswith("." + ir.DESCENDANTS):
            # a whole-payload search: no DSL query says "any value below"; hits are verified
            return (MATCH_ALL, MATCH_NONE)
        ft = self.types(leaf.field)
        if isinstance(leaf, ir.Exists):
            return self._exists(ft)
        loose = (self._has_value(ft), MATCH_NONE)
        if isinstance(leaf, ir.Str):
            return self._str(ft, leaf) or loose
        if isinstance(leaf, ir.Num):
            return self._num(ft, leaf) or loose
        if isinstance(leaf, ir.Regex):
            target = self._string_target(ft)
            if target is None:
                return loose
            try:
                return self._regexp(target, translate_regex(leaf.pattern, leaf.flags)) or loose
            except (Untranslatable, re.error):
                return loose
        if isinstance(leaf, ir.Cidr):
            return self._cidr(ft, leaf) if ft.kind == "ip" else loose
        raise TypeError(f"not a leaf: {leaf!r}")

    def _cidr(self, ft: FieldType, leaf: ir.Cidr) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """OpenSearch stores an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) as the IPv4 address, so
        an IPv4 network also matches it there (the reference: an IPv6 value is never in an IPv4
        network), and it rejects networks inside ``::ffff:0:0/96``: exact only for IPv6 networks
        clear of that range; otherwise the term is a superset."""
        network = ipaddress.ip_network(leaf.network)
        if isinstance(network, ipaddress.IPv6Network):
            if not network.overlaps(_MAPPED):
                return {"term": {ft.path: leaf.network}}
            return exists(ft.path), MATCH_NONE
        return {"term": {ft.path: leaf.network}}, MATCH_NONE

    def _has_value(self, ft: FieldType) -> dict[str, Any]:
        """A superset of the events with a value at the path."""
        if ft.flat_root is not None:
            return exists(ft.flat_root)
        if ft.kind in ("other",):
            return MATCH_ALL
        return exists(ft.path)

    def _string_target(self, ft: FieldType) -> str | None:
        if ft.kind in STRING_KINDS and not (ft.kind == "flat_object" and not ft.is_flat_leaf):
            return ft.path
        if ft.kind == "match_only_text" and ft.exact_subfield:
            return ft.exact_subfield
        return None

    def _exists(self, ft: FieldType) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        if ft.is_flat_leaf:  # exists on a deeper flat_object path finds nothing (OpenSearch#11748)
            return exists(ft.flat_root or ft.path), MATCH_NONE
        if ft.kind in ("object", "flat_object", "other"):  # {"a": null} is a value to the reference
            return MATCH_ALL, exists(ft.path)
        return exists(ft.path)

    def _str(self, ft: FieldType, leaf: ir.Str) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]] | None:
        target = self._string_target(ft)
        parts = leaf.parts if leaf.cased else lowered_parts(leaf.parts)
        if target is not None:
            if leaf.cased or _caseless(parts):
                return _native(target, parts, False)
            if ft.kind != "flat_object" and _native_ci_safe(parts):
                return _native(target, parts, True)
            rx = ci_regexp(parts)
            query = None if rx is None else self._regexp(target, rx)
            hint = _ngram_hint(parts) if query is not None and ft.kind != "flat_object" else None
            if hint is not None and self.types(target).kind == "wildcard":
                # a necessary condition the wildcard field can answer from its n-grams: the regexp
                # then only verifies those candidates instead of every document
                return all_of([{"wildcard": {target: {"value": f"*{hint}*", "case_insensitive": True}}}, query])
            return query
        literal = "".join(parts) if all(isinstance(p, str) for p in parts) else None  # type: ignore[arg-type]
        if ft.kind == "object":
            return MATCH_NONE  # objects are never matched by a string
        if literal is None:
            return None
        if ft.kind == "long":
            if re.fullmatch(r"0|-?[1-9][0-9]*", literal) and LONG_MIN <= int(literal) <= LONG_MAX:
                return {"term": {ft.path: int(literal)}}
            return MATCH_NONE
        if ft.kind == "boolean":
            return {"term": {ft.path: literal == "true"}} if literal in ("true", "false") else MATCH_NONE
        if ft.kind == "ip":
            try:
                ipaddress.ip_address(literal)
            except ValueError:
                return MATCH_NONE
            return {"term": {ft.path: literal}}, MATCH_NONE  # an address has many spellings: a superset
        return None

    def _num(self, ft: FieldType, leaf: ir.Num) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]] | None:
        value = leaf.value
        if ft.kind == "long":
            if leaf.op == "eq":
                if value != int(value) or not LONG_MIN <= int(value) <= LONG_MAX:
                    return MATCH_NONE
                return {"term": {ft.path: int(value)}}
            return {"range": {ft.path: {leaf.op: value}}}
        if ft.kind in ("ip", "boolean", "object"):
            return MATCH_NONE  # never a decimal-integer string
        target = self._string_target(ft)
        if target is not None and leaf.op == "eq":
            # Strings count when they are decimal integers; a JSON float in a keyword-like field counts
            # too, and is indexed as text ("1.5") indistinguishable from the string "1.5": those are
            # only in the superset, to be decided by the post-filter.
            exact: dict[str, Any] | None = MATCH_NONE
            if value == int(value):
                rx = decimal_string_regexp(int(value))  # None: more than 18 digits, never a number
                exact = MATCH_NONE if rx is None else self._regexp(target, rx)
            floats = self._regexp(target, FLOAT_TEXT)
            if exact is None or floats is None:
                return None
            return any_of([exact, floats]), exact
        return None

    def _fieldref(self, leaf: ir.FieldRef) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        if ir.DESCENDANTS in (leaf.field.rsplit(".", 1)[-1], leaf.other.rsplit(".", 1)[-1]):
            return (MATCH_ALL, MATCH_NONE)  # whole-payload values: verified on the hits
        a, b = self.types(leaf.field), self.types(leaf.other)
        if a.kind == "keyword" and b.kind == "keyword" and not a.flat_root and not b.flat_root:
            mode = {"eq": 0, "startswith": 1, "endswith": 2}[leaf.mode]
            script = {"lang": "painless", "source": FIELDREF_SCRIPT, "params": {"a": a.path, "b": b.path, "mode": mode}}
            return {"script": {"script": script}}
        return all_of([self._has_value(a), self._has_value(b)]), MATCH_NONE


FIELDREF_SCRIPT = """
if (!doc.containsKey(params.a) || !doc.containsKey(params.b)) { return false; }
def left = doc[params.a]; def right = doc[params.b];
for (def x : left) {
  String xl = x.toLowerCase(Locale.ROOT);
  for (def y : right) {
    String yl = y.toLowerCase(Locale.ROOT);
    if (params.mode == 0 ? xl.equals(yl) : params.mode == 1 ? xl.startsWith(yl) : xl.endsWith(yl)) { return true; }
  }
}
return false;
""".strip()


# --- live field types -------------------------------------------------------------------------


def live_types(client: Any, pattern: str, fields: set[str]) -> Types:
    """The template's types, corrected by ``_field_caps`` for dynamic paths (a JSON number there is a
    ``long``, conflicting types are ``other``) and for text sub-fields missing from older indices."""
    wanted = sorted({f for f in fields if field_type(f).dynamic})
    subs = {f: field_type(f).exact_subfield for f in fields if field_type(f).exact_subfield}
    names = [*wanted, *subs, *(s for s in subs.values() if s)]
    caps: dict[str, Any] = {}
    if names:
        caps = client.field_caps(
            index=pattern,
            params={
                "fields": ",".join(names),
                "include_unmapped": "true",
                "ignore_unavailable": "true",
                "allow_no_indices": "true",
            },
        ).get("fields", {})

    def resolve(path: str) -> FieldType:
        ft = field_type(path)
        if ft.dynamic and path in caps:
            kinds = sorted({kind_of(t) for t in caps[path] if t != "unmapped"})
            if len(kinds) == 1:
                ignore = ft.ignore_above if kinds[0] == "keyword" else None
                return FieldType(path, kinds[0], dynamic=True, ignore_above=ignore)
            if len(kinds) > 1:
                return FieldType(path, "other", dynamic=True)
        if ft.exact_subfield and ft.exact_subfield in caps:
            sub, parent = caps[ft.exact_subfield], caps.get(path, {})
            if "unmapped" in sub:
                missing = set(sub["unmapped"].get("indices", []))
                parent_missing = set(parent.get("unmapped", {}).get("indices", []))
                if not missing or missing - parent_missing:
                    return FieldType(path, ft.kind)  # some index lacks the sub-field: prefilter
        return ft

    return resolve
