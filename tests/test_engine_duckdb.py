"""The DuckDB engine: rules as SQL over a real embedded store, checked two ways.

Every case states its expected ids (or windows) by hand AND runs the offline evaluator
(``MemoryEngine``, the reference) over the same documents, so a disagreement with either fails.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.engines.duckdb import _MACROS, DuckDBEngine
from siem.detect.engines.memory import MemoryEngine
from siem.detect.rules import Correlation, Rule, load_file
from siem.pipeline import Event
from siem.sinks import EventQuery
from siem.sinks.embedded import EmbeddedStore

T0 = "2026-03-01T12:00:"  # + seconds


def ts(seconds: float) -> str:
    """An instant T0 + seconds, with microseconds (seconds may be fractional or run past 59)."""
    whole, frac = divmod(round(seconds * 1_000_000), 1_000_000)
    minute, sec = divmod(whole, 60)
    return f"2026-03-01T12:{minute:02d}:{sec:02d}.{frac:06d}Z"


def ct(action: str = "Other", at: float = 0, **extra: Any) -> dict[str, Any]:
    """A CloudTrail-shaped document of our schema."""
    doc: dict[str, Any] = {
        "@timestamp": ts(at),
        "event": {"dataset": "aws.cloudtrail", "action": action, "ingested": "2026-03-02T00:00:00Z"},
    }
    doc.update(extra)
    return doc


def rule(condition: ir.Node, correlation: Correlation | None = None) -> Rule:
    return Rule(
        id="r",
        name="r",
        title="t",
        description="",
        author="",
        references=[],
        level="low",
        tags=[],
        status="test",
        license="",
        version="1",
        path=Path("r.yml"),
        line=1,
        logsource={"product": "aws", "service": "cloudtrail"},
        condition=condition,
        correlation=correlation,
    )


def dataset_of(doc: dict[str, Any]) -> str:
    """The events table's ``dataset`` column as the pipeline fills it: the document's event.dataset."""
    event = doc.get("event")
    value = event.get("dataset") if isinstance(event, dict) else None
    return value if isinstance(value, str) else "aws.cloudtrail"


class Both:
    """The DuckDB engine over a real store and the reference over the same documents."""

    def __init__(self, tmp_path: Path, docs: dict[str, dict[str, Any]]) -> None:
        self.store = EmbeddedStore(tmp_path / "store")
        self.store.write([Event(i, dataset_of(d), d) for i, d in docs.items()])
        self.duck = DuckDBEngine(self.store)
        self.memory = MemoryEngine(list(docs.items()))

    def ids(self, r: Rule, scope: Scope | None = None) -> list[str]:
        got = [i for i, _ in self.duck.select(r, scope or Scope())]
        reference = [i for i, _ in self.memory.select(r, scope or Scope())]
        assert got == reference, f"DuckDB {got} != reference {reference}"
        return got

    def where(self, node: ir.Node) -> list[str]:
        return self.ids(rule(node))

    def windows(self, r: Rule, scope: Scope | None = None) -> list[tuple[tuple[str, ...], str, list[str], int]]:
        got = self.duck.correlate(r, scope or Scope())
        reference = self.memory.correlate(r, scope or Scope())
        assert got == reference
        return [(w.group, w.anchor.id, [m.id for m in w.members], w.value) for w in got]


def S(field: str, *parts: ir.Part, cased: bool = False) -> ir.Str:
    return ir.Str(field, tuple(parts), cased)


STAR, QMARK = ir.STAR, ir.QMARK


# -- single-event rules ---------------------------------------------------------------------------


def test_yaml_rule_matches_any_case_only_in_its_dataset_ordered_by_time_then_id(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(
        "title: trail deleted\nid: 6b3a1f4e-0000-4000-8000-000000000001\n"
        "logsource: {product: aws, service: cloudtrail}\n"
        "detection:\n  sel:\n    event.action: DeleteTrail\n  condition: sel\n",
        encoding="utf-8",
    )
    (r,) = load_file(tmp_path / "r.yml")
    other = ct("DeleteTrail", 0)
    other["event"]["dataset"] = "aws.vpcflow"
    both = Both(
        tmp_path,
        {
            "e3": ct("DELETETRAIL", 1),
            "e2": ct("deletetrail", 1),  # same instant: id breaks the tie
            "e1": ct("DeleteTrail", 5),
            "e0": ct("DeleteTrail", 0.5),
            "x1": ct("DeleteTrailX", 0),
            "x2": other,
        },
    )
    assert both.ids(r) == ["e0", "e2", "e3", "e1"]


def test_cased_string_compares_exactly(tmp_path: Path) -> None:
    both = Both(tmp_path, {"a": ct("DeleteTrail"), "b": ct("deletetrail")})
    assert both.where(S("event.action", "DeleteTrail", cased=True)) == ["a"]
    assert both.where(S("event.action", "Delete", STAR, cased=True)) == ["a"]
    assert both.where(S("event.action", "DELETE", STAR)) == ["a", "b"]


def test_wildcards_and_literal_percent_underscore_backslash(tmp_path: Path) -> None:
    values = {
        "pct": "50% off",
        "pcx": "50X off",
        "und": "a_b",
        "unx": "aXb",
        "two": "aXXb",
        "ab": "ab",
        "bs": "C:\\temp\\x",
        "bsx": "C:Xtemp\\x",
        "empty": "",
        "uni": "ÉCOLE 東京",
        "nl": "first\nsecond",
    }
    docs = {k: ct(at=i, message=v) for i, (k, v) in enumerate(values.items())}
    docs["none"] = ct(at=99)  # no message at all
    both = Both(tmp_path, docs)
    assert both.where(S("message", "50% off")) == ["pct"]
    assert both.where(S("message", "50", STAR, " off")) == ["pct", "pcx"]
    assert both.where(S("message", "a_b")) == ["und"]
    assert both.where(S("message", "50% ", STAR)) == ["pct"]  # with a wildcard too: % is literal
    assert both.where(S("message", "a_", STAR)) == ["und"]
    assert both.where(S("message", "a", QMARK, "b")) == ["und", "unx"]
    assert both.where(S("message", "C:\\temp\\", STAR)) == ["bs"]
    assert both.where(S("message", STAR, "\\", STAR)) == ["bs", "bsx"]
    assert both.where(S("message", STAR)) == [k for k in values]  # '*' matches "" but not a missing field
    assert both.where(S("message", "")) == ["empty"]
    assert both.where(S("message", "école 東", QMARK)) == ["uni"]  # '?' is one character, not one byte
    assert both.where(S("message", "first", QMARK, "second")) == ["nl"]
    assert both.where(S("message", "first", STAR)) == ["nl"]  # '*' crosses newlines


def test_dotted_path_flattens_lists_at_every_level_and_ignores_null_and_empty(tmp_path: Path) -> None:
    docs = {
        "list_of_objects": ct(at=1, a=[{"b": "x"}, {"b": "y"}]),
        "nested_leaf_list": ct(at=2, a={"b": ["z", ["y", [["deep"]]]]}),
        "list_in_list": ct(at=3, a=[[{"b": "y"}], {"c": 1}]),
        "object_value": ct(at=4, a={"b": {"c": "y"}}),
        "null": ct(at=5, a={"b": None}),
        "empty_object": ct(at=6, a={"b": {}}),
        "empty_list": ct(at=7, a=[], c=[[]]),
        "dotted_key": ct(at=8, **{"a.b": "y"}),  # a key with a dot is not the path a.b
        "scalar_a": ct(at=9, a="y"),
        "nulls_in_list": ct(at=10, a=[None, {"b": [None, "w"]}]),
    }
    both = Both(tmp_path, docs)
    assert both.where(S("a.b", "y")) == ["list_of_objects", "nested_leaf_list", "list_in_list"]
    assert both.where(S("a.b", "deep")) == ["nested_leaf_list"]
    assert both.where(S("a.b", "w")) == ["nulls_in_list"]
    assert both.where(ir.Exists("a.b")) == [
        "list_of_objects",
        "nested_leaf_list",
        "list_in_list",
        "object_value",  # an object is a value (Exists) but never matched by a string
        "nulls_in_list",
    ]
    assert both.where(S("a.b", STAR)) == ["list_of_objects", "nested_leaf_list", "list_in_list", "nulls_in_list"]
    assert both.where(S("a.b.c", "y")) == ["object_value"]
    assert both.where(ir.Exists("c")) == []  # a list of empty lists has no value
    assert both.where(ir.Exists("a")) == [  # an object is a value only with a scalar below it
        *("list_of_objects", "nested_leaf_list", "list_in_list", "object_value"),
        *("scalar_a", "nulls_in_list"),
    ]


def test_whole_payload_search_reads_every_scalar_below_the_path(tmp_path: Path) -> None:
    """``a.**``: the scalars below ``a`` at any depth, through objects and lists — and ``a`` itself
    when it is a scalar; objects, nulls and what lies beside ``a`` are not values of it."""
    docs = {
        "nested_object": ct(at=1, a={"b": {"c": "needle"}}),
        "scalar_base": ct(at=2, a="needle"),
        "lists_below": ct(at=3, a={"b": ["x", {"c": ["needle"]}]}),
        "list_base": ct(at=4, a=[{"b": "x"}, ["needle"]]),
        "beside": ct(at=5, a={"b": "x"}, z="needle"),
        "key_not_value": ct(at=6, a={"needle": "x"}),
        "hollow": ct(at=7, a={"b": {}, "c": None}),
        "list_on_the_way": ct(at=8, p=[{"a": {"b": "needle"}}]),
    }
    both = Both(tmp_path, docs)
    assert both.where(S("a.**", STAR, "needle", STAR)) == ["nested_object", "scalar_base", "lists_below", "list_base"]
    assert both.where(S("p.a.**", "needle")) == ["list_on_the_way"]
    assert both.where(ir.Exists("a.**")) == [
        *("nested_object", "scalar_base", "lists_below", "list_base", "beside", "key_not_value"),
    ]


def test_not_over_a_missing_field_is_true(tmp_path: Path) -> None:
    docs = {"has": ct(at=1, user={"name": "root"}), "other": ct(at=2, user={"name": "bob"}), "missing": ct(at=3)}
    both = Both(tmp_path, docs)
    assert both.where(ir.Not(S("user.name", "root"))) == ["other", "missing"]
    assert both.where(ir.Not(ir.Exists("user.name"))) == ["missing"]
    assert both.where(ir.And((S("event.action", "other"), ir.Not(S("user.name", "r", STAR))))) == ["other", "missing"]


def test_numbers_compare_ints_floats_and_decimal_strings_and_have_a_text_form(tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "int": 42,
        "str": "42",
        "zeros": "042",
        "neg": "-5",
        "float": 41.5,
        "big": 10**15,
        "bool": True,
        "spaced": " 42",
        "exp": "4.2e1",
        "toolong": "1" * 19,
        "list": [1, "50"],
        "huge_float": 1e20,
    }
    docs = {k: ct(at=i, n=v) for i, (k, v) in enumerate(values.items())}
    both = Both(tmp_path, docs)
    assert both.where(ir.Num("n", "eq", 42)) == ["int", "str", "zeros"]
    assert both.where(ir.Num("n", "gt", 41)) == ["int", "str", "zeros", "float", "big", "list", "huge_float"]
    assert both.where(ir.Num("n", "lt", 0)) == ["neg"]
    assert both.where(ir.Num("n", "lte", 41.5)) == ["neg", "float", "list"]
    assert both.where(ir.Num("n", "gte", 10**15)) == ["big", "huge_float"]
    assert both.where(S("n", "42")) == ["int", "str"]  # text form of an int is its decimal
    assert both.where(S("n", "41.5")) == ["float"]
    assert both.where(S("n", "TRUE")) == ["bool"]  # booleans are true/false, compared case-insensitively
    assert both.where(S("n", "1000000000000000")) == ["big"]
    assert both.where(S("n", "1e+20")) == ["huge_float"]  # a float's text form is Python's repr


def test_regex_is_a_search_with_flags_i_m_s(tmp_path: Path) -> None:
    docs = {"two_lines": ct(at=1, message="Error: disk\nline2 FULL"), "one": ct(at=2, message="no error here")}
    both = Both(tmp_path, docs)
    assert both.where(ir.Regex("message", "error")) == ["one"]
    assert both.where(ir.Regex("message", "error", "i")) == ["two_lines", "one"]
    assert both.where(ir.Regex("message", "^line2")) == []
    assert both.where(ir.Regex("message", "^line2", "m")) == ["two_lines"]
    assert both.where(ir.Regex("message", "disk.line2")) == []
    assert both.where(ir.Regex("message", "disk.line2", "s")) == ["two_lines"]
    assert both.where(ir.Regex("message", "d[a-z]+k")) == ["two_lines"]


def test_cidr_on_ipv4_and_ipv6_strings(tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "v4": "10.1.2.3",
        "v4_edge": "10.255.255.255",
        "outside": "11.0.0.0",
        "leading_zero": "010.1.2.3",
        "octet_256": "10.1.2.256",
        "space": "10.1.2.3 ",
        "number": 167838211,
        "v6": "2001:db8::1",
        "v6_long": "2001:DB8:0:0:0:0:0:2",
        "v6_other": "2001:db9::1",
        "mapped": "::ffff:10.1.2.3",
        "scoped": "fe80::1%eth0",
        "bad_v6": "2001:db8::1::2",
        "list": ["192.0.2.1", "10.9.9.9"],
    }
    docs = {k: ct(at=i, source={"ip": v}) for i, (k, v) in enumerate(values.items())}
    both = Both(tmp_path, docs)
    assert both.where(ir.Cidr("source.ip", "10.0.0.0/8")) == ["v4", "v4_edge", "list"]
    assert both.where(ir.Cidr("source.ip", "10.1.2.3/32")) == ["v4"]
    assert both.where(ir.Cidr("source.ip", "0.0.0.0/0")) == ["v4", "v4_edge", "outside", "list"]
    assert both.where(ir.Cidr("source.ip", "2001:db8::/32")) == ["v6", "v6_long"]
    assert both.where(ir.Cidr("source.ip", "::ffff:0:0/96")) == ["mapped"]  # an IPv6 address, not 10/8
    assert both.where(ir.Cidr("source.ip", "fe80::/10")) == ["scoped"]
    assert both.where(ir.Cidr("source.ip", "::/0")) == ["v6", "v6_long", "v6_other", "mapped", "scoped"]


_IP_CHARS = "0123456789abcdefABCDEF:.%/ "
_HEXTET = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=5)
_IP_TEXT = st.one_of(
    st.text(alphabet=_IP_CHARS, max_size=45),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.tuples(st.ip_addresses(v=6), st.sampled_from(["%eth0", "%1", "%", "%a%b", "%a/b"])).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    st.tuples(st.ip_addresses(v=6), st.ip_addresses(v=4)).map(lambda t: f"{str(t[0]).rsplit(':', 1)[0]}:{t[1]}"),
    st.tuples(st.lists(_HEXTET, max_size=8), st.lists(_HEXTET, max_size=8)).map(
        lambda t: f"{':'.join(t[0])}::{':'.join(t[1])}"
    ),
)
_IP_DB: list[Any] = []


@settings(deadline=None, max_examples=60)
@example(["1::2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::", "010.1.2.3", "1:2:3:4:5:6:1.2.3.4", "fe80::1%", "::1.2.3.04"])
@given(st.lists(_IP_TEXT, min_size=1, max_size=40))
def test_sql_ip_parsing_accepts_exactly_what_python_ipaddress_accepts(texts: list[str]) -> None:
    if not _IP_DB:
        db = duckdb.connect()
        db.execute(_MACROS)
        _IP_DB.append(db)
    rows = _IP_DB[0].execute("SELECT s, siem_ip4(s), siem_ip6(s) FROM unnest($t) AS u(s)", {"t": texts}).fetchall()
    for text, got4, got6 in rows:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        want4 = int(address) if isinstance(address, ipaddress.IPv4Address) else None
        want6 = f"{int(address):032x}" if isinstance(address, ipaddress.IPv6Address) else None
        assert (got4, got6) == (want4, want6), text


def test_fieldref_equal_prefix_suffix_case_insensitive_over_lists(tmp_path: Path) -> None:
    docs = {
        "same": ct(at=1, user={"name": "Alice", "target": {"name": "alice"}}),
        "differ": ct(at=2, user={"name": "alice", "target": {"name": "bob"}}),
        "list": ct(at=3, user={"name": ["x", "BOB"], "target": {"name": ["bob", "y"]}}),
        "prefix": ct(at=4, user={"name": "admin-alice", "target": {"name": "ADMIN"}}),
        "missing": ct(at=5, user={"name": "alice"}),
    }
    both = Both(tmp_path, docs)
    assert both.where(ir.FieldRef("user.name", "user.target.name")) == ["same", "list"]
    assert both.where(ir.FieldRef("user.name", "user.target.name", "startswith")) == ["same", "list", "prefix"]
    assert both.where(ir.FieldRef("user.name", "user.target.name", "endswith")) == ["same", "list"]
    assert both.where(ir.Not(ir.FieldRef("user.name", "user.target.name"))) == ["differ", "prefix", "missing"]


def test_keyword_search_reads_the_message_field(tmp_path: Path) -> None:
    docs = {
        "hit": ct(at=1, message="Failed password for root"),
        "elsewhere": ct(at=2, user={"name": "Failed password"}),
    }
    both = Both(tmp_path, docs)
    assert both.where(ir.Keyword((STAR, "failed password", STAR)).as_fields()) == ["hit"]


def test_user_values_are_bound_parameters_never_sql_text(tmp_path: Path) -> None:
    evil = "x'); DROP TABLE events; --"
    both = Both(tmp_path, {"evil": ct(evil, 1), "plain": ct("x", 2)})
    r = rule(ir.And((S("event.action", evil), ir.Regex("event.action", evil.replace("(", "\\(").replace(")", "\\)")))))
    sql, params = both.duck.sql(r, Scope())
    assert "DROP" not in sql and "event.action" not in sql and "action" not in sql
    assert any(isinstance(v, str) and evil.lower() in v for v in params.values())  # bound, not spliced
    assert both.ids(r) == ["evil"]
    assert both.store.count(EventQuery()) == 2  # the table is still there
    with pytest.raises(ValueError, match="field path"):
        both.duck.sql(rule(S('a"]).b', "x")), Scope())


def test_randomized_documents_agree_with_the_reference(tmp_path: Path) -> None:
    """Random nested documents (lists at any level, nulls, numbers as strings, unicode) and
    random conditions: the engine must select exactly what the offline evaluator selects."""
    rnd = random.Random(20260301)
    words = ["a", "B", "ab", "é", "x_y", "50%", "a\\b", "10.0.0.1", "2001:db8::5", "7", "-3", "07", "", "ÅB"]

    def value(depth: int) -> Any:
        kind = rnd.random()
        if depth < 3 and kind < 0.2:
            return [value(depth + 1) for _ in range(rnd.randint(0, 3))]
        if depth < 3 and kind < 0.35:
            return {k: value(depth + 1) for k in rnd.sample(["b", "c", "d"], rnd.randint(0, 2))}
        return rnd.choice([*words, None, 7, -3, 1.5, True, False, {}])

    docs = {}
    for i in range(120):
        doc = ct(rnd.choice(["A", "b"]), at=rnd.randint(0, 50))
        for key in rnd.sample(["a", "b", "c"], rnd.randint(0, 3)):
            doc[key] = value(0)
        docs[f"d{i:03d}"] = doc
    both = Both(tmp_path, docs)
    paths = ["a", "a.b", "a.c", "a.b.c", "b", "b.d", "c.c.d", "a.b.d"]

    def leaf() -> ir.Node:
        path = rnd.choice(paths)
        pick = rnd.randrange(8)
        if pick == 0:
            return ir.Exists(path)
        if pick == 1:
            return ir.Num(path, rnd.choice(["eq", "lt", "lte", "gt", "gte"]), rnd.choice([7, -3, 0, 1.5]))
        if pick == 2:
            return ir.Regex(path, rnd.choice(["^a", "b$", "[0-9]", "é", "%"]), rnd.choice(["", "i"]))
        if pick == 3:
            return ir.Cidr(path, rnd.choice(["10.0.0.0/8", "2001:db8::/32"]))
        if pick == 4:
            return ir.FieldRef(path, rnd.choice(paths), rnd.choice(["eq", "startswith", "endswith"]))
        word = rnd.choice(words)
        parts: list[ir.Part] = [word] if word else []
        if rnd.random() < 0.5:
            parts.insert(rnd.randrange(len(parts) + 1), rnd.choice([STAR, QMARK]))
        return ir.Str(path, tuple(parts), cased=rnd.random() < 0.2)

    checked = 0
    for _ in range(60):
        node = leaf()
        if rnd.random() < 0.5:
            node = rnd.choice([ir.And, ir.Or])((node, leaf()))
        if rnd.random() < 0.3:
            node = ir.Not(node)
        both.where(node)  # asserts DuckDB == reference
        checked += 1
    assert checked == 60


# -- batches: select_many, dataset pruning ------------------------------------------------------------


def named(rule_id: str, condition: ir.Node) -> Rule:
    return dataclasses.replace(rule(condition), id=rule_id, name=rule_id)


def batch_docs() -> dict[str, dict[str, Any]]:
    def doc(dataset: str, at: float, action: str, **extra: Any) -> dict[str, Any]:
        out = ct(action, at, **extra)
        out["event"]["dataset"] = dataset
        return out

    return {
        "ct1": doc("aws.cloudtrail", 3, "DeleteTrail", source={"ip": "10.1.2.3"}, user={"name": "alice"}),
        "ct2": doc("AWS.CloudTrail", 1, "deletebucket", user={"name": "bob"}),  # the dataset in another case
        "ct3": doc("aws.cloudtrail", 1, "GetObject", source={"ip": "192.0.2.1"}),  # same instant as ct2: id order
        "vpc1": doc("aws.vpcflow", 2, "accept", source={"ip": "10.9.9.9"}, user={"name": "alice"}),
        "vpc2": doc("aws.vpcflow", 5, "reject", source={"ip": "203.0.113.7"}),
        "k8s1": doc("kubernetes.audit", 4, "create", user={"name": "Alice"}),
        "k8s2": doc("kubernetes.audit", 6, "exec", source={"ip": "10.0.0.1"}),
        "nots": ct("DeleteTrail", 7, source={"ip": "10.0.0.2"}, event={"action": "x"}),  # no event.dataset
    }


def batch_rules() -> list[Rule]:
    ds = "event.dataset"
    return [
        named("deletes", ir.And((S(ds, "aws.cloudtrail"), S("event.action", "delete", STAR)))),
        named("cased", ir.And((S(ds, "aws.cloudtrail", cased=True), S("event.action", "delete", STAR)))),
        named("private-flows", ir.And((S(ds, "aws.vpcflow"), ir.Cidr("source.ip", "10.0.0.0/8")))),
        named("alice-anywhere", S("user.name", "alice")),  # no dataset: the scan cannot be pruned
        named("not-cloudtrail", ir.And((ir.Not(S(ds, "aws.cloudtrail")), ir.Exists("source.ip")))),
        named("nothing", ir.And((S(ds, "kubernetes.audit"), S("event.action", "never")))),
        named("absent-dataset", ir.And((S(ds, "gcp.audit"), ir.Exists("event.action")))),
        named("wild-dataset", ir.And((S(ds, "aws.", STAR), S("event.action", "reject")))),
        named(
            "either",
            ir.Or((ir.And((S(ds, "kubernetes.audit"), S("event.action", "exec"))), ir.And((S(ds, "aws.vpcflow"),)))),
        ),
    ]


@pytest.mark.parametrize(
    "scope",
    [Scope(), Scope(timestamp=(ts(1), ts(5))), Scope(ingested=("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"))],
)
def test_select_many_equals_select_per_rule_and_the_reference(tmp_path: Path, scope: Scope) -> None:
    both = Both(tmp_path, batch_docs())
    rules = batch_rules()
    expected = {r.id: both.ids(r, scope) for r in rules}  # select == reference, rule by rule
    for batch in (rules, [r for r in rules if r.id != "alice-anywhere"], rules[:1], rules[5:7], []):
        got = both.duck.select_many(batch, scope)
        assert list(got) == [r.id for r in batch]
        assert {k: [i for i, _ in v] for k, v in got.items()} == {r.id: expected[r.id] for r in batch}
        for r in batch:
            assert got[r.id] == list(both.duck.select(r, scope))  # the documents too
    if scope == Scope():
        assert expected == {
            "deletes": ["ct2", "ct1"],
            "cased": ["ct1"],
            "private-flows": ["vpc1"],
            "alice-anywhere": ["vpc1", "ct1", "k8s1"],
            "not-cloudtrail": ["vpc1", "vpc2", "k8s2", "nots"],
            "nothing": [],
            "absent-dataset": [],
            "wild-dataset": ["vpc2"],
            "either": ["vpc1", "vpc2", "k8s2"],
        }


def test_dataset_conditions_prune_the_scan_on_the_dataset_column(tmp_path: Path) -> None:
    both = Both(tmp_path, batch_docs())
    by_id = {r.id: r for r in batch_rules()}
    sql, params = both.duck.sql(by_id["deletes"], Scope())
    assert "lower(dataset) IN ($" in sql and "aws.cloudtrail" in params.values()
    sql, params = both.duck.sql(by_id["either"], Scope())
    assert "lower(dataset) IN ($" in sql and {"aws.vpcflow", "kubernetes.audit"} <= {
        v for v in params.values() if isinstance(v, str)
    }
    for unpinned in ("alice-anywhere", "not-cloudtrail", "wild-dataset"):
        assert "lower(dataset)" not in both.duck.sql(by_id[unpinned], Scope())[0]
    # the rows the scan keeps: the union of the batch's datasets, or all when one rule has none
    pinned = [by_id["deletes"], by_id["private-flows"]]
    sql, params, _ = both.duck._select_many(pinned, Scope())
    assert "lower(dataset) IN ($" in sql.split("AS x FROM events")[1].split(")),")[0]
    sql, params, _ = both.duck._select_many([*pinned, by_id["alice-anywhere"]], Scope())
    assert "lower(dataset) IN" not in sql.split("AS x FROM events")[1].split(")),")[0]


def test_a_bad_rule_fails_the_batch_and_the_runner_falls_back_to_one_query_per_rule(tmp_path: Path) -> None:
    from siem.detect.runner import Runner
    from siem.detect.state import open_state

    both = Both(tmp_path, batch_docs())
    good = batch_rules()[:3]
    bad_path = named("bad-path", S('a"]).b', "x"))
    bad_regex = named(
        "bad-regex", ir.And((S("event.dataset", "aws.cloudtrail"), ir.Regex("event.action", "(unclosed")))
    )
    with pytest.raises(ValueError, match="field path"):
        both.duck.select_many([*good, bad_path], Scope())
    with pytest.raises(duckdb.Error):
        both.duck.select_many([*good, bad_regex], Scope())
    report = Runner(both.duck, open_state(both.store)).run_cycle(
        [*good, bad_regex], since="2026-03-01T00:00:00Z", until="2026-03-02T00:00:00Z"
    )
    runs = {run.rule.id: run for run in report.runs}
    assert {k: (runs[k].matches, runs[k].error is None) for k in runs} == {
        "deletes": (2, True),
        "cased": (1, True),
        "private-flows": (1, True),
        "bad-regex": (0, False),
    }


# -- scope, fetch, the store's ingested column ----------------------------------------------------


def test_scope_by_ingested_and_by_timestamp_is_half_open(tmp_path: Path) -> None:
    def at(seconds: float, ingested: str) -> dict[str, Any]:
        doc = ct("Hit", seconds)
        doc["event"]["ingested"] = ingested
        return doc

    docs = {
        "early": at(0, "2026-03-02T00:00:00Z"),
        "mid": at(10, "2026-03-02T00:05:00.000001Z"),
        "end": at(20, "2026-03-02T00:10:00Z"),
        "no_ingested": ct("Hit", 15),
    }
    del docs["no_ingested"]["event"]["ingested"]
    both = Both(tmp_path, docs)
    r = rule(S("event.action", "hit"))
    assert both.ids(r, Scope(ingested=("2026-03-02T00:00:00Z", "2026-03-02T00:10:00Z"))) == ["early", "mid"]
    assert both.ids(r, Scope(ingested=("2026-03-02T00:00:00.000001Z", "2026-03-02T00:10:00.000001Z"))) == [
        "mid",
        "end",
    ]
    assert both.ids(r, Scope(timestamp=(ts(10), ts(20)))) == ["mid", "no_ingested"]
    assert both.ids(r, Scope(timestamp=(ts(0), ts(20)), ingested=("2026-03-02T00:05:00Z", "2026-03-03T00:00:00Z"))) == [
        "mid"
    ]


def test_fetch_returns_documents_by_id(tmp_path: Path) -> None:
    docs = {"a": ct("A", 1, message="é"), "b": ct("B", 2)}
    both = Both(tmp_path, docs)
    assert both.duck.fetch(["a", "missing"]) == {"a": docs["a"]}
    assert both.duck.fetch([]) == {}


def test_an_old_store_gains_a_backfilled_ingested_column(tmp_path: Path) -> None:
    path = tmp_path / "old"
    path.mkdir()
    db = duckdb.connect(str(path / "events.duckdb"))
    db.execute(
        "CREATE TABLE events (id VARCHAR, ts TIMESTAMPTZ, dataset VARCHAR, source_ip VARCHAR, user_name VARCHAR,"
        " related_ip VARCHAR[], related_user VARCHAR[], doc JSON)"
    )
    db.execute(
        "INSERT INTO events VALUES ('old', '2026-03-01T12:00:00Z', 'aws.cloudtrail', NULL, NULL, NULL, NULL, $d)",
        {"d": '{"@timestamp":"2026-03-01T12:00:00Z","event":{"action":"Hit","ingested":"2026-03-02T01:02:03Z"}}'},
    )
    db.close()
    store = EmbeddedStore(path)
    assert store.db.execute("SELECT epoch_us(ingested) FROM events").fetchall() == [(1772413323000000,)]
    store.write([Event("new", "aws.cloudtrail", ct("Hit", 1))])  # writes into the migrated table
    engine = DuckDBEngine(store)
    window = Scope(ingested=("2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"))
    assert [i for i, _ in engine.select(rule(S("event.action", "hit")), window)] == ["old"]
    store.close()
    assert EmbeddedStore(path).db.execute("SELECT count(*) FROM events WHERE ingested IS NULL").fetchone() == (0,)


# -- correlations ---------------------------------------------------------------------------------


def corr(kind: str, rules: tuple[Rule, ...], seconds: int, op: str, count: int, **kw: Any) -> Rule:
    c = Correlation(kind, rules, tuple(kw.pop("group_by", ())), timedelta(seconds=seconds), op, count, **kw)
    return rule(ir.any_of([r.condition for r in rules]), c)


LOGIN = rule(S("event.action", "ConsoleLogin"))
FAIL = rule(S("event.action", "Fail"))
ROLE = rule(S("event.action", "AssumeRole"))


def test_burst_straddling_a_minute_boundary_fires(tmp_path: Path) -> None:
    ip = {"source": {"ip": "198.51.100.7"}}
    docs = {"a": ct("ConsoleLogin", 40, **ip), "b": ct("ConsoleLogin", 50, **ip), "c": ct("ConsoleLogin", 70, **ip)}
    both = Both(tmp_path, docs)
    r = corr("event_count", (LOGIN,), 60, "gte", 3, group_by=["source.ip"])
    assert both.windows(r) == [(("198.51.100.7",), "a", ["a", "b", "c"], 3)]


def test_events_exactly_a_timespan_apart_do_not_share_a_window(tmp_path: Path) -> None:
    docs = {"a": ct("ConsoleLogin", 0), "b": ct("ConsoleLogin", 60), "c": ct("ConsoleLogin", 119.999999)}
    both = Both(tmp_path, docs)
    r = corr("event_count", (LOGIN,), 60, "gte", 2)
    assert both.windows(r) == [((), "b", ["b", "c"], 2)]  # a..b is exactly 60 s: not together


def test_ties_at_equal_timestamps_are_all_in_each_window_and_anchors_ordered_by_id(tmp_path: Path) -> None:
    docs = {"c": ct("ConsoleLogin", 5), "a": ct("ConsoleLogin", 5), "b": ct("ConsoleLogin", 5)}
    both = Both(tmp_path, docs)
    r = corr("event_count", (LOGIN,), 10, "eq", 3)
    assert both.windows(r) == [((), x, ["a", "b", "c"], 3) for x in ("a", "b", "c")]


def test_value_count_counts_distinct_case_sensitive_values_per_group(tmp_path: Path) -> None:
    def login(at: float, ip: str, *users: str) -> dict[str, Any]:
        return ct("ConsoleLogin", at, source={"ip": ip}, user={"name": list(users) if len(users) > 1 else users[0]})

    docs = {
        "a1": login(0, "1.1.1.1", "bob"),
        "a2": login(10, "1.1.1.1", "Bob"),
        "a3": login(20, "1.1.1.1", "bob"),
        "a4": login(30, "1.1.1.1", "carol", "dave"),
        "b1": login(0, "2.2.2.2", "bob"),
        "b2": login(5, "2.2.2.2", "bob"),
        "b3": ct("ConsoleLogin", 6, source={"ip": "2.2.2.2"}),  # no user: a member with no value
    }
    both = Both(tmp_path, docs)
    r = corr("value_count", (LOGIN,), 60, "gte", 3, group_by=["source.ip"], value_field="user.name")
    assert both.windows(r) == [
        (("1.1.1.1",), "a1", ["a1", "a2", "a3", "a4"], 4),
        (("1.1.1.1",), "a2", ["a2", "a3", "a4"], 4),
        (("1.1.1.1",), "a3", ["a3", "a4"], 3),
    ]
    none = corr("value_count", (LOGIN,), 60, "lt", 1, group_by=["source.ip"], value_field="user.name")
    assert both.windows(none) == [(("2.2.2.2",), "b3", ["b3"], 0)]  # a member without the field anchors too


def test_temporal_needs_every_rule_inside_the_window(tmp_path: Path) -> None:
    docs = {"f": ct("Fail", 0), "l": ct("ConsoleLogin", 30), "r": ct("AssumeRole", 61)}
    both = Both(tmp_path, docs)
    assert both.windows(corr("temporal", (FAIL, LOGIN), 60, "gte", 2)) == [((), "f", ["f", "l"], 2)]
    assert both.windows(corr("temporal", (FAIL, LOGIN, ROLE), 60, "gte", 3)) == []
    assert both.windows(corr("temporal", (FAIL, LOGIN, ROLE), 60, "gte", 2)) == [
        ((), "f", ["f", "l"], 2),
        ((), "l", ["l", "r"], 2),
    ]


def test_temporal_ordered_enforces_the_order_and_breaks_time_ties_by_id(tmp_path: Path) -> None:
    docs = {
        "1fail": ct("Fail", 0),
        "2login": ct("ConsoleLogin", 10),
        "3role": ct("AssumeRole", 20),
        # the reverse order, later
        "4role": ct("AssumeRole", 200),
        "5login": ct("ConsoleLogin", 210),
        "6fail": ct("Fail", 220),
        # same instant: order is by id
        "a_fail": ct("Fail", 400),
        "b_login": ct("ConsoleLogin", 400),
        "c_role": ct("AssumeRole", 400),
        "z_fail": ct("Fail", 600),
        "y_login": ct("ConsoleLogin", 600),
        "x_role": ct("AssumeRole", 600),
    }
    both = Both(tmp_path, docs)
    ordered = corr("temporal_ordered", (FAIL, LOGIN, ROLE), 60, "gte", 3)
    assert both.windows(ordered) == [
        ((), "1fail", ["1fail", "2login", "3role"], 3),
        ((), "a_fail", ["a_fail", "b_login", "c_role"], 3),
    ]
    partial = corr("temporal_ordered", (FAIL, LOGIN, ROLE), 60, "eq", 2)
    assert [(w[1], w[3]) for w in both.windows(partial)] == []  # every Fail either completes or stops at 1
    first_only = corr("temporal_ordered", (FAIL, LOGIN, ROLE), 60, "eq", 1)
    assert [(w[1], w[3]) for w in both.windows(first_only)] == [("6fail", 1), ("z_fail", 1)]


def test_temporal_ordered_needs_the_next_rule_strictly_after_even_on_one_event(tmp_path: Path) -> None:
    docs = {
        "solo": ct("Fail", 0, message="x"),  # matches both rules alone: not an ordered pair
        "p1": ct("Fail", 100),
        "p2": ct("Fail", 100, message="x"),  # same instant, later id: strictly after p1
    }
    both = Both(tmp_path, docs)
    has_x = rule(S("message", "x"))
    assert both.windows(corr("temporal_ordered", (FAIL, has_x), 60, "gte", 2)) == [((), "p1", ["p1", "p2"], 2)]


def test_multi_valued_group_by_puts_an_event_in_every_combination(tmp_path: Path) -> None:
    docs = {
        "a": ct("ConsoleLogin", 0, related={"ip": ["10.0.0.1", "10.0.0.2"], "user": ["u1", "u2"]}),
        "b": ct("ConsoleLogin", 1, related={"ip": ["10.0.0.2"], "user": ["u2"]}),
        "c": ct("ConsoleLogin", 2, related={"ip": ["10.0.0.2"]}),  # no user: in no group
    }
    both = Both(tmp_path, docs)
    r = corr("event_count", (LOGIN,), 60, "gte", 1, group_by=["related.ip", "related.user"])
    assert both.windows(r) == [
        (("10.0.0.1", "u1"), "a", ["a"], 1),
        (("10.0.0.1", "u2"), "a", ["a"], 1),
        (("10.0.0.2", "u1"), "a", ["a"], 1),
        (("10.0.0.2", "u2"), "a", ["a", "b"], 2),
        (("10.0.0.2", "u2"), "b", ["b"], 1),
    ]


def test_correlation_from_a_yaml_file_and_scoped_by_timestamp(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text(
        "title: login\nid: 6b3a1f4e-0000-4000-8000-000000000002\nname: login\n"
        "logsource: {product: aws, service: cloudtrail}\n"
        "detection:\n  sel:\n    event.action: ConsoleLogin\n  condition: sel\n"
        "---\n"
        "title: many logins\nid: 6b3a1f4e-0000-4000-8000-000000000003\n"
        "correlation:\n  type: event_count\n  rules: [login]\n  group-by: [source.ip]\n"
        "  timespan: 1m\n  condition: {gte: 2}\n",
        encoding="utf-8",
    )
    (r,) = load_file(tmp_path / "c.yml")
    ip = {"source": {"ip": "203.0.113.9"}}
    docs = {"a": ct("ConsoleLogin", 0, **ip), "b": ct("consolelogin", 30, **ip), "c": ct("ConsoleLogin", 45, **ip)}
    both = Both(tmp_path, docs)
    assert both.windows(r) == [(("203.0.113.9",), "a", ["a", "b", "c"], 3), (("203.0.113.9",), "b", ["b", "c"], 2)]
    assert both.windows(r, Scope(timestamp=(ts(1), ts(60)))) == [(("203.0.113.9",), "b", ["b", "c"], 2)]


# -- speed (printed, not asserted) ----------------------------------------------------------------


def test_speed_of_one_rule_over_200k_events_is_printed(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.db.execute(
        """INSERT INTO events BY NAME
        SELECT 'id' || lpad(i::VARCHAR, 7, '0') AS id, TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_microseconds(i) AS ts,
          'aws.cloudtrail' AS dataset,
          json_object('@timestamp', strftime(TIMESTAMP '2026-03-01' + to_microseconds(i), '%Y-%m-%dT%H:%M:%S.%fZ'),
            'event', json_object('dataset', 'aws.cloudtrail',
              'action', ['GetObject', 'PutObject', 'DeleteTrail'][i % 3 + 1],
              'outcome', 'success', 'ingested', '2026-03-02T00:00:00Z'),
            'source', json_object('ip', '10.0.' || (i % 250) || '.' || (i % 200)),
            'user', json_object('name', 'user' || (i % 500)),
            'related', json_object('ip', ['10.0.' || (i % 250) || '.' || (i % 200), '192.0.2.1']),
            'aws', json_object('cloudtrail', json_object(
              'request_parameters', json_object('bucketName', 'b', 'key', 'k/' || i),
              'resources', [json_object('arn', 'arn:aws:s3:::b/k/' || i)]))) AS doc
        FROM range(200000) t(i)"""
    )
    engine = DuckDBEngine(store)
    r = rule(ir.And((S("event.dataset", "aws.cloudtrail"), S("event.action", "delete", STAR))))
    started = time.perf_counter()
    hits = sum(1 for _ in engine.select(r, Scope()))
    seconds = time.perf_counter() - started
    inner = rule(S("aws.cloudtrail.resources.arn", STAR, "/k/1999", STAR))
    started = time.perf_counter()
    inner_hits = sum(1 for _ in engine.select(inner, Scope()))
    inner_seconds = time.perf_counter() - started
    print(
        f"\nDuckDB engine: 200000 events, {hits} hits in {seconds:.2f}s = {200000 / seconds:,.0f} events/s;"
        f" list at an inner step (json_tree path): {inner_hits} hits in {inner_seconds:.2f}s"
        f" = {200000 / inner_seconds:,.0f} events/s"
    )
    assert hits == 66666  # i % 3 == 2 for i in range(200000)
    assert inner_hits == 111  # k/1999, k/19990..19999, k/199900..199999
