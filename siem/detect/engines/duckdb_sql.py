"""The SQL pieces of the DuckDB engine (``siem.detect.engines.duckdb``): the IR compiler, bound
parameters, JSON paths and the IP macros. Every user value is a bound parameter; field paths reach
the SQL text only as bound JSON-path strings, after validation."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from siem.detect import ir
from siem.detect.engines import datasets as datasets

_FIELD = re.compile(r"^[A-Za-z0-9_@./-]+$")
_FETCH = 2000

# IP addresses parsed in SQL, accepting exactly what Python's ipaddress.ip_address accepts
# (dotted quad without leading zeros; IPv6 with one '::', an IPv4 tail, a %scope).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H = r"[0-9a-fA-F]{1,4}"
_V6_SHAPE = rf"(({_H}:){{7}}{_H}|({_H}:){{6}}{_V4}|({_H}(:{_H})*)?::(({_H}:)*({_H}|{_V4}))?)(%[^%/]+)?"
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO siem_ip4(s) AS CASE WHEN regexp_full_match(s, '{_V4}') THEN
    split_part(s, '.', 1)::BIGINT * 16777216 + split_part(s, '.', 2)::BIGINT * 65536
    + split_part(s, '.', 3)::BIGINT * 256 + split_part(s, '.', 4)::BIGINT END;
CREATE OR REPLACE TEMP MACRO siem_ip6_hex(f) AS
    array_to_string(list_transform(string_split(f, ':'), lambda g: lpad(g, 4, '0')), '');
CREATE OR REPLACE TEMP MACRO siem_ip6_count(h) AS CASE WHEN h = '' THEN 0 ELSE len(string_split(h, ':')) END;
CREATE OR REPLACE TEMP MACRO siem_ip6(s) AS CASE WHEN regexp_full_match(s, '{_V6_SHAPE}') THEN
    list_transform([lower(regexp_extract(s, '^[^%]*'))], lambda a:
    list_transform([CASE WHEN contains(a, '.') THEN list_transform([siem_ip4(regexp_extract(a, '[^:]*$'))],
        lambda n: regexp_replace(a, '[^:]*$', '') || printf('%x:%x', n // 65536, n % 65536))[1] ELSE a END],
    lambda h: CASE WHEN NOT contains(h, '::') THEN siem_ip6_hex(h) ELSE
    list_transform([[split_part(h, '::', 1), split_part(h, '::', 2)]], lambda lr:
    list_transform([siem_ip6_count(lr[1]) + siem_ip6_count(lr[2])],
    lambda n: CASE WHEN n <= 7 THEN siem_ip6_hex(concat_ws(':', nullif(lr[1], ''), rtrim(repeat('0:', 8 - n), ':'),
        nullif(lr[2], ''))) END)[1])[1] END)[1])[1] END;
"""

# JSON value (minified, as DuckDB serializes it) → {y: json type, s: text form (None for objects)}, typed by
# its first character so the value is not parsed again (only strings are, to unescape them); see ir.text_form.
# An object is a value only if a scalar lies below it: with every "key": removed, its text still holds a
# string, a digit or true/false (null has none of those characters).
_TYPED = (
    "list_transform(list_filter({f}, lambda e: e::VARCHAR NOT IN ('null', '{{}}') AND (left(e::VARCHAR, 1) <> '{{'"
    " OR regexp_matches(regexp_replace(e::VARCHAR, '\"(?:[^\"\\\\]|\\\\.)*\"\\s*:', '', 'g'), '[\"0-9tf]'))),"
    " lambda e: {{"
    "'y': CASE left(e::VARCHAR, 1) WHEN '\"' THEN 'VARCHAR' WHEN '{{' THEN 'OBJECT' WHEN 't' THEN 'BOOLEAN'"
    " WHEN 'f' THEN 'BOOLEAN' WHEN '[' THEN 'ARRAY' WHEN 'n' THEN 'NULL'"
    " ELSE CASE WHEN regexp_matches(e::VARCHAR, '[.eE]') THEN 'DOUBLE' ELSE 'BIGINT' END END,"
    " 's': CASE left(e::VARCHAR, 1) WHEN '\"' THEN json_extract_string(e, '$') WHEN '{{' THEN NULL"
    " WHEN 't' THEN e::VARCHAR WHEN 'f' THEN e::VARCHAR"
    " ELSE CASE WHEN regexp_matches(e::VARCHAR, '[.eE]') THEN CAST(e AS DOUBLE)::VARCHAR ELSE e::VARCHAR END END}})"
)
_OPS = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class _Params:
    """Named parameters: every user value goes through here, never into the SQL text."""

    def __init__(self, prefix: str = "p") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _steps(path: str) -> list[str]:
    """The keys of a dotted path; a whole-payload path keeps its final ``**`` step."""
    keys = path.split(".")
    named = keys[:-1] if keys[-1] == ir.DESCENDANTS and len(keys) > 1 else keys
    if not _FIELD.match(".".join(named)) or not all(named):
        raise ValueError(f"field path {path!r} is not a dotted path of [A-Za-z0-9_@/-] names")
    return keys


