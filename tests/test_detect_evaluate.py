"""Hand-written tests of the reference evaluator (``siem.detect.evaluate``) and the reference window
computation (``siem.detect.windows``).

Every expected value here was written by hand from the semantics in ``siem/detect/ir.py`` and
``docs/detection.md`` — none is computed by the code under test — because the differential tests
take these two modules as the oracle for the DuckDB and OpenSearch engines.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from siem.detect import ir
from siem.detect.evaluate import matches, values
from siem.detect.rules import Correlation, Rule
from siem.detect.windows import Member, group_keys, members_of, satisfying

S, Q = ir.STAR, ir.QMARK


def Str(field: str, *parts: ir.Part, cased: bool = False) -> ir.Str:
    return ir.Str(field, tuple(parts), cased)


# ---------------------------------------------------------------------------------------------
# Str: wildcards, literal metacharacters, case


@pytest.mark.parametrize(
    ("parts", "text", "expected"),
    [
        # * is any run, also none
        (("adm", S), "adm", True),
        (("adm", S), "administrator", True),
        ((S, "adm"), "xadm", True),
        ((S, "adm", S), "adm", True),
        ((S,), "", True),
        (("a", S, "b"), "ab", True),
        (("a", S, "b"), "a\nb", True),  # * crosses newlines
        (("a", S, "b"), "abc", False),  # the whole value must match, not a substring
        (("adm",), "xadmx", False),
        # ? is exactly one character
        (("a", Q, "c"), "abc", True),
        (("a", Q, "c"), "ac", False),
        (("a", Q, "c"), "abbc", False),
        (("a", Q, "c"), "aéc", True),  # one character, not one byte
        (("a", Q, "c"), "a\nc", True),
        ((Q,), "", False),
        ((Q, Q), "xy", True),
        # literal text is literal: regex and SQL LIKE metacharacters mean themselves
        (("a.c",), "abc", False),
        (("a.c",), "a.c", True),
        (("a_c",), "abc", False),
        (("a_c",), "a_c", True),
        (("100%",), "1000", False),
        (("100%",), "100%", True),
        (("a*b",), "axxb", False),  # a '*' inside a literal chunk is a character, not a wildcard
        (("a*b",), "a*b", True),
        (("a?b",), "axb", False),
        (("C:\\Windows\\", S), "C:\\Windows\\system32", True),
        (("C:\\Windows\\", S), "C:Windowssystem32", False),
        (("[x](y)^$+|{1}",), "[x](y)^$+|{1}", True),
        (("[x]",), "x", False),
        (("'q' \"d\"",), "'q' \"d\"", True),
        (("",), "", True),
        (("",), " ", False),
    ],
)
def test_str_wildcards(parts: tuple[ir.Part, ...], text: str, expected: bool) -> None:
    assert matches(ir.Str("f", parts), {"f": text}) is expected


@pytest.mark.parametrize(
    ("node", "text", "expected"),
    [
        (Str("f", "Admin"), "admin", True),
        (Str("f", "Admin"), "ADMIN", True),
        (Str("f", "Admin"), "aDmIn", True),
        (Str("f", "ÉCOLE"), "école", True),  # Unicode case folding too
        (Str("f", "Admin", cased=True), "Admin", True),
        (Str("f", "Admin", cased=True), "admin", False),
        (Str("f", "Admin", cased=True), "ADMIN", False),
        (Str("f", "A", S, "b", cased=True), "AxxB", False),
        (Str("f", "A", S, "b", cased=True), "AXXb", True),
    ],
)
def test_str_case(node: ir.Str, text: str, expected: bool) -> None:
    assert matches(node, {"f": text}) is expected


# ---------------------------------------------------------------------------------------------
# values: arrays at several levels, null, missing, empty objects


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"a": {"b": {"c": "hit"}}}, True),
        ({"a": {"b": {"c": ["x", "hit"]}}}, True),  # the matching value last
        ({"a": {"b": {"c": ["hit", "x"]}}}, True),  # first
        ({"a": {"b": {"c": ["x", "y"]}}}, False),  # absent
        ({"a": {"b": {"c": [["x", ["hit"]]]}}}, True),  # lists nested in lists are flattened
        ({"a": [{"b": {"c": "x"}}, {"b": {"c": "hit"}}]}, True),  # a list of objects at the top
        ({"a": {"b": [{"c": "x"}, {"c": "hit"}]}}, True),  # ... and in the middle
        ({"a": [[{"b": [{"c": ["hit"]}]}]]}, True),  # at every level at once
        ({"a": {"b": [{"d": "hit"}]}}, False),
        ({"a": {"b": {"c": None}}}, False),
        ({"a": {"b": {"c": [None]}}}, False),
        ({"a": {"b": {}}}, False),
        ({"a": {}}, False),
        ({"a": None}, False),
        ({"a": "abc"}, False),  # a scalar where an object is expected: no value
        ({}, False),
        ({"a.b.c": "hit"}, False),  # a dotted key is not a path
    ],
)
def test_paths_and_arrays(doc: dict[str, Any], expected: bool) -> None:
    assert matches(Str("a.b.c", "hit"), doc) is expected


def test_values_flattens_and_drops_null_and_empty_objects() -> None:
    doc = {"a": [{"b": [1, None, [2, {}]]}, {"b": {"x": 1}}, {"b": None}, {"c": 3}]}
    assert values(doc, "a.b") == [1, 2, {"x": 1}]
    assert values(doc, "a.c") == [3]
    assert values(doc, "a.b.x") == [1]
    assert values(doc, "nope") == []


def test_objects_are_never_matched_by_a_string() -> None:
    assert matches(Str("a", S), {"a": {"b": "x"}}) is False
    assert matches(Str("a", S), {"a": [{"b": "x"}, "y"]}) is True  # the string element matches
    assert matches(ir.Regex("a", ""), {"a": {"b": "x"}}) is False


# ---------------------------------------------------------------------------------------------
# text forms: numbers and booleans as strings


@pytest.mark.parametrize(
    ("node", "value", "expected"),
    [
        (Str("f", "443"), 443, True),  # integers in decimal
        (Str("f", "443"), "443", True),
        (Str("f", "4", S), 404, True),
        (Str("f", "443"), 443.0, False),  # floats as Python repr: "443.0"
        (Str("f", "443.0"), 443.0, True),
        (Str("f", "2.5"), 2.5, True),
        (Str("f", "true"), True, True),  # booleans as true/false
        (Str("f", "True"), True, True),  # ... compared case-insensitively
        (Str("f", "false"), False, True),
        (Str("f", "true"), "TRUE", True),
        (Str("f", "true", cased=True), "TRUE", False),
        (Str("f", "1"), True, False),  # a boolean is not 1
        (Str("f", "0"), False, False),
        (Str("f", "-7"), -7, True),
    ],
)
def test_text_forms(node: ir.Node, value: Any, expected: bool) -> None:
    assert matches(node, {"f": value}) is expected


# ---------------------------------------------------------------------------------------------
# Num: numbers and plain decimal integer strings


@pytest.mark.parametrize(
    ("op", "bound", "value", "expected"),
    [
        ("eq", 7, 7, True),
        ("eq", 7, "7", True),
        ("eq", 7, 7.0, True),
        ("eq", 7, "07", True),  # a plain decimal integer, leading zero and all
        ("eq", 7, "7.0", False),  # not an integer string
        ("eq", 7, " 7", False),
        ("eq", 7, "7x", False),
        ("eq", 7, "+7", False),
        ("eq", 7, True, False),  # booleans are not numbers
        ("eq", 1, True, False),
        ("eq", -3, "-3", True),
        ("gt", 1024, 1025, True),
        ("gt", 1024, 1024, False),
        ("gte", 1024, 1024, True),
        ("lt", 80, 79, True),
        ("lt", 80, "80", False),
        ("lte", 80, "80", True),
        ("gte", 2.5, 2, False),
        ("gte", 2.5, 3, True),
        ("gte", 2.5, 2.5, True),
        ("eq", 1, "1" + "0" * 18, False),  # 19 digits: not a plain decimal integer any more
        ("gt", 0, "9" * 18, True),  # 18 digits still is
    ],
)
def test_num(op: str, bound: float, value: Any, expected: bool) -> None:
    assert matches(ir.Num("f", op, bound), {"f": value}) is expected  # type: ignore[arg-type]


def test_num_any_value_of_a_list() -> None:
    assert matches(ir.Num("f", "gt", 10), {"f": [1, "x", None, "11"]}) is True
    assert matches(ir.Num("f", "gt", 10), {"f": [1, "x", None, "10"]}) is False


# ---------------------------------------------------------------------------------------------
# Regex: search, not full match; flags


@pytest.mark.parametrize(
    ("pattern", "flags", "text", "expected"),
    [
        ("adm", "", "xxadmxx", True),  # searches
        ("^adm$", "", "xadm", False),
        ("ADM", "", "adm", False),  # case-sensitive unless i
        ("ADM", "i", "adm", True),
        ("^root$", "", "user\nroot\nx", False),
        ("^root$", "m", "user\nroot\nx", True),
        ("a.b", "", "a\nb", False),
        ("a.b", "s", "a\nb", True),
        (r"\d{3}", "", "ab404", True),
        ("(ed|ure) for", "", "failure for bob", True),
    ],
)
def test_regex(pattern: str, flags: str, text: str, expected: bool) -> None:
    assert matches(ir.Regex("f", pattern, flags), {"f": text}) is expected


def test_regex_on_text_forms() -> None:
    assert matches(ir.Regex("f", "^4\\d\\d$"), {"f": 404}) is True
    assert matches(ir.Regex("f", "^true$"), {"f": True}) is True
    assert matches(ir.Regex("f", "x"), {"f": None}) is False


# ---------------------------------------------------------------------------------------------
# Cidr


@pytest.mark.parametrize(
    ("network", "value", "expected"),
    [
        ("10.0.0.0/8", "10.0.0.0", True),
        ("10.0.0.0/8", "10.255.255.255", True),
        ("10.0.0.0/8", "11.0.0.0", False),
        ("10.0.0.0/8", "9.255.255.255", False),
        ("192.0.2.1/32", "192.0.2.1", True),
        ("192.0.2.1/32", "192.0.2.2", False),
        ("0.0.0.0/0", "255.255.255.255", True),
        ("0.0.0.0/0", "::1", False),  # an IPv6 address is not in an IPv4 network
        ("10.0.0.0/8", "::ffff:10.0.0.1", False),  # ... not even an IPv4-mapped one
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:DB8::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/8", "not-an-ip", False),  # strings that are not IPs never match
        ("10.0.0.0/8", "10.0.0.1/8", False),
        ("10.0.0.0/8", " 10.0.0.1", False),
        ("10.0.0.0/8", "010.0.0.1", False),
        ("10.0.0.0/8", "", False),
        ("10.0.0.0/8", 167772161, False),  # the integer form of 10.0.0.1 is not an address
    ],
)
def test_cidr(network: str, value: Any, expected: bool) -> None:
    assert matches(ir.Cidr("f", network), {"f": value}) is expected


def test_cidr_any_value_of_a_list() -> None:
    assert matches(ir.Cidr("f", "10.0.0.0/8"), {"f": ["junk", "8.8.8.8", "10.1.1.1"]}) is True


# ---------------------------------------------------------------------------------------------
# Exists


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"f": "x"}, True),
        ({"f": ""}, True),  # an empty string is a value
        ({"f": 0}, True),
        ({"f": False}, True),
        ({"f": {"k": "v"}}, True),
        ({"f": None}, False),
        ({"f": []}, False),
        ({"f": [None]}, False),
        ({"f": [[], [None]]}, False),
        ({"f": {}}, False),
        ({"f": [{}]}, False),
        ({"g": "x"}, False),
    ],
)
def test_exists(doc: dict[str, Any], expected: bool) -> None:
    assert matches(ir.Exists("f"), doc) is expected
    assert matches(ir.Not(ir.Exists("f")), doc) is (not expected)


def test_exists_through_lists_of_objects() -> None:
    assert matches(ir.Exists("a.b"), {"a": [{"c": 1}, {"b": 2}]}) is True
    assert matches(ir.Exists("a.b"), {"a": [{"c": 1}, {"b": None}]}) is False


# ---------------------------------------------------------------------------------------------
# FieldRef


@pytest.mark.parametrize(
    ("mode", "left", "right", "expected"),
    [
        ("eq", "alice", "alice", True),
        ("eq", "Alice", "aLICE", True),  # case-insensitive
        ("eq", "alice", "alic", False),
        ("eq", ["x", "alice"], ["alice", "y"], True),  # some value equals some value
        ("eq", ["x"], ["y"], False),
        ("eq", 443, "443", True),  # text forms
        ("eq", True, "TRUE", True),
        ("eq", "alice", None, False),
        ("eq", None, None, False),  # two missing values are not equal
        ("eq", "", "", True),
        ("startswith", "/admin/x.php", "/ADMIN", True),
        ("startswith", "/admin", "/admin/x.php", False),
        ("startswith", "anything", "", True),  # every text starts with the empty string
        ("endswith", "/usr/bin/Bash", "bash", True),
        ("endswith", "/usr/bin/bash", "/usr", False),
        ("endswith", ["a", "b/c"], ["x", "C"], True),
    ],
)
def test_fieldref(mode: str, left: Any, right: Any, expected: bool) -> None:
    doc = {"l": left, "r": right}
    assert matches(ir.FieldRef("l", "r", mode), doc) is expected  # type: ignore[arg-type]


def test_fieldref_missing_side() -> None:
    assert matches(ir.FieldRef("l", "r"), {"l": "x"}) is False
    assert matches(ir.FieldRef("l", "r"), {"r": "x"}) is False


# ---------------------------------------------------------------------------------------------
# Keyword search and boolean structure


def test_keyword_searches_message() -> None:
    node = ir.Keyword((S, "Failed password", S))
    assert ir.KEYWORD_FIELDS == ("message",)
    assert matches(node, {"message": "sshd: failed PASSWORD for root"}) is True
    assert matches(node, {"message": "sshd: accepted password"}) is False
    assert matches(node, {"msg": "Failed password"}) is False  # only the keyword fields
    assert matches(ir.Keyword(("Failed",)), {"message": "Failed password"}) is False  # whole value
    assert matches(ir.Keyword((S, "ERROR", S), cased=True), {"message": "an error"}) is False
    assert matches(ir.Keyword((S, "ERROR", S), cased=True), {"message": "an ERROR"}) is True


def test_boolean_structure() -> None:
    doc = {"a": "1", "b": "2"}
    one, two, three = Str("a", "1"), Str("b", "2"), Str("c", "3")
    assert matches(ir.And((one, two)), doc) is True
    assert matches(ir.And((one, three)), doc) is False
    assert matches(ir.Or((three, two)), doc) is True
    assert matches(ir.Or((three, ir.Not(one))), doc) is False
    assert matches(ir.Not(three), doc) is True  # NOT over a missing field is true
    assert matches(ir.Not(ir.Or((three, ir.Not(two)))), doc) is True
    assert matches(ir.TRUE, {}) is True
    assert matches(ir.FALSE, doc) is False


# ---------------------------------------------------------------------------------------------
# windows (docs/detection.md: every event anchors [t, t + timespan))

SEC = 1_000_000  # microseconds
T0 = 1_773_014_400 * SEC  # 2026-03-09T00:00:00Z, a minute boundary


def _rule(name: str, condition: ir.Node = ir.TRUE) -> Rule:
    return Rule(
        id=name, name=name, title=name, description="", author="", references=[], level="low", tags=[],
        status="test", license="", version="1", path=Path(f"{name}.yml"), line=1, logsource={},
        condition=condition,
    )  # fmt: skip


def corr(kind: str, op: str, count: int, seconds: int, rules: int = 1, value_field: str | None = None) -> Correlation:
    refs = tuple(_rule(f"r{i}") for i in range(rules))
    return Correlation(kind, refs, ("g",), timedelta(seconds=seconds), op, count, value_field)


def m(ident: str, ts: int, rules: tuple[int, ...] = (0,), value: tuple[str, ...] = ()) -> Member:
    return Member(ident, ts, frozenset(rules), value)


def anchors(found: list[Any]) -> list[tuple[tuple[str, ...], str, list[str], int]]:
    return [(w.group, w.anchor.id, [x.id for x in w.members], w.value) for w in found]


def test_burst_straddling_a_minute_boundary_fires() -> None:
    # 3 events at 00:00:58, 00:00:59 (before the boundary of 00:01:00) and 00:01:01; timespan 1m
    c = corr("event_count", "gte", 3, 60)
    burst = [m("a", T0 + 58 * SEC), m("b", T0 + 59 * SEC), m("c", T0 + 61 * SEC)]
    assert anchors(satisfying(c, {("k",): burst})) == [(("k",), "a", ["a", "b", "c"], 3)]


def test_events_exactly_timespan_apart_do_not_share_a_window() -> None:
    c = corr("event_count", "gte", 2, 60)
    assert anchors(satisfying(c, {("k",): [m("a", T0), m("b", T0 + 60 * SEC)]})) == []
    just_inside = [m("a", T0), m("b", T0 + 60 * SEC - 1)]
    assert anchors(satisfying(c, {("k",): just_inside})) == [(("k",), "a", ["a", "b"], 2)]


def test_equal_timestamps_are_in_each_others_windows_and_ordered_by_id() -> None:
    c = corr("event_count", "gte", 2, 60)
    found = satisfying(c, {("k",): [m("z", T0), m("a", T0)]})
    # both anchor a window holding both (an event at the anchor's time is in its window)
    assert anchors(found) == [(("k",), "a", ["a", "z"], 2), (("k",), "z", ["a", "z"], 2)]


def test_thresholds_just_under_at_and_over() -> None:
    events = [m(f"e{i}", T0 + i * SEC) for i in range(4)]
    assert anchors(satisfying(corr("event_count", "gte", 5, 60), {("k",): events})) == []
    assert [a[1] for a in anchors(satisfying(corr("event_count", "gte", 4, 60), {("k",): events}))] == ["e0"]
    assert [a[1] for a in anchors(satisfying(corr("event_count", "gt", 2, 60), {("k",): events}))] == ["e0", "e1"]
    assert [a[1] for a in anchors(satisfying(corr("event_count", "eq", 2, 60), {("k",): events}))] == ["e2"]
    assert [a[1] for a in anchors(satisfying(corr("event_count", "lte", 1, 60), {("k",): events}))] == ["e3"]
    assert [a[1] for a in anchors(satisfying(corr("event_count", "lt", 3, 60), {("k",): events}))] == ["e2", "e3"]


def test_groups_are_separate_and_ordered() -> None:
    c = corr("event_count", "gte", 2, 60)
    groups = {("b",): [m("b1", T0), m("b2", T0 + SEC)], ("a",): [m("a1", T0), m("a2", T0 + 120 * SEC)]}
    assert anchors(satisfying(c, groups)) == [(("b",), "b1", ["b1", "b2"], 2)]


def test_value_count_counts_distinct_case_sensitive_values() -> None:
    c = corr("value_count", "gte", 3, 60, value_field="user")
    events = [
        m("a", T0, value=("alice",)),
        m("b", T0 + SEC, value=("Alice",)),  # a different value: case-sensitive
        m("c", T0 + 2 * SEC, value=("alice",)),  # a repeat
        m("d", T0 + 3 * SEC, value=()),  # no value
    ]
    assert anchors(satisfying(c, {("k",): events})) == []
    events.append(m("e", T0 + 4 * SEC, value=("bob",)))
    # a: {alice, Alice, bob}; b: {Alice, alice, bob}; c: {alice, bob}; d, e: {bob}
    assert anchors(satisfying(c, {("k",): events})) == [
        (("k",), "a", ["a", "b", "c", "d", "e"], 3),
        (("k",), "b", ["b", "c", "d", "e"], 3),
    ]


def test_temporal_needs_every_rule_in_any_order() -> None:
    c = corr("temporal", "gte", 2, 60, rules=2)
    events = [m("x", T0, (1,)), m("y", T0 + SEC, (0,)), m("z", T0 + 2 * SEC, (0,))]
    assert anchors(satisfying(c, {("k",): events})) == [(("k",), "x", ["x", "y", "z"], 2)]
    both = [m("w", T0, (0, 1))]  # one event matching both rules satisfies it alone
    assert anchors(satisfying(c, {("k",): both})) == [(("k",), "w", ["w"], 2)]


def test_temporal_ordered_follows_the_rule_order() -> None:
    c = corr("temporal_ordered", "gte", 2, 60, rules=2)
    in_order = [m("p", T0, (0,)), m("q", T0 + SEC, (1,))]
    assert anchors(satisfying(c, {("k",): in_order})) == [(("k",), "p", ["p", "q"], 2)]
    reversed_ = [m("p", T0, (1,)), m("q", T0 + SEC, (0,))]
    assert anchors(satisfying(c, {("k",): reversed_})) == []
    # equal timestamps: "strictly after" is by (timestamp, id), so the id order decides
    tie_ok = [m("a", T0, (0,)), m("b", T0, (1,))]
    assert anchors(satisfying(c, {("k",): tie_ok})) == [(("k",), "a", ["a", "b"], 2)]
    tie_wrong = [m("b", T0, (0,)), m("a", T0, (1,))]
    assert anchors(satisfying(c, {("k",): tie_wrong})) == []
    # one event matching both rules cannot be both steps
    assert anchors(satisfying(c, {("k",): [m("w", T0, (0, 1))]})) == []


def test_temporal_ordered_three_steps() -> None:
    c = corr("temporal_ordered", "gte", 3, 60, rules=3)
    events = [m("a", T0, (0,)), m("b", T0 + SEC, (2,)), m("c", T0 + 2 * SEC, (1,)), m("d", T0 + 3 * SEC, (2,))]
    assert anchors(satisfying(c, {("k",): events})) == [(("k",), "a", ["a", "b", "c", "d"], 3)]
    late = [m("a", T0, (0,)), m("c", T0 + SEC, (1,)), m("d", T0 + 60 * SEC, (2,))]  # the last step is outside
    assert anchors(satisfying(c, {("k",): late})) == []


def test_multi_valued_group_by_puts_an_event_in_each_group() -> None:
    assert group_keys({"g": ["b", "a", "b"], "h": 1}, ("g", "h")) == [("a", "1"), ("b", "1")]
    assert group_keys({"g": "a"}, ("g", "h")) == []  # lacking a group-by field: not grouped
    assert group_keys({"g": [None]}, ("g",)) == []
    assert group_keys({"g": "A"}, ()) == [()]
    c = Correlation("event_count", (_rule("r", Str("kind", "x")),), ("g",), timedelta(minutes=1), "gte", 2)
    docs = [("1", {"kind": "x", "g": ["a", "b"], "t": 0}), ("2", {"kind": "x", "g": "a", "t": SEC})]
    docs += [("3", {"kind": "y", "g": "a", "t": SEC}), ("4", {"kind": "x", "t": SEC})]
    groups = members_of(c, docs, lambda d: d["t"])
    assert {k: [x.id for x in v] for k, v in groups.items()} == {("a",): ["1", "2"], ("b",): ["1"]}
    assert anchors(satisfying(c, groups)) == [(("a",), "1", ["1", "2"], 2)]


@pytest.mark.parametrize(
    ("obj", "exists"),
    [
        ({"zn": None}, False),
        ({"zl": []}, False),
        ({"zo": {}}, False),
        ({"a": {"b": None, "c": [None, {}]}}, False),
        ({"a": [{"b": 0}]}, True),
        ({"a": {"b": False}}, True),
        ({"a": ""}, True),
    ],
)
def test_an_object_is_a_value_only_with_a_scalar_below_it(obj: dict, exists: bool) -> None:
    # what OpenSearch can see: an object of nulls and empties indexes nothing
    assert matches(ir.Exists("test.obj"), {"test": {"obj": obj}}) is exists


def test_a_scope_holds_an_event_by_its_first_time_value_to_the_microsecond() -> None:
    from siem.detect.engines import Scope

    day = Scope(timestamp=("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
    assert day.holds({"@timestamp": "2026-03-01T00:00:00Z"})  # the lower bound is in
    assert not day.holds({"@timestamp": "2026-02-28T23:59:59.999999Z"})
    assert not day.holds({"@timestamp": "2026-03-02T00:00:00Z"})  # the upper bound is out
    assert day.holds({"@timestamp": "2026-03-01T23:59:59.999999+00:00"})
    assert day.holds({"@timestamp": ["2026-03-01T10:00:00Z", "2027-01-01T00:00:00Z"]})  # the first value
    assert not day.holds({"@timestamp": [None, "2027-01-01T00:00:00Z"]})  # nulls are no value
    assert not day.holds({"event": {"ingested": "2026-03-01T10:00:00Z"}})  # no @timestamp
    window = Scope(ingested=("2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z"))
    assert window.holds({"event": {"ingested": "2026-03-01T10:04:59Z"}})
    assert window.holds({"event": [{"ingested": None}, {"ingested": "2026-03-01T10:01:00Z"}]})
    assert not window.holds({"event": {"ingested": "2026-03-01T10:05:00Z"}, "@timestamp": "2026-03-01T10:00:00Z"})
    both = Scope(ingested=window.ingested, timestamp=day.timestamp)
    assert not both.holds({"event": {"ingested": "2026-03-01T10:01:00Z"}, "@timestamp": "2026-02-01T00:00:00Z"})


def test_a_correlation_alert_covers_every_member_of_its_windows_once_per_period() -> None:
    """Ten events a second apart, three within 5 s: windows anchored at 0..7 s satisfy. The alert of
    the period 0-5 s folds the windows anchored there (events 0-8); that of 5-10 s, events 5-9."""
    from dataclasses import replace

    from siem.detect import correlations

    c = corr("event_count", "gte", 3, 5)
    rule = replace(_rule("burst"), correlation=c)
    shown = (("192.0.2.1",), ("alice",), ("login",))
    events = [Member(f"e{n}", T0 + n * SEC, frozenset({0}), (), shown) for n in range(10)]
    windows = satisfying(c, {("alice",): events})
    assert [w.anchor.id for w in windows] == [f"e{n}" for n in range(8)]
    wanted = correlations.Wanted(rule, [(T0, T0 + 20 * SEC)], lambda member: True)
    fetched: list[str] = []
    alerts, new = correlations.build(wanted, windows, lambda ids: fetched.extend(ids) or {}, 100)
    assert fetched == []  # every member came with what its alert shows
    covered = sorted(doc["alert"]["event_ids"] for doc in alerts.values())
    assert covered == [[f"e{n}" for n in range(9)], [f"e{n}" for n in range(5, 10)]]
    assert sorted(doc["alert"]["count"] for doc in alerts.values()) == [5, 9]
    assert new == 10
