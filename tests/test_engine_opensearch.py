"""The OpenSearch engine against the reference (MemoryEngine) on a real node, with the real templates.

Every single-event rule must select exactly the ids, in the same order, that the offline evaluator
selects; correlations must produce the same windows. Where the DSL cannot be exact the rule is
compiled as a prefilter and post-filtered: those cases are here too (flat_object leaves, ip text,
regex constructs Lucene lacks), so a wrong prefilter polarity or a missing post-filter fails.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from siem.detect import ir
from siem.detect.engines import Scope
from siem.detect.engines.memory import MemoryEngine
from siem.detect.engines.opensearch import OpenSearchEngine
from siem.detect.engines.opensearch_regex import ci_regexp, translate_regex
from siem.detect.rules import Correlation, Rule, load_file
from siem.pipeline import Event
from siem.sinks.opensearch import OpenSearchStore
from siem.templates import install_templates

RP = "aws.cloudtrail.request_parameters"
K8S = "kubernetes.audit.requestObject"


def S(field: str, pattern: str, cased: bool = False) -> ir.Str:
    """A Str leaf from a Sigma-like pattern: * and ? are wildcards (no escapes)."""
    parts: list[ir.Part] = []
    for ch in pattern:
        if ch in "*?":
            parts.append(ir.STAR if ch == "*" else ir.QMARK)
        elif parts and isinstance(parts[-1], str):
            parts[-1] += ch
        else:
            parts.append(ch)
    return ir.Str(field, tuple(parts), cased)


def L(field: str, *parts: ir.Part, cased: bool = False) -> ir.Str:
    """A Str leaf from explicit parts (literal * ? \\ inside strings stay literal)."""
    return ir.Str(field, tuple(parts), cased)


def make_rule(condition: ir.Node, rule_id: str = "r", correlation: Correlation | None = None) -> Rule:
    return Rule(
        id=rule_id,
        name=rule_id,
        title=rule_id,
        description="",
        author="test",
        references=[],
        level="medium",
        tags=[],
        status="test",
        license="",
        version="1",
        path=Path("test.yml"),
        line=1,
        logsource={},
        condition=condition,
        correlation=correlation,
    )


def ev(n: int, ts: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "event": {"dataset": "aws.cloudtrail", "ingested": "2024-02-01T00:00:00Z"},
        "log": {"offset": n},
    }
    for path, value in fields.items():
        node = doc
        keys = path.replace("__", ".").split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return f"e{n:03d}", doc


DOCS = [
    ev(
        1,
        "2024-01-01T00:00:00.000100Z",
        **{
            "event.action": "GetObject",
            "user.name": "Alice",
            "source.ip": "10.1.2.3",
            "source.port": 443,
            "message": "User Alice logged in from 10.1.2.3",
            RP: {
                "bucketName": "Secret-Bucket",
                "key": "a*b?c\\d",
                "nested": {"deep": ["x", "Y"]},
                "count": 5,
                "ratio": 1.5,
                "two": 2.0,
            },
            "url.original": "http://x/a*b",
        },
    ),
    ev(
        2,
        "2024-01-01T00:00:01Z",
        **{
            "event.action": "getobject",
            "user.name": "ALICE",
            "source.ip": "2001:db8::1",
            RP: {"bucketName": "public", "flag": True},
            "message": "error: disk full",
            "process.command_line": "cmd.exe /c whoami",
        },
    ),
    ev(
        3,
        "2024-01-01T00:00:02Z",
        **{
            "event.action": "ListBuckets",
            "user.name": "bob",
            "user.roles": ["admin", "Dev"],
            K8S: {"spec": {"containers": [{"image": "nginx:latest", "securityContext": {"privileged": True}}]}},
            "message": "ÉCOLE straße",
        },
    ),
    ev(
        4,
        "2024-01-01T00:00:03Z",
        **{
            "event.action": "k8s",
            "user.name": "İstanbul",
            "user.domain": "\u212aelvin",
            "message": "tab\there 42",
            "http.response.status_code": 404,
            "event.id": "0042",
        },
    ),
    ev(
        5,
        "2024-01-01T00:00:04Z",
        **{
            "user.name": "dave",
            "user.target.name": "DAVE",
            "user.effective.name": "davey",
            "source.address": "10.0.0.5",
            "related.ip": ["10.0.0.5", "192.168.1.1"],
            "event.outcome": None,
            "labels.custom": "Δelta",
            "host.name": "1\u01302",
        },
    ),
    ev(
        6,
        "2024-01-01T00:00:05Z",
        **{
            "user.name": "a*b",
            "user.id": "a?c",
            "user.domain": "back\\slash",
            "event.code": 77,
            "some.flag": True,
            "destination.ip": "::ffff:10.0.0.1",
        },
    ),
    ev(
        7,
        "2024-01-01T00:00:00.000100Z",  # the same instant as e001: ordered by id
        **{"user.name": ["x", "Y"], "source.ip": "10.255.255.255", "message": "line1\nline2", RP: {"bucketName": ""}},
    ),
    ev(8, "2024-01-01T00:10:00Z", **{"event.action": "PutObject", "source.ip": "2001:DB8:0:0::1"}),
    ev(9, "2024-01-01T00:00:00.000900Z", **{"event.action": "ΟΔΟΣ", "user.name": "Σίσυφος"}),
    ("e010", {"event": {"dataset": "aws.cloudtrail", "ingested": "2024-02-01T00:00:00Z"}, "user": {"name": "notime"}}),
]

CONDITIONS: dict[str, ir.Node] = {
    # keyword: case, wildcards, literal wildcard characters
    "term_case_insensitive": S("user.name", "alice"),
    "term_cased": S("user.name", "Alice", cased=True),
    "prefix": S("event.action", "get*"),
    "suffix": S("event.action", "*object"),
    "contains": S("event.action", "*tob*"),
    "single_char": S("user.name", "b?b"),
    "literal_star_in_value": L("user.name", "a*b"),
    "literal_qmark_then_wildcard": L("user.id", "a?", ir.STAR),
    "literal_backslash": L("user.domain", ir.STAR, "\\s", ir.STAR),
    "star_only": S("user.name", "*"),
    "kelvin_sign_lowercases_to_k": S("user.domain", "kelvin"),
    "dotted_capital_i_with_star": S("user.name", "i*"),
    "dotted_capital_i_with_qmark": S("user.name", "?stanbul"),
    "two_qmarks": S("user.name", "??stanbul"),
    "qmark_in_a_caseless_pattern": S("host.name", "1?2"),
    "two_qmarks_in_a_caseless_pattern": S("host.name", "1??2"),
    "star_then_qmark_splits_dotted_i": S("host.name", "?*?2"),
    "final_sigma": S("event.action", "οδος"),
    "final_sigma_written_medial": S("event.action", "οδοσ"),
    "greek_sigma_wildcard": S("user.name", "σ*"),
    "unicode_case": S("message", "*école*"),
    "arrays_any_value": S("user.roles", "dev"),
    "missing_field_never_matches": S("user.email", "*"),
    "not_over_missing_field": ir.Not(S("user.email", "x")),
    "not_exists": ir.Not(ir.Exists("source.ip")),
    "null_is_no_value": ir.Exists("event.outcome"),
    # flat_object leaves
    "flat_term": S(f"{RP}.bucketName", "secret-bucket"),
    "flat_leading_wildcard": S(f"{RP}.bucketName", "*bucket"),
    "flat_literal_wildcards": L(f"{RP}.key", "a*b?c\\d"),
    "flat_nested_array": S(f"{RP}.nested.deep", "y"),
    "flat_number_as_text": S(f"{RP}.count", "5"),
    "flat_bool_as_text": S(f"{RP}.flag", "TRUE"),
    "flat_empty_string": L(f"{RP}.bucketName", ""),
    "flat_exists": ir.Exists(f"{RP}.bucketName"),
    "flat_deep_exists": ir.Exists(f"{K8S}.spec.containers"),
    "not_flat_exists": ir.Not(ir.Exists(f"{RP}.nested.deep")),
    "k8s_privileged": S(f"{K8S}.spec.containers.securityContext.privileged", "true"),
    "k8s_image": S(f"{K8S}.spec.containers.image", "*:latest"),
    "not_flat_leading_wildcard": ir.Not(S(f"{RP}.bucketName", "*public")),
    # ip, long, numbers
    "ip_equals": S("source.ip", "10.1.2.3"),
    "ip_text_differs": S("source.ip", "2001:db8::1"),
    "ip_not_an_ip": S("source.ip", "alice"),
    "not_ip_equals": ir.Not(S("source.ip", "2001:db8::1")),
    "cidr_v4": ir.Cidr("source.ip", "10.0.0.0/8"),
    "cidr_v6": ir.Cidr("source.ip", "2001:db8::/32"),
    "not_cidr_v4": ir.Not(ir.Cidr("source.ip", "10.0.0.0/8")),
    "cidr_v4_ignores_ipv4_mapped_ipv6": ir.Cidr("destination.ip", "10.0.0.0/8"),
    "cidr_v6_mapped_range": ir.Cidr("destination.ip", "::ffff:0:0/96"),
    "ipv4_mapped_text": S("destination.ip", "::FFFF:10.0.0.1"),
    "cidr_on_keyword": ir.Cidr("source.address", "10.0.0.0/24"),
    "long_as_text": S("source.port", "443"),
    "long_wildcard": S("http.response.status_code", "40*"),
    "num_eq_long": ir.Num("http.response.status_code", "eq", 404),
    "num_range_long": ir.Num("source.port", "gt", 442.5),
    "num_on_keyword_leading_zeros": ir.Num("event.id", "eq", 42),
    "num_on_flat_json_float": ir.Num(f"{RP}.ratio", "eq", 1.5),
    "num_on_flat_json_float_integral": ir.Num(f"{RP}.two", "eq", 2),
    "num_on_flat_json_int": ir.Num(f"{RP}.count", "eq", 5),
    "not_num_on_flat": ir.Not(ir.Num(f"{RP}.count", "eq", 5)),
    "num_range_on_keyword": ir.Num("event.id", "lt", 100),
    "dynamic_long": S("event.code", "77"),
    "dynamic_bool": S("some.flag", "true"),
    "dynamic_keyword_unicode": S("labels.custom", "δelta"),
    # regex
    "regex_search_not_anchored": ir.Regex("user.name", "lic"),
    "regex_anchors": ir.Regex("user.name", "^Al.*e$"),
    "regex_ignorecase": ir.Regex("user.name", "^alice$", "i"),
    "regex_digits": ir.Regex("event.id", r"^\d{4}$"),
    "regex_class_negated": ir.Regex("event.action", "^[^gG]"),
    "regex_alternation": ir.Regex("event.action", "^(Get|Put)Object$|^List"),
    "regex_alternation_unfactored": ir.Regex("event.action", "Object$|^List"),
    "regex_lookahead_falls_back": ir.Regex("event.action", "Get(?=Object)"),
    "regex_dot_and_newline": ir.Regex("message", "line1.line2"),
    "regex_dotall": ir.Regex("message", "line1.line2", "s"),
    "regex_multiline": ir.Regex("message", "^line2$", "m"),
    "regex_word_boundary_falls_back": ir.Regex("message", r"\bAlice\b"),
    "regex_on_flat_leaf": ir.Regex(f"{RP}.bucketName", "^S.*t$"),
    "regex_on_long": ir.Regex("source.port", "^44"),
    # fieldref, keywords, message
    "fieldref_eq": ir.FieldRef("user.name", "user.target.name"),
    "fieldref_startswith": ir.FieldRef("user.effective.name", "user.name", "startswith"),
    "keyword_search": ir.Keyword((ir.STAR, "logged in", ir.STAR)).as_fields(),
    "keyword_tab": ir.Keyword((ir.STAR, "TAB\there", ir.STAR)).as_fields(),
    "keyword_cased": ir.Keyword((ir.STAR, "alice", ir.STAR), cased=True).as_fields(),
    "keyword_number": ir.Num("message", "eq", 42),
    "message_exists": ir.Exists("message"),
    # boolean structure
    "and_or_not": ir.And(
        (ir.Or((S("user.name", "alice"), S("user.name", "bob"))), ir.Not(S(f"{RP}.bucketName", "*public*")))
    ),
    "double_not_flat": ir.Not(ir.Not(S(f"{RP}.bucketName", "*bucket"))),
}


@pytest.fixture(scope="module")
def loaded(opensearch_client):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    install_templates(opensearch_client, prefix)
    store = OpenSearchStore(opensearch_client, prefix=prefix, refresh=True)
    assert store.write([Event(i, "aws.cloudtrail", json.loads(json.dumps(d))) for i, d in DOCS]) == []
    yield store
    opensearch_client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
    for name in ("events", "deadletter", "alerts"):
        opensearch_client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
    for name in ("settings", "ecs"):
        opensearch_client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


def both(store: OpenSearchStore, rule: Rule, scope: Scope | None = None) -> tuple[list[str], list[str]]:
    scope = scope or Scope()
    got = [i for i, _ in OpenSearchEngine(store).select(rule, scope)]
    want = [i for i, _ in MemoryEngine(DOCS).select(rule, scope)]
    return got, want


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_select_equals_reference(loaded, name: str) -> None:
    got, want = both(loaded, make_rule(CONDITIONS[name]))
    assert got == want


EXPECTED = {
    "term_case_insensitive": ["e001", "e002"],
    "term_cased": ["e001"],
    "literal_star_in_value": ["e006"],
    "literal_qmark_then_wildcard": ["e006"],
    "literal_backslash": ["e006"],
    "kelvin_sign_lowercases_to_k": ["e004"],
    "dotted_capital_i_with_star": ["e004"],
    "dotted_capital_i_with_qmark": [],
    "two_qmarks": ["e004"],
    "qmark_in_a_caseless_pattern": [],
    "two_qmarks_in_a_caseless_pattern": ["e005"],
    "star_then_qmark_splits_dotted_i": ["e005"],
    "final_sigma": ["e009"],
    "final_sigma_written_medial": [],
    "keyword_tab": ["e004"],
    "keyword_cased": [],
    "flat_leading_wildcard": ["e001"],
    "flat_literal_wildcards": ["e001"],
    "flat_empty_string": ["e007"],
    "flat_deep_exists": ["e003"],
    "not_flat_exists": ["e010", "e007", "e009", "e002", "e003", "e004", "e005", "e006", "e008"],
    "ip_text_differs": ["e002"],
    "not_cidr_v4": ["e010", "e009", "e002", "e003", "e004", "e005", "e006", "e008"],
    "num_on_keyword_leading_zeros": ["e004"],
    "num_on_flat_json_float": ["e001"],
    "num_on_flat_json_float_integral": ["e001"],
    "num_on_flat_json_int": ["e001"],
    "fieldref_eq": ["e005"],
    "keyword_search": ["e001"],
    "regex_dot_and_newline": [],
    "regex_dotall": ["e007"],
    "regex_multiline": ["e007"],
    "unicode_case": ["e003"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_select_hand_written_expectations(loaded, name: str) -> None:
    assert [i for i, _ in OpenSearchEngine(loaded).select(make_rule(CONDITIONS[name]), Scope())] == EXPECTED[name]


def test_select_orders_equal_timestamps_by_id_across_pages(loaded) -> None:
    engine = OpenSearchEngine(loaded, page=2)  # every page ends inside a run of equal timestamps
    rule = make_rule(ir.TRUE)
    got = [i for i, _ in engine.select(rule, Scope())]
    assert got == [i for i, _ in MemoryEngine(DOCS).select(rule, Scope())]
    assert got[:4] == ["e010", "e001", "e007", "e009"]  # no @timestamp sorts first, like the reference's 0
    assert len(got) == len(DOCS)


def test_scope_is_half_open_to_the_microsecond(loaded) -> None:
    scope = Scope(timestamp=("2024-01-01T00:00:00.000100Z", "2024-01-01T00:00:00.000900Z"))
    got, want = both(loaded, make_rule(ir.TRUE), scope)
    assert got == want == ["e001", "e007"]


def test_ingested_scope_includes_events_without_timestamp(loaded) -> None:
    scope = Scope(ingested=("2024-02-01T00:00:00Z", "2024-02-01T00:00:00.000001Z"))
    got, want = both(loaded, make_rule(S("user.name", "*")), scope)
    assert got == want and got[0] == "e010"


def test_leaves_dsl_cannot_say_are_marked_inexact_and_post_filtered(loaded) -> None:
    engine = OpenSearchEngine(loaded)
    exact = {n for n, c in CONDITIONS.items() if engine.compile(make_rule(c))[1]}
    assert "flat_leading_wildcard" in exact and "term_case_insensitive" in exact and "cidr_v6" in exact
    assert "cidr_v4" not in exact  # ::ffff:10.0.0.1 is stored as 10.0.0.1: the term is a superset
    assert "regex_lookahead_falls_back" not in exact and "ip_equals" not in exact and "flat_deep_exists" not in exact
    dsl, is_exact = engine.compile(make_rule(ir.Not(ir.Exists(f"{RP}.a.b"))))
    assert not is_exact and dsl == {"match_all": {}}  # odd NOT → match_none inside → everything, then post-filter


def test_never_query_string_and_user_values_stay_terms(loaded) -> None:
    engine = OpenSearchEngine(loaded)
    blob = json.dumps([engine.compile(make_rule(c))[0] for c in CONDITIONS.values()])
    assert "query_string" not in blob and "simple_query_string" not in blob
    dsl, _ = engine.compile(make_rule(L("user.name", "a*b OR x:*", ir.STAR, cased=True)))
    assert dsl == {"prefix": {"user.name": {"value": "a*b OR x:*"}}}
    dsl, _ = engine.compile(make_rule(L("user.name", ir.STAR, "a*b?\\", ir.STAR, cased=True)))
    assert dsl == {"wildcard": {"user.name": {"value": "*a\\*b\\?\\\\*"}}}


def test_regex_translation_is_anchored_like_search() -> None:
    assert translate_regex("abc", "") == ".*abc.*"
    assert translate_regex("^abc$", "") == "abc\n?"
    assert translate_regex(r"a\Z", "") == ".*a"
    assert ci_regexp(("ab", ir.STAR)) == "[Aa][Bb].*"


def test_yaml_rule_through_the_mapping_pipeline(loaded, tmp_path: Path) -> None:
    file = tmp_path / "rule.yml"
    file.write_text(
        "title: get object\nid: 5b1b0c8e-0000-4000-8000-000000000001\nstatus: test\n"
        "logsource: {product: aws, service: cloudtrail}\n"
        "detection:\n  sel:\n    eventName|startswith: get\n  filter:\n    eventName|cased: GetObject\n"
        "  condition: sel and not filter\nlevel: low\n",
        encoding="utf-8",
    )
    (rule,) = load_file(file)
    got, want = both(loaded, rule)
    assert got == want == ["e002"]


@pytest.mark.parametrize("min_leaves", [8, 1], ids=["shipped threshold", "every pattern leaf over stored values"])
def test_select_many_equals_select_per_rule(loaded, min_leaves: int) -> None:
    """With ``min_leaves=1`` every exact pattern leaf on a keyword field is decided over the stored
    values (``opensearch_values``) instead of by the node: the reference must still agree on every
    condition here (case folding, Kelvin sign, numbers and booleans held as keywords...)."""
    engine = OpenSearchEngine(loaded, page=2, min_leaves=min_leaves)
    rules = [make_rule(c, name) for name, c in sorted(CONDITIONS.items())]
    many = engine.select_many(rules, Scope())
    for rule in rules:
        assert [i for i, _ in many[rule.id]] == [i for i, _ in MemoryEngine(DOCS).select(rule, Scope())], rule.id


def test_a_rule_pinned_to_datasets_only_reads_their_family_indices(loaded) -> None:
    """``index_filter`` keeps a CloudTrail rule off every other family's indices (a document there,
    which the loader never writes, is not seen); an unpinned rule reads them all."""
    from siem.detect.engines.opensearch import index_filter

    pinned = ir.And((S("event.dataset", "aws.cloudtrail"), S("user.name", "stray")))
    assert index_filter("p-events-*", pinned) == {"wildcard": {"_index": {"value": "p-events-aws.cloudtrail-*"}}}
    two = ir.Or((S("event.dataset", "linux.auth"), S("event.dataset", "linux.syslog")))
    assert index_filter("p-events-*", two) == {"wildcard": {"_index": {"value": "p-events-linux-*"}}}
    assert index_filter("p-events-*", S("user.name", "stray")) == {"match_all": {}}
    stray = {"@timestamp": "2024-03-01T00:00:00Z", "event": {"dataset": "aws.cloudtrail"}, "user": {"name": "stray"}}
    index = f"{loaded.prefix}-events-linux-2024"
    loaded.client.index(index=index, id="stray", body=stray, params={"refresh": "true"})
    try:
        engine = OpenSearchEngine(loaded)
        assert [i for i, _ in engine.select(make_rule(pinned, "pinned"), Scope())] == []
        assert [i for i, _ in engine.select(make_rule(S("user.name", "stray"), "any"), Scope())] == ["stray"]
    finally:
        loaded.client.delete(index=index, id="stray", params={"refresh": "true"})


def test_fetch_by_ids(loaded) -> None:
    got = OpenSearchEngine(loaded).fetch(["e003", "e001", "nope"])
    assert set(got) == {"e001", "e003"} and got["e003"]["user"]["name"] == "bob"


# --- correlations ------------------------------------------------------------------------------


def corr_rule(
    ctype: str, rules: list[Rule], op: str, count: int, span_s: int = 60, group_by=("user.name",), value=None
) -> Rule:
    corr = Correlation(ctype, tuple(rules), tuple(group_by), timedelta(seconds=span_s), op, count, value)
    return make_rule(ir.any_of([r.condition for r in rules]), f"corr-{ctype}", corr)


def shape(windows) -> list[tuple]:
    return [(w.group, w.anchor.id, tuple(m.id for m in w.members), w.value) for w in windows]


@pytest.fixture
def corr_store(opensearch_client, index_prefix):
    installed = install_templates(opensearch_client, index_prefix)
    yield OpenSearchStore(opensearch_client, prefix=index_prefix, refresh=True)
    for name in installed:  # index templates beyond the ones conftest removes (they pin components)
        if name.removeprefix(f"{index_prefix}-") not in ("events", "deadletter", "settings", "ecs"):
            opensearch_client.indices.delete_index_template(name=name, params={"ignore": 404})


def write(store: OpenSearchStore, docs: list[tuple[str, dict[str, Any]]]) -> None:
    for start in range(0, len(docs), 5000):
        assert store.write([Event(i, "aws.cloudtrail", d) for i, d in docs[start : start + 5000]]) == []


def run_both(store, docs, rule, scope=None):
    scope = scope or Scope()
    got = OpenSearchEngine(store).correlate(rule, scope)
    want = MemoryEngine(docs).correlate(rule, scope)
    assert shape(got) == shape(want)
    return got


LOGIN = make_rule(S("event.action", "ConsoleLogin"), "login")
FAIL = make_rule(S("event.outcome", "failure"), "fail")
KEY = make_rule(S("event.action", "CreateAccessKey"), "key")


def test_burst_across_a_minute_boundary_fires_and_exactly_timespan_apart_does_not(corr_store) -> None:
    docs = [
        ev(1, "2024-01-01T00:00:50Z", **{"event.action": "ConsoleLogin", "user.name": "ann"}),
        ev(2, "2024-01-01T00:01:05Z", **{"event.action": "ConsoleLogin", "user.name": "ann"}),
        ev(3, "2024-01-01T00:01:10Z", **{"event.action": "consolelogin", "user.name": "ann"}),
        ev(4, "2024-01-01T01:00:00Z", **{"event.action": "ConsoleLogin", "user.name": "ben"}),
        ev(5, "2024-01-01T01:00:30Z", **{"event.action": "ConsoleLogin", "user.name": "ben"}),
        ev(6, "2024-01-01T01:01:00Z", **{"event.action": "ConsoleLogin", "user.name": "ben"}),  # 60 s after e004
    ]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "gte", 3))
    assert [(w.group, w.anchor.id) for w in got] == [(("ann",), "e001")]


def test_equal_timestamps_count_in_the_anchors_window(corr_store) -> None:
    docs = [ev(n, "2024-01-01T00:00:00Z", **{"event.action": "ConsoleLogin", "user.name": "cy"}) for n in (3, 1, 2)]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "gte", 3))
    assert [w.anchor.id for w in got] == ["e001", "e002", "e003"]


def test_lte_every_group_is_a_candidate(corr_store) -> None:
    docs = [
        ev(1, "2024-01-01T00:00:00Z", **{"event.action": "ConsoleLogin", "user.name": ["dee", "eve"]}),
        ev(2, "2024-01-01T00:00:10Z", **{"event.action": "ConsoleLogin", "user.name": "dee"}),
        ev(3, "2024-01-01T00:00:20Z", **{"event.action": "ConsoleLogin"}),  # no group-by value: not grouped
    ]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "lte", 1))
    assert [(w.group, w.anchor.id) for w in got] == [(("dee",), "e002"), (("eve",), "e001")]


def test_value_count_counts_distinct_text_forms(corr_store) -> None:
    docs = [
        ev(1, "2024-01-01T00:00:00Z", **{"event.action": "ConsoleLogin", "user.name": "fay", "source.address": "a"}),
        ev(2, "2024-01-01T00:00:10Z", **{"event.action": "ConsoleLogin", "user.name": "fay", "source.address": "A"}),
        ev(3, "2024-01-01T00:00:20Z", **{"event.action": "ConsoleLogin", "user.name": "fay", "source.address": "a"}),
        ev(4, "2024-01-01T00:00:30Z", **{"event.action": "ConsoleLogin", "user.name": "gus", "source.address": "a"}),
        ev(5, "2024-01-01T00:00:31Z", **{"event.action": "ConsoleLogin", "user.name": "gus", "source.address": "a"}),
    ]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("value_count", [LOGIN], "gte", 2, value="source.address"))
    assert [(w.group, w.anchor.id, w.value) for w in got] == [(("fay",), "e001", 2), (("fay",), "e002", 2)]


def test_address_groups_and_numeric_values_are_pruned_by_upper_bounds_and_keep_their_text_forms(
    corr_store,
) -> None:
    """Groups on an ip field are pruned by their buckets (keyed by the canonical address) and a number's
    distinct values by ``value_count``: ``::ffff:10.0.0.1`` and ``10.0.0.1`` are one bucket but two
    groups to the reference, and ``80`` and ``80.0`` one number but two text forms."""

    def flow(n: int, second: int, ip: str, port: float) -> tuple[str, dict[str, Any]]:
        fields = {"event.action": "ConsoleLogin", "source.ip": ip, "destination.port": port}
        return ev(n, f"2024-01-01T00:00:{second:02d}Z", **fields)

    docs = [
        flow(1, 0, "::ffff:10.0.0.1", 80),
        flow(2, 1, "::ffff:10.0.0.1", 80.0),
        flow(3, 2, "::ffff:10.0.0.1", 443),
        flow(4, 3, "10.0.0.1", 80),
        flow(5, 4, "10.0.0.1", 443),
        flow(6, 5, "10.0.0.9", 1),  # alone: pruned by its bucket
    ]
    write(corr_store, docs)
    burst = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "gte", 3, group_by=("source.ip",)))
    assert [(w.group, w.anchor.id, w.value) for w in burst] == [(("::ffff:10.0.0.1",), "e001", 3)]
    ports = corr_rule("value_count", [LOGIN], "gte", 3, group_by=("source.ip",), value="destination.port")
    got = run_both(corr_store, docs, ports)
    assert [(w.group, w.anchor.id, w.value) for w in got] == [(("::ffff:10.0.0.1",), "e001", 3)]


def test_temporal_and_temporal_ordered(corr_store) -> None:
    docs = [
        ev(1, "2024-01-01T00:00:00Z", **{"event.action": "CreateAccessKey", "user.name": "hal"}),
        ev(2, "2024-01-01T00:00:10Z", **{"event.action": "ConsoleLogin", "user.name": "hal"}),
        ev(3, "2024-01-01T00:00:00Z", **{"event.action": "ConsoleLogin", "user.name": "ivy"}),
        ev(4, "2024-01-01T00:00:20Z", **{"event.action": "CreateAccessKey", "user.name": "ivy"}),
        ev(5, "2024-01-01T00:05:00Z", **{"event.action": "ConsoleLogin", "user.name": "jon"}),
    ]
    write(corr_store, docs)
    temporal = run_both(corr_store, docs, corr_rule("temporal", [LOGIN, KEY], "gte", 2))
    assert [(w.group, w.anchor.id) for w in temporal] == [(("hal",), "e001"), (("ivy",), "e003")]
    ordered = run_both(corr_store, docs, corr_rule("temporal_ordered", [LOGIN, KEY], "gte", 2))
    assert [(w.group, w.anchor.id) for w in ordered] == [(("ivy",), "e003")]


def test_correlation_with_a_flat_object_rule_is_post_filtered(corr_store) -> None:
    deleting = make_rule(ir.Not(ir.Exists(f"{RP}.nested.deep")), "nodeep")
    docs = [
        ev(1, "2024-01-01T00:00:00Z", **{"user.name": "kim", RP: {"nested": {"deep": "x"}}}),
        ev(2, "2024-01-01T00:00:10Z", **{"user.name": "kim", RP: {"nested": {"other": "x"}}}),
        ev(3, "2024-01-01T00:00:20Z", **{"user.name": "kim"}),
    ]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("event_count", [deleting], "gte", 2))
    assert [w.anchor.id for w in got] == ["e002"]


def test_more_than_ten_thousand_groups_in_two_indices_page_through_composite(corr_store) -> None:
    """Each passing group has one event in the 2023 index and one in the 2024 one: no shard alone
    holds two, so a per-shard ``min_doc_count`` would find none; composite pages find both."""
    docs = [
        ev(n, "2023-12-31T23:59:50Z", **{"event.action": "ConsoleLogin", "user.name": f"u{n:05d}"})
        for n in range(10_500)
    ]
    docs += [
        ev(20_000 + n, "2024-01-01T00:00:10Z", **{"event.action": "ConsoleLogin", "user.name": f"u{n:05d}"})
        for n in (10_498, 10_499)
    ]  # the last groups in key order: found only by paging on
    write(corr_store, docs)
    started = time.monotonic()
    got = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "gte", 2))
    assert [w.group for w in got] == [("u10498",), ("u10499",)]
    assert time.monotonic() - started < 60


def _requests(engine: OpenSearchEngine) -> list[str]:
    """The aggregation kinds of each search ``engine`` sends, recorded."""
    sent: list[str] = []
    search = engine.search

    def recording(**kwargs: Any) -> dict[str, Any]:
        aggs = kwargs.get("body", {}).get("aggs", {}).get("groups", {})
        sent.append(next(iter(aggs), "hits"))
        return search(**kwargs)

    engine.search = recording  # type: ignore[method-assign]
    return sent


def test_groups_with_too_few_events_in_one_shard_are_pruned_in_one_terms_request(corr_store) -> None:
    """A day of VPC flows has a group per address, nearly all with one event: composite pages would
    build a bucket for each; one ``terms`` request with ``min_doc_count`` returns the two that can
    pass."""
    docs = [
        ev(n, "2024-01-01T00:00:00Z", **{"event.action": "ConsoleLogin", "user.name": f"u{n:05d}"}) for n in range(3000)
    ]
    docs += [
        ev(5000 + n, "2024-01-01T00:00:30Z", **{"event.action": "ConsoleLogin", "user.name": "u00007"}) for n in (1, 2)
    ]
    docs += [ev(6000, "2024-01-01T00:00:40Z", **{"event.action": "ConsoleLogin", "user.name": "u02999"})]
    write(corr_store, docs)
    engine = OpenSearchEngine(corr_store)
    sent = _requests(engine)
    got = engine.correlate(corr_rule("event_count", [LOGIN], "gte", 3), Scope())
    assert [(w.group, w.anchor.id) for w in got] == [(("u00007",), "e007")]
    assert sent[0] == "terms" and "composite" not in sent[:1] and sent.count("terms") == 1
    want = MemoryEngine(docs).correlate(corr_rule("event_count", [LOGIN], "gte", 3), Scope())
    assert shape(got) == shape(want)


def test_distinct_values_of_a_multi_valued_field_are_not_bounded_by_the_event_count(corr_store) -> None:
    """Three events holding seven ports each are 21 distinct ports: more than 20 though the group has
    three events, so the count of events must not prune it."""
    docs = [
        ev(
            n,
            f"2024-01-01T00:00:{n:02d}Z",
            **{
                "event.action": "ConsoleLogin",
                "source.ip": "203.0.113.9",
                "destination.port": list(range(7 * n, 7 * n + 7)),
            },
        )
        for n in range(3)
    ]
    write(corr_store, docs)
    rule = corr_rule("value_count", [LOGIN], "gte", 20, group_by=("source.ip",), value="destination.port")
    got = run_both(corr_store, docs, rule)
    assert [(w.group, w.anchor.id, w.value) for w in got] == [(("203.0.113.9",), "e000", 21)]


def test_more_passing_groups_than_one_terms_page_fall_back_to_composite(corr_store, monkeypatch) -> None:
    from siem.detect.engines import opensearch_correlate

    monkeypatch.setattr(opensearch_correlate, "COMPOSITE_PAGE", 2)
    docs = [
        ev(10 * g + n, f"2024-01-01T00:00:{n:02d}Z", **{"event.action": "ConsoleLogin", "user.name": f"g{g}"})
        for g in range(3)
        for n in range(2 + g)
    ]
    write(corr_store, docs)
    got = run_both(corr_store, docs, corr_rule("event_count", [LOGIN], "gte", 2))
    assert sorted({w.group for w in got}) == [("g0",), ("g1",), ("g2",)]


def test_a_regexp_the_node_refuses_falls_back_to_the_prefilter(corr_store, opensearch_client) -> None:
    docs = DOCS[:4]
    write(corr_store, docs)
    opensearch_client.indices.put_settings(index=f"{corr_store.prefix}-events-*", body={"index.max_regex_length": 8})
    rules = [
        make_rule(ir.Regex("user.name", "^al.c"), "regex"),
        make_rule(S("message", "*école*"), "ci-unicode"),
        make_rule(ir.Not(ir.Regex("user.name", "^al.c", "i")), "negated"),
    ]
    engine = OpenSearchEngine(corr_store)
    many = engine.select_many(rules, Scope())
    for rule in rules:
        want = [i for i, _ in MemoryEngine(docs).select(rule, Scope())]
        assert [i for i, _ in engine.select(rule, Scope())] == want, rule.id
        assert [i for i, _ in many[rule.id]] == want, rule.id
    corr = corr_rule("event_count", [rules[1]], "gte", 1)
    assert shape(engine.correlate(corr, Scope())) == shape(MemoryEngine(docs).correlate(corr, Scope()))


def test_a_group_busy_all_hour_but_never_in_a_burst_is_pruned_before_its_events_are_read(corr_store) -> None:
    """60 logins by one user, one a minute, against "3 within 60 s": the group's count over the hour
    passes, no two neighbouring minutes do, so not one event is streamed. A burst straddling a
    minute boundary (two neighbouring buckets) is still found."""
    steady = [
        ev(n, f"2024-01-01T00:{n:02d}:30Z", **{"event.action": "ConsoleLogin", "user.name": "kim"}) for n in range(60)
    ]
    burst = [
        ev(101, "2024-01-01T02:00:50Z", **{"event.action": "ConsoleLogin", "user.name": "lee"}),
        ev(102, "2024-01-01T02:01:05Z", **{"event.action": "ConsoleLogin", "user.name": "lee"}),
        ev(103, "2024-01-01T02:01:10Z", **{"event.action": "ConsoleLogin", "user.name": "lee"}),
    ]
    write(corr_store, steady + burst)
    rule = corr_rule("event_count", [LOGIN], "gte", 3)
    engine = OpenSearchEngine(corr_store)
    streamed: list[str] = []
    stream = engine.stream

    def counting(*args: Any, **kwargs: Any):
        for hit in stream(*args, **kwargs):
            streamed.append(hit["_source"]["user"]["name"])
            yield hit

    engine.stream = counting  # type: ignore[method-assign]
    got = engine.correlate(rule, Scope())
    assert shape(got) == shape(MemoryEngine(steady + burst).correlate(rule, Scope()))
    assert [(w.group, w.anchor.id) for w in got] == [(("lee",), "e101")]
    assert streamed == ["lee", "lee", "lee"]


def test_a_group_kept_for_one_burst_has_only_the_minutes_around_the_burst_read(corr_store) -> None:
    """62 logins by one user, one a minute plus two more in minute 30, against "3 within 60 s": the
    pairs of minutes (29, 30) and (30, 31) pass their bound, no other pair does, so only the events
    of minutes 29 to 31 are streamed, and the windows are those of every event."""
    steady = [
        ev(n, f"2024-01-01T00:{n:02d}:30Z", **{"event.action": "ConsoleLogin", "user.name": "kim"}) for n in range(60)
    ]
    extra = [
        ev(100 + second, f"2024-01-01T00:30:{second}Z", **{"event.action": "ConsoleLogin", "user.name": "kim"})
        for second in (40, 50)
    ]
    write(corr_store, steady + extra)
    rule = corr_rule("event_count", [LOGIN], "gte", 3)
    scope = Scope(timestamp=("2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z"))
    engine = OpenSearchEngine(corr_store)
    streamed: list[str] = []
    stream = engine.stream

    def counting(*args: Any, **kwargs: Any):
        for hit in stream(*args, **kwargs):
            streamed.append(hit["_source"]["@timestamp"][14:19])
            yield hit

    engine.stream = counting  # type: ignore[method-assign]
    got = engine.correlate(rule, scope)
    assert shape(got) == shape(MemoryEngine(steady + extra).correlate(rule, scope))
    assert [(w.anchor.id, w.value) for w in got] == [("e030", 3), ("e140", 3)]
    assert streamed == ["29:30", "30:30", "30:40", "30:50", "31:30"]


def test_correlate_many_answers_each_request_as_correlate_does_and_keeps_going_past_a_failure(corr_store) -> None:
    docs = [
        ev(1, "2024-01-01T00:00:50Z", **{"event.action": "ConsoleLogin", "user.name": "ann"}),
        ev(2, "2024-01-01T00:01:05Z", **{"event.action": "ConsoleLogin", "user.name": "ann"}),
        ev(3, "2024-01-01T00:01:10Z", **{"event.action": "ConsoleLogin", "user.name": "ann"}),
        ev(4, "2024-01-01T01:00:00Z", **{"event.action": "CreateAccessKey", "user.name": "hal"}),
        ev(5, "2024-01-01T01:00:10Z", **{"event.action": "ConsoleLogin", "user.name": "hal"}),
    ]
    write(corr_store, docs)
    engine = OpenSearchEngine(corr_store)
    burst = corr_rule("event_count", [LOGIN], "gte", 3)
    pair = corr_rule("temporal", [LOGIN, KEY], "gte", 2)
    unreadable = Scope(timestamp=("yesterday", "today"))  # fails before any request leaves
    got = engine.correlate_many([(burst, Scope()), (pair, unreadable), (pair, Scope())])
    assert [(w.group, w.anchor.id) for w in got[0]] == [(("ann",), "e001")]
    assert isinstance(got[1], ValueError)
    assert [(w.group, w.anchor.id) for w in got[2]] == [(("hal",), "e004")]
    assert shape(got[0]) == shape(engine.correlate(burst, Scope()))
    assert shape(got[2]) == shape(engine.correlate(pair, Scope()))
