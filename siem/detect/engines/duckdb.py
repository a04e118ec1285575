"""The DuckDB engine: detections as SQL over the embedded store's ``events`` table.

One rule becomes one SQL statement with every user value bound as a named parameter (``$p0``...);
field paths reach the SQL text only as bound JSON-path strings, after validation.

How a field's values are found (the meaning is ``siem.detect.evaluate.values``: a list at any step
is flattened, JSON null and ``{}`` are no value):

* one ``json_extract(doc, [every leaf path])`` per row parses the document once;
* a non-null leaf means the path went through objects only: its values are the leaf itself, or the
  elements of a flat leaf array;
* a null leaf with no array on any prefix (``json_type(doc, [prefixes])``) means no value;
* anything else (an array at an inner step, arrays nested in arrays) is rare and goes to the exact
  path: ``json_tree`` over the subtree of the first key, keeping the nodes whose ``fullkey`` is the
  field path with any number of ``[n]`` after each step (a bound regular expression).

Each field becomes a list of ``{y: json type, s: text form}``; a leaf is "some element satisfies",
so missing fields are empty lists and ``NOT`` over them is true, as in the reference.
Correlations are computed with window functions (see ``DuckDBEngine.correlate``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.rules import Correlation, Rule
from siem.detect.windows import Member, Window
from siem.sinks.embedded import EmbeddedStore

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
        self.uses_ip = False  # needs the siem_ip4/siem_ip6 macros

    def column(self, path: str) -> str:
        if path not in self.fields:
            _steps(path)
            self.fields[path] = len(self.fields)
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
        return f"(len(list_filter({self.column(node.field)}, lambda e: {self._element(node)})) > 0)"

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


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.db = store.db
        self._rendered: dict[str, str] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def _cursor(self, comp: _Compiler) -> Any:
        cursor = self.db.cursor()  # its own result set: select() may stream while others query
        if comp.uses_ip:
            cursor.execute(_MACROS)  # temporary macros live in one connection
        return cursor

    def _render(self, key: str) -> str:
        """How json_tree spells one key in ``fullkey`` (``.a1`` or ``."@x"``), asked of DuckDB itself."""
        if key not in self._rendered:
            row = self.db.execute(
                "SELECT fullkey FROM json_tree(json_object($k, 1)) WHERE key = $k", {"k": key}
            ).fetchone()
            self._rendered[key] = str(row[0])[1:]
        return self._rendered[key]

    def _fullkey_regex(self, keys: list[str]) -> str:
        index = r"(\[[0-9]+\])*"
        out = re.escape(_json_path(keys[:1])) + index
        for key in keys[1:]:
            out += re.escape(self._render(key)) + index
        return out

    @staticmethod
    def _scope(scope: Scope, bind: _Params) -> str:
        clauses = []
        for bounds, column in ((scope.ingested, "ingested"), (scope.timestamp, "ts")):
            if bounds is not None:
                clauses.append(f"{column} >= {bind(_instant(bounds[0]))} AND {column} < {bind(_instant(bounds[1]))}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else ""

    @staticmethod
    def _missing(keys: list[str], leaf: str, bind: _Params) -> str:
        """A path that is absent with no list on the way has no value; otherwise the exact walk decides."""
        if len(keys) == 1:
            return "[]::JSON[]"
        prefixes = bind([_json_path(keys[:n]) for n in range(1, len(keys))])
        return f"CASE WHEN NOT coalesce(list_contains(json_type(doc, {prefixes}), 'ARRAY'), false) THEN []::JSON[] END"

    def _values(self, comp: _Compiler, bind: _Params, scope: Scope) -> str:
        """CTEs ending in ``vals(id, ts, v0, v1, ...)``: each field's values as [{y, s}]."""
        where = self._scope(scope, bind)
        if not comp.fields:
            return f"vals AS (SELECT id, ts FROM events{where})"
        paths = list(comp.fields)
        leaf_paths = bind([_json_path([k for k in _steps(p) if k != ir.DESCENDANTS]) for p in paths])
        quick, slow_cols, typed = [], [], []
        for i, path in enumerate(paths):
            keys = _steps(path)
            leaf = f"x[{i + 1}]"
            if keys[-1] == ir.DESCENDANTS:  # every scalar below the root: json_tree on the rows that have it
                keys = keys[:-1]
                below = bind(self._fullkey_regex(keys) + r"([.\[].*)?")
                quick.append(f"CASE WHEN {leaf} IS NULL THEN {self._missing(keys, leaf, bind)} END AS q{i}")
                slow_cols.append(
                    f"coalesce(q{i}, (SELECT list(t.value) FROM json_tree(e.doc, {bind(_json_path(keys[:1]))}) t"
                    f" WHERE t.type NOT IN ('ARRAY', 'OBJECT') AND regexp_full_match(t.fullkey, {below})),"
                    f" []::JSON[]) AS f{i}"
                )
                typed.append(_TYPED.format(f=f"f{i}") + f" AS v{i}")
                continue
            flat = (
                f"CASE WHEN NOT starts_with({leaf}::VARCHAR, '[') THEN [{leaf}]"
                f" WHEN len(list_filter(json_extract({leaf}, '$[*]'), lambda e: starts_with(e::VARCHAR, '['))) = 0"
                f" THEN json_extract({leaf}, '$[*]') END"
            )
            quick.append(f"CASE WHEN {leaf} IS NOT NULL THEN {flat} ELSE {self._missing(keys, leaf, bind)} END AS q{i}")
            exact = (
                f"(SELECT list(t.value) FROM json_tree(e.doc, {bind(_json_path(keys[:1]))}) t"
                f" WHERE t.type <> 'ARRAY' AND regexp_full_match(t.fullkey, {bind(self._fullkey_regex(keys))}))"
            )
            slow_cols.append(f"coalesce(q{i}, {exact}, []::JSON[]) AS f{i}")
            typed.append(_TYPED.format(f=f"f{i}") + f" AS v{i}")
        needs_exact = " OR ".join(f"q{i} IS NULL" for i in range(len(paths)))
        fast_cols = ", ".join(f"q{i} AS f{i}" for i in range(len(paths)))
        return (
            f"pre AS MATERIALIZED (SELECT id, ts, {', '.join(quick)}, {needs_exact} AS exact FROM"
            f" (SELECT id, ts, doc, json_extract(doc, {leaf_paths}) AS x FROM events{where})),\n"
            f"raw AS (SELECT id, ts, {fast_cols} FROM pre WHERE NOT exact\n"
            f"  UNION ALL SELECT id, pre.ts, {', '.join(slow_cols)} FROM pre JOIN events e USING (id) WHERE exact),\n"
            f"vals AS (SELECT id, ts, {', '.join(typed)} FROM raw)"
        )

    # -- the Engine protocol ----------------------------------------------------------------------

    def sql(self, rule: Rule, scope: Scope) -> tuple[str, dict[str, Any]]:
        """The statement ``select`` runs, and its parameters (for tests and ``EXPLAIN``)."""
        return self._select(rule, scope)[:2]

    def _select(self, rule: Rule, scope: Scope) -> tuple[str, dict[str, Any], _Compiler]:
        bind = _Params()
        comp = _Compiler(bind)
        cond = comp.cond(rule.condition)
        ctes = self._values(comp, bind, scope)
        sql = (
            f"WITH {ctes}\nSELECT id, e.doc FROM vals JOIN events e USING (id) WHERE {cond}"
            " ORDER BY vals.ts NULLS FIRST, id"
        )
        return sql, bind.values, comp

    def select(self, rule: Rule, scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
        sql, params, comp = self._select(rule, scope)
        cursor = self._cursor(comp)
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_FETCH):
                for doc_id, doc in rows:
                    yield doc_id, orjson.loads(doc)
        finally:
            cursor.close()

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        rows = self.db.execute("SELECT id, doc FROM events WHERE list_contains($ids, id)", {"ids": ids}).fetchall()
        return {doc_id: orjson.loads(doc) for doc_id, doc in rows}

    def correlate(self, rule: Rule, scope: Scope) -> list[Window]:
        """Satisfying windows, computed in SQL.

        Members: one row per (group combination, event matching any referenced rule), numbered
        ``rn`` by (ts, id) in the group. Every row anchors the RANGE frame ``[t, t + span - 1]`` on
        integer microseconds (so the half-open upper bound is exact, and ties at ``t`` are inside);
        the frame's first and last ``rn`` give the window. event_count is ``count(*)`` over it,
        temporal the number of rules with ``bool_or(h_j)`` over it, value_count ``count(DISTINCT v)``
        over a frame on (member, value) rows, temporal_ordered a chain of "next row matching rule j"
        pointers (``min(rn) FILTER (h_j)`` over the following rows) that must stay inside the frame.
        """
        corr = rule.correlation
        assert corr is not None
        bind = _Params()
        comp = _Compiler(bind)
        hits = [f"({comp.cond(r.condition)}) AS h{j}" for j, r in enumerate(corr.rules)]
        groups = [f"list_sort(list_distinct({comp.texts(name)})) AS g{k}" for k, name in enumerate(corr.group_by)]
        value = f"list_sort(list_distinct({comp.texts(corr.value_field)}))" if corr.value_field else "[]::VARCHAR[]"
        ctes = self._values(comp, bind, scope)
        hs = [f"h{j}" for j in range(len(corr.rules))]
        unnests = "".join(f", unnest(g{k}) AS u{k}(k{k})" for k in range(len(corr.group_by)))
        grp = "[" + ", ".join(f"k{k}" for k in range(len(corr.group_by))) + "]::VARCHAR[]"
        members = (
            f"WITH {ctes},\n"
            f"hit AS (SELECT id, coalesce(epoch_us(ts), 0) AS t, {', '.join(hits + groups)}, {value} AS vl"
            " FROM vals),\n"
            f"m AS (SELECT {grp} AS grp, id, t, {', '.join(hs)}, vl FROM hit{unnests} WHERE {' OR '.join(hs)})\n"
            "SELECT *, row_number() OVER (PARTITION BY grp ORDER BY t, id) AS rn FROM m"
        )
        wbind = _Params("w")
        span = wbind(int(corr.timespan.total_seconds() * 1_000_000) - 1)
        frame = f"PARTITION BY grp ORDER BY t RANGE BETWEEN CURRENT ROW AND {span} FOLLOWING"
        cursor = self._cursor(comp)
        try:
            cursor.execute("CREATE OR REPLACE TEMP TABLE siem_members AS " + members, bind.values)
            windows_sql = self._windows_sql(corr, frame, hs, wbind)
            anchors = cursor.execute(windows_sql, wbind.values).fetchall()
            if not anchors:
                return []
            rows = cursor.execute(
                f"SELECT grp, rn, id, t, [{', '.join(hs)}], vl FROM siem_members"
                " WHERE list_contains($groups, grp) ORDER BY grp, rn",
                {"groups": [list(g) for g in sorted({tuple(a[0]) for a in anchors})]},
            ).fetchall()
        finally:
            cursor.execute("DROP TABLE IF EXISTS siem_members")
            cursor.close()
        by_group: dict[tuple[str, ...], list[Member]] = {}
        for group, _rn, doc_id, t, flags, values in rows:
            hit = frozenset(j for j, flag in enumerate(flags) if flag)
            member = Member(doc_id, t, hit, tuple(values) if corr.value_field else ())
            by_group.setdefault(tuple(group), []).append(member)
        out = []
        for group, rn, lo, hi, val in anchors:
            members_of = by_group[tuple(group)]
            out.append(Window(tuple(group), members_of[rn - 1], tuple(members_of[lo - 1 : hi]), int(val)))
        return out

    def _windows_sql(self, corr: Correlation, frame: str, hs: list[str], bind: _Params) -> str:
        count = bind(corr.count)
        op = _OPS[corr.op]
        bounds = f"SELECT grp, rn, t, {', '.join(hs)}, min(rn) OVER w AS lo, max(rn) OVER w AS hi"
        if corr.type == "event_count":
            body = f"{bounds}, count(*) OVER w AS value FROM siem_members WINDOW w AS ({frame})"
        elif corr.type == "temporal":
            rules = " + ".join(f"max({h}::INT) OVER w" for h in hs)
            body = f"{bounds}, {rules} AS value FROM siem_members WINDOW w AS ({frame})"
        elif corr.type == "value_count":
            body = (
                f"SELECT f.grp, f.rn, f.lo, f.hi, d.value FROM ({bounds} FROM siem_members WINDOW w AS ({frame})) f"
                " JOIN (SELECT grp, rn, value FROM (SELECT grp, rn, v, count(DISTINCT v) OVER w AS value"
                f" FROM siem_members, unnest(list_prepend(NULL::VARCHAR, vl)) AS u(v) WINDOW w AS ({frame}))"
                " WHERE v IS NULL) d USING (grp, rn)"
            )
        elif corr.type == "temporal_ordered":
            nexts = ", ".join(
                f"min(rn) FILTER (WHERE {h}) OVER (PARTITION BY grp ORDER BY rn"
                f" ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS nx{j}"
                for j, h in enumerate(hs)
                if j > 0
            )
            base = f"{bounds}{', ' + nexts if nexts else ''} FROM siem_members WINDOW w AS ({frame})"
            joins, steps, prev = "", [], "a"
            for j in range(1, len(hs)):
                joins += f" LEFT JOIN b c{j} ON c{j}.grp = a.grp AND c{j}.rn = {prev}.nx{j}"
                steps.append(f"coalesce((c{j}.rn <= a.hi)::INT, 0)")
                prev = f"c{j}"
            value = "1" + "".join(f" + {s}" for s in steps)
            body = f"SELECT a.grp, a.rn, a.lo, a.hi, CASE WHEN a.h0 THEN {value} END AS value FROM b a{joins}"
            return (
                f"WITH b AS ({base}) SELECT grp, rn, lo, hi, value FROM ({body}) WHERE value {op} {count}"
                " ORDER BY grp, rn"
            )
        else:
            raise ValueError(f"unsupported correlation type {corr.type}")
        return f"SELECT grp, rn, lo, hi, value FROM ({body}) WHERE value {op} {count} ORDER BY grp, rn"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
