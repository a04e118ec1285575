"""Case-insensitive character classes and Python regex → Lucene regexp translation.

Split out of the Query DSL compiler (``opensearch_dsl``) because it is a self-contained piece of text
algebra with its own hazards, and the compiler only needs its answers: strings in, regexps out.

Case-insensitive strings. The reference (``siem.detect.evaluate``) lowercases both sides with
``str.lower``; where OpenSearch's ``case_insensitive`` flag would not agree, the compiler asks
``ci_regexp`` for a cased ``regexp`` in which each character is the class of every character
``str.lower`` maps onto it. Regular expressions are translated from Python's parse tree
(``re._parser``) into Lucene syntax (implicitly anchored; ``\\d``/``\\w``/``\\s`` as Unicode classes,
``i`` as explicit classes); constructs Lucene cannot express (look-arounds, back-references,
``\\b``, anchors inside the pattern, scoped flags) raise ``Untranslatable`` and the compiler falls back
to a prefilter. ``decimal_string_regexp`` spells the strings the reference reads as a given integer.

The Unicode tables behind all of this are built once, lazily, on first use.
"""

from __future__ import annotations

import _sre
import re
import unicodedata
from array import array
from functools import lru_cache
from re import _casefix  # type: ignore[attr-defined]
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from siem.detect import ir

MAX_CP = 0x10FFFF


class Untranslatable(ValueError):
    """A regex construct Lucene cannot express exactly."""


# --- character tables (built once, lazily) ----------------------------------------------------


@lru_cache(maxsize=1)
def _tables() -> dict[str, Any]:
    """Case inverses and class ranges over every code point. Built in blocks of 256: a block that
    lower-casing leaves unchanged (most of Unicode) holds no character either inverse needs (simple
    lower-casing changes a character only where full lower-casing does, checked over all of Unicode)."""
    everything = array("I", range(MAX_CP + 1)).tobytes().decode("utf-32-le", "surrogatepass")
    lower_inv: dict[str, list[str]] = {}
    tolower_inv: dict[int, list[int]] = {}
    for start in range(0, MAX_CP + 1, 256):
        block = everything[start : start + 256]
        if block.lower() == block:
            continue
        for ch in block:
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


@lru_cache(maxsize=4096)
def lowered_by(ch: str) -> tuple[tuple[int, int], ...]:
    """Every character whose ``str.lower()`` is ``ch`` (the reference's case-insensitive equality)."""
    same = [ch] if ch.lower() == ch else []
    if ch.isascii():  # the only non-ASCII character lowercasing to ASCII is KELVIN SIGN (İ gives two)
        others = [u for u in (ch.upper(),) if u != ch and u.lower() == ch] + (["\u212a"] if ch == "k" else [])
        return tuple((ord(c), ord(c)) for c in same + others)
    return tuple((ord(c), ord(c)) for c in same + _tables()["lower_inv"].get(ch, []))


@lru_cache(maxsize=4096)
def _ignorecase(cp: int) -> tuple[tuple[int, int], ...]:
    """Every character Python's ``re`` matches against ``cp`` under IGNORECASE."""
    tables = _tables()
    low = _sre.unicode_tolower(cp)
    keys = {low, *(_casefix._EXTRA_CASES.get(low, ()))}
    candidates = {c for k in keys for c in [k, *tables["tolower_inv"].get(k, [])]} | {cp}
    rx = re.compile(re.escape(chr(cp)), re.IGNORECASE)
    return tuple((c, c) for c in sorted(candidates) if rx.fullmatch(chr(c)))


# --- case-insensitive wildcard patterns -------------------------------------------------------


def lowered_parts(parts: tuple[ir.Part, ...]) -> tuple[ir.Part, ...]:
    """The pattern with its literal text lowercased (wildcards kept)."""
    return tuple(p.lower() if isinstance(p, str) else p for p in parts)


def ci_regexp(parts: tuple[ir.Part, ...]) -> str | None:
    """A cased Lucene regexp accepting exactly the values whose ``str.lower()`` fullmatches the lowered
    pattern, or None when that is not regular enough to say (σ/ς, U+0307, ``??``, ``i?``)."""
    flat: list[object] = []
    for p in lowered_parts(parts):
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
            ranges = list(lowered_by(item))
            if item == "i":
                if isinstance(nxt, ir.OneChar):
                    return None
                if isinstance(nxt, ir.AnyChars):
                    ranges.append((0x130, 0x130))
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