def _json_path(keys: list[str]) -> str:
    return "$" + "".join(f'."{k}"' for k in keys)


def _like(parts: tuple[ir.Part, ...], cased: bool) -> str:
    out = []
    for part in parts:
        if isinstance(part, ir.AnyChars):
            out.append("%")
        elif isinstance(part, ir.OneChar):
            out.append("_")
        else:
            text = part if cased else part.lower()
            out.append(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return "".join(out)


class _Compiler:
    """IR → a boolean SQL expression over the per-field columns v0, v1... of the ``vals`` CTE."""

    def __init__(self, bind: _Params) -> None:
        self.bind = bind
        self.fields: dict[str, int] = {}
        self.used: set[int] = set()  # the columns read since the caller last cleared it
        self.uses_ip = False  # needs the siem_ip4/siem_ip6 macros
        self.joined: set[tuple[int, bool]] = set()  # (field column, cased) whose joined text form is read

    def column(self, path: str) -> str:
        if path not in self.fields:
            _steps(path)
            self.fields[path] = len(self.fields)
        self.used.add(self.fields[path])
        return f"v{self.fields[path]}"

    def texts(self, path: str) -> str:
        """The non-null text forms of a field, as a VARCHAR[] expression."""
        return f"list_transform(list_filter({self.column(path)}, lambda e: e.s IS NOT NULL), lambda e: e.s)"

    def cond(self, node: ir.Node) -> str:
        if isinstance(node, ir.And):
            return "(" + " AND ".join(self.cond(a) for a in node.args) + ")"
        if isinstance(node, ir.Or):
            return "(" + " OR ".join(self.cond(a) for a in node.args) + ")"
        if isinstance(node, ir.Not):
            return f"(NOT {self.cond(node.arg)})"
        if isinstance(node, ir.Const):
            return "TRUE" if node.value else "FALSE"
        if isinstance(node, ir.Keyword):
            return self.cond(node.as_fields())
        if isinstance(node, ir.Exists):
            return f"(len({self.column(node.field)}) > 0)"
        if isinstance(node, ir.FieldRef):
            return self._fieldref(node)
        if isinstance(node, ir.Str) and (needle := _needle(node)) is not None:
            return f"contains({self._joined(node.field, node.cased)}, {self.bind(needle)})"
        return f"(len(list_filter({self.column(node.field)}, lambda e: {self._element(node)})) > 0)"

    def _joined(self, path: str, cased: bool) -> str:
        """The column holding the field's text forms joined (see ``joined_columns``)."""
        column = self.column(path)
        index = int(column[1:])
        self.joined.add((index, cased))
        return f"{'k' if cased else 'j'}{index}"

    def joined_columns(self) -> list[str]:
        """``j<i>`` (lower-cased) / ``k<i>`` (as is): the field's text forms, each NUL-delimited
        (``\\0a\\0b\\0``, a NUL inside a value turned into \\x01), so a plain substring test answers
        equality, prefix, suffix and substring for every value at once — one ``contains`` per leaf
        instead of a lambda per leaf (which DuckDB plans one by one: the cost of a batch of rules)."""
        out = []
        for index, cased in sorted(self.joined):
            text = "e.s" if cased else "lower(e.s)"
            out.append(
                f"chr(0) || array_to_string(list_transform(list_filter(v{index}, lambda e: e.s IS NOT NULL),"
                f" lambda e: replace({text}, chr(0), chr(1))), chr(0)) || chr(0) AS {'k' if cased else 'j'}{index}"
            )
        return out

    def _element(self, node: ir.Leaf) -> str:
        """The predicate one value (``e``: {y, s}) must satisfy."""
        if isinstance(node, ir.Str):
            text = "e.s" if node.cased else "lower(e.s)"
            literal = node.literal
            if literal is not None:
                return f"{text} = {self.bind(literal if node.cased else literal.lower())}"
            return f"{text} LIKE {self.bind(_like(node.parts, node.cased))} ESCAPE '\\'"
        if isinstance(node, ir.Num):
            op = _OPS[node.op]
            value = self.bind(node.value)
            whole = "(e.y IN ('BIGINT', 'UBIGINT') OR (e.y = 'VARCHAR' AND regexp_full_match(e.s, '-?[0-9]{1,18}')))"
            as_int = f"({whole} AND TRY_CAST(e.s AS HUGEINT) {op} {value})"
            as_float = f"(e.y = 'DOUBLE' AND TRY_CAST(e.s AS DOUBLE) {op} {value})"
            return f"({as_int} OR {as_float})"
        if isinstance(node, ir.Regex):
            flags = f"(?{node.flags})" if node.flags else ""
            return f"regexp_matches(e.s, {self.bind(flags + node.pattern)})"
        if isinstance(node, ir.Cidr):
            net = ipaddress.ip_network(node.network)
            self.uses_ip = True
            lo, hi = int(net.network_address), int(net.broadcast_address)
            if net.version == 4:
                return f"(e.y = 'VARCHAR' AND siem_ip4(e.s) BETWEEN {self.bind(lo)} AND {self.bind(hi)})"
            low, high = self.bind(f"{lo:032x}"), self.bind(f"{hi:032x}")
            return f"(e.y = 'VARCHAR' AND contains(e.s, ':') AND siem_ip6(e.s) BETWEEN {low} AND {high})"
        raise TypeError(f"not an IR leaf: {node!r}")

    def _fieldref(self, node: ir.FieldRef) -> str:
        left = f"list_transform({self.texts(node.field)}, lambda a: lower(a))"
        right = f"list_transform({self.texts(node.other)}, lambda b: lower(b))"
        if node.mode == "eq":
            return f"(len(list_intersect({left}, {right})) > 0)"
        test = "starts_with(a, b)" if node.mode == "startswith" else "suffix(a, b)"
        return f"(len(list_filter({left}, lambda a: len(list_filter({right}, lambda b: {test})) > 0)) > 0)"


def _needle(node: ir.Str) -> str | None:
    """The substring of a joined column (``_Compiler.joined_columns``) that holds exactly when some
    value matches ``node``: for an equality, a prefix, a suffix or a substring test with a non-empty
    text free of NUL and \\x01. None for anything else (``?``, inner ``*``, ``*`` alone)."""
    parts = list(node.parts)
    lead = bool(parts) and isinstance(parts[0], ir.AnyChars)
    trail = bool(parts) and isinstance(parts[-1], ir.AnyChars)
    while parts and isinstance(parts[0], ir.AnyChars):
        parts.pop(0)
    while parts and isinstance(parts[-1], ir.AnyChars):
        parts.pop()
    if len(parts) != 1 or not isinstance(parts[0], str) or not parts[0]:
        return None
    text = parts[0] if node.cased else parts[0].lower()
    if "\x00" in text or "\x01" in text:
        return None
    return ("" if lead else "\x00") + text + ("" if trail else "\x00")


def dataset_filter(names: frozenset[str] | None, bind: _Params) -> str:
    """A clause on the events table's ``dataset`` column keeping the rows a rule may match."""
    if names is None:
        return ""
    return f"lower(dataset) IN ({', '.join(bind(n) for n in sorted(names))})" if names else "FALSE"
