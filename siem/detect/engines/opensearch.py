"""IR → OpenSearch Query DSL: structured queries only, never query_string; exact or a marked prefilter.

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
``f.A``) — becomes a cased ``regexp`` in which each character is the class of every character
``str.lower`` maps onto it. Regular expressions are translated from Python's parse tree
(``re._parser``) into Lucene syntax (implicitly anchored; ``\\d``/``\\w``/``\\s`` as Unicode classes,
``i`` as explicit classes); constructs Lucene cannot express (look-arounds, back-references,
``\\b``, anchors inside the pattern, scoped flags) fall back to the prefilter.
"""

from __future__ import annotations

import _sre
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import lru_cache
from re import _casefix  # type: ignore[attr-defined]
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from opensearchpy.exceptions import TransportError

from siem.detect import ir
from siem.detect.engines import Scope, micros
from siem.detect.evaluate import matches, values
from siem.detect.fieldtypes import FieldType, field_type, kind_of
from siem.detect.rules import Rule
from siem.detect.windows import Window

MATCH_ALL: dict[str, Any] = {"match_all": {}}
MATCH_NONE: dict[str, Any] = {"match_none": {}}
MAX_CP = 0x10FFFF
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
FLOAT_TEXT = r"\-?[0-9]+(\.[0-9]*)?([eE][\-\+]?[0-9]+)?"  # how a JSON number reads as text
MAX_REGEX_LENGTH = 1000  # index.max_regex_length's default, in UTF-16 units
STRING_KINDS = frozenset({"keyword", "wildcard", "flat_object"})

Types = Callable[[str], FieldType]


class Untranslatable(ValueError):
    """A regex construct Lucene cannot express exactly."""


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


# --- character tables (built once, lazily) ----------------------------------------------------


