"""The DuckDB engine: detections as SQL over the embedded store's ``events`` table.

One rule becomes one SQL statement with every user value bound as a named parameter (``$p0``...);
field paths reach the SQL text only as bound JSON-path strings, after validation (the SQL pieces
are in ``siem.detect.engines.duckdb_sql``).

How a field's values are found (the meaning is ``siem.detect.evaluate.values``: a list at any step
is flattened, JSON null and ``{}`` are no value):

* one ``json_extract(doc, [every leaf path])`` per row parses the document once;
* a non-null leaf means the path went through objects only: its values are the leaf itself, or the
  elements of a flat leaf array;
* a null leaf with no array on any prefix (``json_type(doc, [prefixes])``) means no value;
* a whole-payload path (``a.**``) reached through objects only: the scalars of one recursive
  ``json_extract(leaf, '$.**')``;
* anything else (an array at an inner step, arrays nested in arrays) goes to the exact path: one
  ``json_tree`` of the row, each field keeping the nodes whose ``fullkey`` is its path with any number
  of ``[n]`` after each step (a bound regular expression).

Each field becomes a list of ``{y: json type, s: text form}``; a leaf is "some element satisfies",
so missing fields are empty lists and ``NOT`` over them is true, as in the reference.

Before any JSON work, rows are pruned on the ``dataset`` column when the condition pins
``event.dataset`` down (``duckdb_sql.datasets``). ``select_many`` answers many rules in one scan:
one shared set of field columns, each rule's condition a boolean column, rows split in Python.
Correlations are computed with window functions (see ``DuckDBEngine.correlate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.engines.duckdb_sql import _MACROS as _MACROS
from siem.detect.engines.duckdb_sql import (
    _OPS,
    _TYPED,
    _Compiler,
    _json_path,
    _Params,
    _steps,
    dataset_filter,
    datasets,
)
from siem.detect.rules import Correlation, Rule
from siem.detect.windows import Member, Window
from siem.sinks.embedded import EmbeddedStore

_FETCH = 2000


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.db = store.db
        # a cycle holds every field its rules read for every event of its window: more than a load needs
        self.db.execute("SET memory_limit = $limit", {"limit": store.detect_memory_limit})
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

    def _plain_key(self, keys: list[str]) -> str | None:
        """The ``fullkey`` of a path with its ``[n]`` steps removed (what ``nk`` holds), or None when a
        key is quoted (a quoted key may itself contain ``[n]``: the regular expression decides)."""
        rendered = [self._render(key) for key in keys]
        if any('"' in r for r in rendered):
            return None
        return "$" + "".join(rendered)

    def _fullkey_regex(self, keys: list[str]) -> str:
        index = r"(\[[0-9]+\])*"
        out = re.escape("$")
        for key in keys:
            out += re.escape(self._render(key)) + index
        return out

    @staticmethod
    def _scope(scope: Scope, bind: _Params, names: frozenset[str] | None = None) -> str:
        """The WHERE clause on the events table: the scope, and the datasets the rules may match."""
        clauses = []
        for bounds, column in ((scope.ingested, "ingested"), (scope.timestamp, "ts")):
            if bounds is not None:
                clauses.append(f"{column} >= {bind(_instant(bounds[0]))} AND {column} < {bind(_instant(bounds[1]))}")
        if names is not None:
            clauses.append(dataset_filter(names, bind))
        return (" WHERE " + " AND ".join(clauses)) if clauses else ""

    @staticmethod
    def _missing(keys: list[str], leaf: str, bind: _Params) -> str:
        """A path that is absent with no list on the way has no value; otherwise the exact walk decides."""
        if len(keys) == 1:
            return "[]::JSON[]"
        prefixes = bind([_json_path(keys[:n]) for n in range(1, len(keys))])
        return f"CASE WHEN NOT coalesce(list_contains(json_type(doc, {prefixes}), 'ARRAY'), false) THEN []::JSON[] END"

    def _values(
        self,
        comp: _Compiler,
        bind: _Params,
        scope: Scope,
        names: frozenset[str] | None = None,
        guards: dict[int, frozenset[str]] | None = None,
    ) -> str:
        """CTEs ending in ``vals(id, ts, v0, v1, ...)``: each field's values as [{y, s}], for the events in
        scope whose ``dataset`` is one of ``names`` (None: any). Field i with a guard is worked out only
        on rows of the guard's datasets (elsewhere: no value; no condition reads it there)."""
        where = self._scope(scope, bind, names)
        if not comp.fields:
            return f"vals AS (SELECT id, ts, dataset FROM events{where})"
        paths = list(comp.fields)
        leaf_paths = bind([_json_path([k for k in _steps(p) if k != ir.DESCENDANTS]) for p in paths])
        quick, slow_cols, typed = [], [], []
        for i, path in enumerate(paths):
            keys = _steps(path)
            leaf = f"x[{i + 1}]"
            if keys[-1] == ir.DESCENDANTS:  # every scalar below the root: the exact walk on the rows that have it
                keys = keys[:-1]
                # reached through objects only: the scalars below it, from one recursive json_extract
                nested = f"left({leaf}::VARCHAR, 1) IN ('{{', '[')"
                below = f"list_filter(json_extract({leaf}, '$.**'), lambda e: left(e::VARCHAR, 1) NOT IN ('{{', '['))"
                scalars = f"CASE WHEN {nested} THEN {below} ELSE [{leaf}] END"
                quick.append(f"CASE WHEN {leaf} IS NOT NULL THEN {scalars} ELSE {self._missing(keys, leaf, bind)} END")
                plain = self._plain_key(keys)
                if plain is None:
                    below = self._fullkey_regex(keys) + r"([.\[].*)?"
                    picked = f"regexp_full_match(fullkey, {bind(below)})"
                else:
                    picked = f"(nk = {bind(plain)} OR starts_with(nk, {bind(plain + '.')}))"
                slow_cols.append(f"list(value) FILTER (WHERE scalar AND {picked}) AS s{i}")
            else:
                flat = (
                    f"CASE WHEN NOT starts_with({leaf}::VARCHAR, '[') THEN [{leaf}]"
                    f" WHEN len(list_filter(json_extract({leaf}, '$[*]'), lambda e: starts_with(e::VARCHAR, '['))) = 0"
                    f" THEN json_extract({leaf}, '$[*]') END"
                )
                quick.append(f"CASE WHEN {leaf} IS NOT NULL THEN {flat} ELSE {self._missing(keys, leaf, bind)} END")
                plain = self._plain_key(keys)
                if plain is None:
                    picked = f"regexp_full_match(fullkey, {bind(self._fullkey_regex(keys))})"
                else:
                    picked = f"nk = {bind(plain)}"
                slow_cols.append(f"list(value) FILTER (WHERE {picked}) AS s{i}")
            typed.append(_TYPED.format(f=f"f{i}") + f" AS v{i}")
        for i, guard in (guards or {}).items():
            quick[i] = f"CASE WHEN {dataset_filter(guard, bind)} THEN {quick[i]} ELSE []::JSON[] END"
        quick = [f"{q} AS q{i}" for i, q in enumerate(quick)]
        needs_exact = " OR ".join(f"q{i} IS NULL" for i in range(len(paths)))
        fast_cols = ", ".join(f"q{i} AS f{i}" for i in range(len(paths)))
        exact_cols = ", ".join(f"coalesce(q{i}, s{i}, []::JSON[]) AS f{i}" for i in range(len(paths)))
        # The exact walk: one json_tree per row that needs it, every field's nodes picked from it by
        # its fullkey pattern (one lateral join, not a correlated subquery per field: DuckDB plans
        # those one by one, which cost seconds per statement with a hundred fields).
        return (
            f"pre AS MATERIALIZED (SELECT id, ts, dataset, {', '.join(quick)}, {needs_exact} AS exact FROM"
            f" (SELECT id, ts, dataset, doc, json_extract(doc, {leaf_paths}) AS x FROM events{where})),\n"
            "tree AS (SELECT pre.id, t.fullkey, regexp_replace(t.fullkey, '\\[[0-9]+\\]', '', 'g') AS nk, t.value,"
            " t.type NOT IN ('ARRAY', 'OBJECT') AS scalar"
            " FROM pre JOIN events e USING (id), json_tree(e.doc) t WHERE pre.exact AND t.type <> 'ARRAY'),\n"
            f"slow AS (SELECT id, {', '.join(slow_cols)} FROM tree GROUP BY id),\n"
            f"raw AS (SELECT id, ts, dataset, {fast_cols} FROM pre WHERE NOT exact\n"
            f"  UNION ALL SELECT id, pre.ts, pre.dataset, {exact_cols}"
            " FROM pre LEFT JOIN slow USING (id) WHERE exact),\n"
            f"typed AS (SELECT id, ts, dataset, {', '.join(typed)} FROM raw),\n"
            f"vals AS (SELECT *{''.join(', ' + c for c in comp.joined_columns())} FROM typed)"
        )

    # -- the Engine protocol ----------------------------------------------------------------------

    def sql(self, rule: Rule, scope: Scope) -> tuple[str, dict[str, Any]]:
        """The statement ``select`` runs, and its parameters (for tests and ``EXPLAIN``)."""
        return self._select(rule, scope)[:2]

    def _select(self, rule: Rule, scope: Scope) -> tuple[str, dict[str, Any], _Compiler]:
        bind = _Params()
        comp = _Compiler(bind)
        cond = comp.cond(rule.condition)
        ctes = self._values(comp, bind, scope, datasets(rule.condition))
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

    def select_many(self, rules: list[Rule], scope: Scope) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """``select`` for many single-event rules: rule id → (id, document) in (@timestamp, id) order.
        One scan per set of datasets the rules pin down (CloudTrail rules together, auditd rules
        together...): a shared set of field columns, rule k's condition the boolean column ``r{k}``
        (evaluated only on rows of its datasets), the rows those where any is true. One statement for
        every rule costs more: DuckDB's planning grows faster than the statement."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {rule.id: [] for rule in rules}
        by_datasets: dict[frozenset[str] | None, list[Rule]] = {}
        for rule in rules:  # one statement per dataset set: each works out only the fields its rows need
            by_datasets.setdefault(datasets(rule.condition), []).append(rule)
        for group in by_datasets.values():
            self._select_group(group, scope, out)
        return out

    def _select_group(self, rules: list[Rule], scope: Scope, out: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        sql, params, comp = self._select_many(rules, scope)
        cursor = self._cursor(comp)
        try:
            cursor.execute(sql, params)
            lists = [out[rule.id] for rule in rules]
            while rows := cursor.fetchmany(_FETCH):
                for doc_id, doc, *flags in rows:
                    parsed = orjson.loads(doc)
                    for found, flag in zip(lists, flags, strict=True):
                        if flag:
                            found.append((doc_id, parsed))
        finally:
            cursor.close()

    def _select_many(self, rules: list[Rule], scope: Scope) -> tuple[str, dict[str, Any], _Compiler]:
        bind = _Params()
        comp = _Compiler(bind)
        names = [datasets(rule.condition) for rule in rules]
        flags = []
        readers: dict[int, list[frozenset[str] | None]] = {}  # field column → the datasets of the rules reading it
        for k, (rule, mine) in enumerate(zip(rules, names, strict=True)):
            comp.used.clear()
            cond = comp.cond(rule.condition)
            for column in comp.used:
                readers.setdefault(column, []).append(mine)
            if mine is not None and len(set(names)) > 1:  # a cheap guard: skip the condition on other datasets
                cond = f"CASE WHEN {dataset_filter(mine, bind)} THEN {cond} ELSE FALSE END"
            flags.append(f"coalesce({cond}, FALSE) AS r{k}")
        union = None if any(n is None for n in names) else frozenset().union(*names)  # type: ignore[arg-type]
        guards = {
            column: frozenset().union(*sets)  # type: ignore[arg-type]
            for column, sets in readers.items()
            if all(s is not None for s in sets) and frozenset().union(*sets) != union  # type: ignore[arg-type]
        }
        ctes = self._values(comp, bind, scope, union, guards)
        rs = [f"r{k}" for k in range(len(rules))]
        sql = (
            f"WITH {ctes},\nhits AS (SELECT id, ts, {', '.join(flags)} FROM vals)\n"
            f"SELECT id, e.doc, {', '.join(rs)} FROM hits JOIN events e USING (id) WHERE {' OR '.join(rs)}"
            " ORDER BY hits.ts NULLS FIRST, id"
        )
        return sql, bind.values, comp

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
        names = [datasets(r.condition) for r in corr.rules]
        pinned = None if any(n is None for n in names) else frozenset().union(*names)  # type: ignore[arg-type]
        ctes = self._values(comp, bind, scope, pinned)
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