@lru_cache(maxsize=1)
def _tables() -> dict[str, Any]:
    everything = "".join(map(chr, range(MAX_CP + 1)))
    lower_inv: dict[str, list[str]] = {}
    tolower_inv: dict[int, list[int]] = {}
    for ch in everything:
        low = ch.lower()
        if low != ch and len(low) == 1:
            lower_inv.setdefault(low, []).append(ch)
        cp = ord(ch)
        folded = _sre.unicode_tolower(cp)
        if folded != cp:
            tolower_inv.setdefault(folded, []).append(cp)

    def runs(rx: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end() - 1) for m in re.finditer(rx, everything)]

    return {
        "lower_inv": lower_inv,
        "tolower_inv": tolower_inv,
        "digit": runs(r"\d+"),
        "space": runs(r"\s+"),
        "word": runs(r"\w+"),
    }


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(set(cps)):
        if out and cp == out[-1][1] + 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in _merge(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= MAX_CP:
        out.append((start, MAX_CP))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _esc(ch: str) -> str:
    return "\\" + ch if ch.isascii() and not ch.isalnum() else ch


def _klass(ranges: list[tuple[int, int]]) -> str:
    ranges = _merge(ranges)
    if not ranges:
        raise Untranslatable("empty character class")
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _esc(chr(ranges[0][0]))
    if ranges == [(0, MAX_CP)]:
        return "."
    body = "".join(_esc(chr(lo)) if lo == hi else f"{_esc(chr(lo))}-{_esc(chr(hi))}" for lo, hi in ranges)
    return f"[{body}]"


def lowered_by(ch: str) -> list[tuple[int, int]]:
    """Every character whose ``str.lower()`` is ``ch`` (the reference's case-insensitive equality)."""
    same = [ch] if ch.lower() == ch else []
    if ch.isascii():  # the only non-ASCII character lowercasing to ASCII is KELVIN SIGN (İ gives two)
        others = [u for u in (ch.upper(),) if u != ch and u.lower() == ch] + (["\u212a"] if ch == "k" else [])
        return [(ord(c), ord(c)) for c in same + others]
    return [(ord(c), ord(c)) for c in same + _tables()["lower_inv"].get(ch, [])]


@lru_cache(maxsize=4096)
def _ignorecase(cp: int) -> tuple[tuple[int, int], ...]:
    """Every character Python's ``re`` matches against ``cp`` under IGNORECASE."""
    tables = _tables()
    low = _sre.unicode_tolower(cp)
    keys = {low, *(_casefix._EXTRA_CASES.get(low, ()))}
    candidates = {c for k in keys for c in [k, *tables["tolower_inv"].get(k, [])]} | {cp}
    rx = re.compile(re.escape(chr(cp)), re.IGNORECASE)
    return tuple((c, c) for c in sorted(candidates) if rx.fullmatch(chr(c)))


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


def _lowered(parts: tuple[ir.Part, ...]) -> tuple[ir.Part, ...]:
    return tuple(p.lower() if isinstance(p, str) else p for p in parts)


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


def ci_regexp(parts: tuple[ir.Part, ...]) -> str | None:
    """A cased Lucene regexp accepting exactly the values whose ``str.lower()`` fullmatches the lowered
    pattern, or None when that is not regular enough to say (σ/ς, U+0307, ``??``, ``i?``)."""
    flat: list[object] = []
    for p in _lowered(parts):
        flat.extend(p if isinstance(p, str) else [p])
    out = []
    for i, item in enumerate(flat):
        nxt = flat[i + 1] if i + 1 < len(flat) else None
        if isinstance(item, ir.AnyChars):
            out.append(".*")
        elif isinstance(item, ir.OneChar):
            if isinstance(nxt, ir.OneChar):
                return None
            prev = flat[i - 1] if i else None
            # next to a *, the ? may take either half of İ ("i" + U+0307) and the * the other
            out.append("." if isinstance(nxt, ir.AnyChars) or isinstance(prev, ir.AnyChars) else "[^\u0130]")
        else:
            assert isinstance(item, str)
            if item in ("σ", "ς", "\u0307"):
                return None
            ranges = lowered_by(item)
            if item == "i":
                if isinstance(nxt, ir.OneChar):
                    return None
                if isinstance(nxt, ir.AnyChars):
                    ranges = [*ranges, (0x130, 0x130)]
            out.append(_klass(ranges) if ranges else _esc(item))
    return "".join(out)


# --- regex translation ------------------------------------------------------------------------


def translate_regex(pattern: str, flags: str) -> str:
    """Python ``re.search(pattern, text, flags)`` as a Lucene regexp over the whole value."""
    bits = (re.IGNORECASE if "i" in flags else 0) | (re.MULTILINE if "m" in flags else 0)
    bits |= re.DOTALL if "s" in flags else 0
    parsed = sre_parse.parse(pattern, bits)
    state = parsed.state.flags
    if state & (re.ASCII | re.LOCALE):
        raise Untranslatable("ASCII/LOCALE flag")
    ctx = {"i": bool(state & re.IGNORECASE), "m": bool(state & re.MULTILINE), "s": bool(state & re.DOTALL)}
    items = list(parsed)
    if len(items) == 2 and items[0][0] == C.AT and items[1][0] == C.BRANCH:  # ^(a$|b): sre factors out the ^
        alternatives = [[items[0], *alt] for alt in items[1][1][1]]
        return "(" + "|".join(_anchored(alt, ctx) for alt in alternatives) + ")"
    if len(items) == 1 and items[0][0] == C.BRANCH:
        return "(" + "|".join(_anchored(list(alt), ctx) for alt in items[0][1][1]) + ")"
    return _anchored(items, ctx)


def _anchored(items: list[Any], ctx: dict[str, bool]) -> str:
    head, tail = ".*", ".*"
    if items and items[0][0] == C.AT and items[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
        head = "(.*\n)?" if ctx["m"] and items[0][1] == C.AT_BEGINNING else ""
        items = items[1:]
    if items and items[-1][0] == C.AT and items[-1][1] in (C.AT_END, C.AT_END_STRING):
        tail = "" if items[-1][1] == C.AT_END_STRING else "(\n.*)?" if ctx["m"] else "\n?"
        items = items[:-1]
    return head + _seq(items, ctx) + tail


def _seq(items: list[Any], ctx: dict[str, bool]) -> str:
    return "".join(_node(op, av, ctx) for op, av in items)


def _node(op: Any, av: Any, ctx: dict[str, bool]) -> str:
    if op == C.LITERAL:
        return _klass(list(_ignorecase(av))) if ctx["i"] else _esc(chr(av))
    if op == C.NOT_LITERAL:
        ranges = list(_ignorecase(av)) if ctx["i"] else [(av, av)]
        return _klass(_complement(ranges))
    if op == C.ANY:
        return "." if ctx["s"] else _klass(_complement([(10, 10)]))
    if op == C.IN:
        return _klass(_charset(av, ctx))
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        lo, hi, sub = av
        if lo > 100 or (hi != C.MAXREPEAT and hi > 100):
            raise Untranslatable("large repeat count")
        inner = "(" + _seq(list(sub), ctx) + ")"
        if hi == C.MAXREPEAT:
            return inner + ("*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}")
        return inner + ("?" if (lo, hi) == (0, 1) else f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")
    if op == C.SUBPATTERN:
        _group, add, delete, sub = av
        if add or delete:
            raise Untranslatable("scoped inline flags")
        return "(" + _seq(list(sub), ctx) + ")"
    if op == C.BRANCH:
        return "(" + "|".join(_seq(list(alt), ctx) for alt in av[1]) + ")"
    raise Untranslatable(f"{op}")


def _category(cat: Any) -> list[tuple[int, int]]:
    tables = _tables()
    base = {
        C.CATEGORY_DIGIT: "digit",
        C.CATEGORY_NOT_DIGIT: "digit",
        C.CATEGORY_SPACE: "space",
        C.CATEGORY_NOT_SPACE: "space",
        C.CATEGORY_WORD: "word",
        C.CATEGORY_NOT_WORD: "word",
    }.get(cat)
    if base is None:
        raise Untranslatable(f"category {cat}")
    ranges = tables[base]
    return _complement(ranges) if "NOT" in str(cat) else ranges


def _charset(items: list[Any], ctx: dict[str, bool]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    negate = False
    for op, av in items:
        if op == C.NEGATE:
            negate = True
        elif op == C.LITERAL:
            ranges.extend(_ignorecase(av) if ctx["i"] else [(av, av)])
        elif op == C.RANGE:
            lo, hi = av
            if ctx["i"]:
                if hi - lo > 2048:
                    raise Untranslatable("large case-insensitive range")
                for cp in range(lo, hi + 1):
                    ranges.extend(_ignorecase(cp))
            else:
                ranges.append((lo, hi))
        elif op == C.CATEGORY:
            ranges.extend(_category(av))
        else:
            raise Untranslatable(f"{op} in a class")
    ranges = _merge(ranges)
    return _complement(ranges) if negate else ranges


# --- numbers on strings -----------------------------------------------------------------------


@lru_cache(maxsize=10)
def _digit_class(d: int) -> str:
    chars = [(cp, cp) for lo, hi in _tables()["digit"] for cp in range(lo, hi + 1) if unicodedata.decimal(chr(cp)) == d]
    return _klass(chars)


def decimal_string_regexp(value: int) -> str | None:
    """Strings the reference reads as ``value``: ``-?\\d{1,18}`` (Unicode digits) equal to it."""
    digits = str(abs(value))
    if len(digits) > 18:
        return None
    zero = _digit_class(0)
    if value == 0:
        return f"-?{zero}{{1,18}}"
    body = "".join(_digit_class(int(d)) for d in digits)
    pad = 18 - len(digits)
    return ("-" if value < 0 else "") + (f"{zero}{{0,{pad}}}" if pad else "") + body


# --- leaves -----------------------------------------------------------------------------------


class Compiler:
    """Compiles IR for one view of the field types (the template's, or the live indices')."""

    def __init__(self, types: Types = field_type, regexp: bool = True) -> None:
        self.types = types
        self.use_regexp = regexp  # False: every regexp leaf is a prefilter (the node refused one)

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
        result = self.leaf(node)
        if isinstance(result, dict):
            return result, True
        superset, subset = result
        return (superset if positive else subset), False

    def leaf(self, leaf: ir.Leaf) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """An exact query, or (superset, subset) when the DSL cannot say it exactly."""
        if isinstance(leaf, ir.FieldRef):
            return self._fieldref(leaf)
        assert not isinstance(leaf, ir.Keyword)
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
        parts = leaf.parts if leaf.cased else _lowered(leaf.parts)
        if target is not None:
            if leaf.cased or _caseless(parts):
                return _native(target, parts, False)
            if ft.kind != "flat_object" and _native_ci_safe(parts):
                return _native(target, parts, True)
            rx = ci_regexp(parts)
            return None if rx is None else self._regexp(target, rx)
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


# --- the engine -------------------------------------------------------------------------------

PAGE = 1000  # hits per search_after page
GROUP = 10_000  # events sharing one millisecond fetched in one request (more: scrolled)
KEEP_ALIVE = "5m"


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


def _floor_ms(iso: str) -> int:
    return micros(iso) // 1000


def _ceil_ms(iso: str) -> int:
    return -((-micros(iso)) // 1000)


def scope_query(scope: Scope) -> dict[str, Any]:
    """A superset of the scope (millisecond bounds); the exact check is ``in_scope`` on each hit."""
    out = []
    for bounds, name in ((scope.ingested, "event.ingested"), (scope.timestamp, "@timestamp")):
        if bounds is not None:
            out.append(
                {"range": {name: {"gte": _floor_ms(bounds[0]), "lt": _ceil_ms(bounds[1]), "format": "epoch_millis"}}}
            )
    return all_of(out)


def in_scope(doc: dict[str, Any], scope: Scope) -> bool:
    for bounds, name in ((scope.ingested, "event.ingested"), (scope.timestamp, "@timestamp")):
        if bounds is None:
            continue
        found = values(doc, name)
        if not found or not (micros(bounds[0]) <= micros(str(found[0])) < micros(bounds[1])):
            return False
    return True


def ts_micros(doc: dict[str, Any]) -> int:
    ts = doc.get("@timestamp")
    return micros(ts) if isinstance(ts, str) else 0


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
        self.page = page
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

    def __init__(self, store: Any, page: int = PAGE) -> None:
        self.client = store.client
        self.pattern = store.events_pattern
        self.page = page

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
        return self.client.create_pit(index=self.pattern, params={"keep_alive": KEEP_ALIVE})["pit_id"]

    def _close(self, pit: str | None) -> None:
        if pit:
            self.client.delete_pit(body={"pit_id": [pit]}, params={"ignore": 404})

    def _scroll(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        body = {k: v for k, v in body.items() if k not in ("pit", "track_total_hits")}
        body["size"] = GROUP
        response = self.client.search(index=self.pattern, body=body, params={"scroll": KEEP_ALIVE})
        out, scroll_id = [], response.get("_scroll_id")
        try:
            while response["hits"]["hits"]:
                out.extend(response["hits"]["hits"])
                response = self.client.scroll(body={"scroll_id": scroll_id, "scroll": KEEP_ALIVE})
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
                response = self.client.search(body=body)
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
        except TransportError as exc:
            if produced or not refused_regexp(exc):
                raise
            yield from self._select(Compiler(types, regexp=False), rule, scope)

    def _select(self, compiler: Compiler, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        dsl, exact = compiler.compile(rule.condition)
        if dsl == MATCH_NONE:
            return
        for hit in self.stream(all_of([scope_query(scope), dsl]), True, scope.timestamp is not None):
            doc = hit["_source"]
            if in_scope(doc, scope) and (exact or matches(rule.condition, doc)):
                yield hit["_id"], doc

    def select_many(self, rules: list[Rule], scope: Scope) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """``select`` for many single-event rules: one ``_msearch`` round trip per page for all of them,
        under one point in time. Returns rule id → (id, document) in (@timestamp, id) order."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {rule.id: [] for rule in rules}
        fields = set().union(*(ir.fields_of(r.condition) for r in rules)) if rules else set()
        compiler = Compiler(live_types(self.client, self.pattern, fields))
        live: list[tuple[Rule, bool, Cursor]] = []
        scoped = scope_query(scope)
        for rule in rules:
            dsl, exact = compiler.compile(rule.condition)
            if dsl != MATCH_NONE:
                live.append((rule, exact, Cursor(all_of([scoped, dsl]), True, self.page, scope.timestamp is not None)))
        pit = self._pit() if live else None
        if pit is None:
            return out
        try:
            while live:
                lines: list[dict[str, Any]] = []
                for _rule, _exact, cursor in live:
                    lines += [{}, {**cursor.body(), "pit": {"id": pit, "keep_alive": KEEP_ALIVE}}]
                responses = self.client.msearch(body=lines)["responses"]
                for n, ((rule, exact, cursor), response) in enumerate(zip(live, responses, strict=True)):
                    if "error" in response:
                        if not out[rule.id] and cursor.fresh and refused_regexp(response["error"]):
                            dsl, exact = Compiler(compiler.types, regexp=False).compile(rule.condition)
                            live[n] = (rule, exact, Cursor(all_of([scoped, dsl]), True, self.page, cursor.timed))
                            continue
                        raise RuntimeError(f"rule {rule.id}: {response['error']}")
                    pit = response.get("pit_id", pit)
                    for hit in cursor.feed(response, self._scroll):
                        doc = hit["_source"]
                        if in_scope(doc, scope) and (exact or matches(rule.condition, doc)):
                            out[rule.id].append((hit["_id"], doc))
                live = [entry for entry in live if not entry[2].done]
        finally:
            self._close(pit)
        return out

    def correlate(self, rule: Rule, scope: Scope) -> list[Window]:
        from siem.detect.engines.opensearch_correlate import correlate

        return correlate(self, rule, scope)

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), GROUP):
            batch = unique[start : start + GROUP]
            response = self.client.search(
                index=self.pattern,
                body={"query": {"ids": {"values": batch}}, "size": len(batch)},
                params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            )
            for hit in response["hits"]["hits"]:
                out[hit["_id"]] = hit["_source"]
        return out
