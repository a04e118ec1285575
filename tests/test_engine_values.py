"""Batched OpenSearch selection: pattern leaves decided once over the stored values
(``siem.detect.engines.opensearch_values``), and the n-gram hint in front of case-folding regexps on
``wildcard`` fields. Expected values are written by hand; the real node answers."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Any

import pytest
from test_engine_opensearch import S, make_rule

from siem.detect import ir
from siem.detect.engines import Scope, opensearch_words
from siem.detect.engines import opensearch_values as values_mod
from siem.detect.engines.memory import MemoryEngine
from siem.detect.engines.opensearch import OpenSearchEngine
from siem.detect.engines.opensearch_dsl import Compiler
from siem.detect.engines.opensearch_values import _accepted, _numbers, plan
from siem.detect.engines.opensearch_words import words_of
from siem.pipeline import Event
from siem.sinks.opensearch import OpenSearchStore
from siem.templates import install_templates

UA = "user_agent.original"


def web(n: int, agent: str, message: str = "GET /") -> tuple[str, dict]:
    return f"w{n:02d}", {
        "@timestamp": f"2024-03-01T00:00:{n:02d}Z",
        "event": {"dataset": "nginx.access", "ingested": "2024-03-01T00:01:00Z"},
        "user_agent": {"original": agent},
        "message": message,
    }


DOCS = [
    web(1, "Mozilla/5.0 (X11; Linux x86_64)"),
    web(2, "sqlmap/1.7.2#stable (https://sqlmap.org)"),
    web(3, "NIKTO/2.5.0"),
    web(4, "curl/8.4.0", "kernel: stac\u212a smashing detected in nginx"),  # KELVIN SIGN lowercases to k
    web(5, "python-requests/2.31", "STACK SMASHING DETECTED"),
    web(6, "Go-http-client/1.1", "stack smashing not detected"),
]
AGENTS = ["sqlmap", "nikto", "masscan", "zgrab", "python-requests", "nmap", "hydra", "dirbuster"]


def contains(field: str, needle: str) -> ir.Str:
    return S(field, f"*{needle}*")


@contextmanager
def indexed(client, docs: list[tuple[str, dict]], dataset: str):
    """A store of its own holding ``docs``, removed afterwards (templates included)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    install_templates(client, prefix)
    store = OpenSearchStore(client, prefix=prefix, refresh=True)
    assert store.write([Event(i, dataset, d) for i, d in docs]) == []
    try:
        yield store
    finally:
        client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for name in ("events", "deadletter", "alerts"):
            client.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})
        for name in ("settings", "ecs"):
            client.cluster.delete_component_template(name=f"{prefix}-{name}", params={"ignore": 404})


@pytest.fixture(scope="module")
def store(opensearch_client):
    with indexed(opensearch_client, DOCS, "nginx.access") as store:
        yield store


def scanner_rules() -> list:
    """One rule per scanner name, and one matching any of them: 8 distinct leaves on one field."""
    leaves = [contains(UA, a) for a in AGENTS]
    rules = [make_rule(leaf, f"ua-{a}") for leaf, a in zip(leaves, AGENTS, strict=True)]
    return [*rules, make_rule(ir.any_of(leaves), "any-scanner")]


def test_a_leaf_accepts_the_values_the_reference_accepts() -> None:
    stored = ["SQLMap/1.0", "curl", "stac\u212a", "Stack", "a.b"]
    lowered = [v.lower() for v in stored]
    joined = {True: "\0".join(stored), False: "\0".join(lowered)}
    assert _accepted(contains(UA, "sqlmap"), stored, lowered, joined) == ["SQLMap/1.0"]
    assert _accepted(contains(UA, "stack"), stored, lowered, joined) == ["stac\u212a", "Stack"]
    assert _accepted(S(UA, "Stack", cased=True), stored, lowered, joined) == ["Stack"]
    assert _accepted(S(UA, "c*"), stored, lowered, joined) == ["curl"]
    assert _accepted(S(UA, "a?b"), stored, lowered, joined) == ["a.b"]
    assert _accepted(ir.Regex(UA, r"^[a-z]+$"), stored, lowered, joined) == ["curl"]
    assert _accepted(contains(UA, "absent"), stored, lowered, joined) == []


def test_only_exact_pattern_leaves_on_keyword_fields_are_planned() -> None:
    compiler = Compiler()
    conditions = [
        contains(UA, "sqlmap"),  # case-insensitive wildcard on a keyword: an automaton
        S(UA, "curl/8.4.0", cased=True),  # a plain term: no automaton, nothing to save
        contains("message", "stack"),  # message is text with a wildcard sub-field: no values to list
    ]
    planned = plan(compiler, conditions)
    assert list(planned) == [UA]
    assert planned[UA][0] == {contains(UA, "sqlmap"): 1}


def test_batch_decides_shared_leaves_over_stored_values_and_matches_reference(store) -> None:
    engine = OpenSearchEngine(store)
    rules = scanner_rules()
    pit = engine._pit()
    try:
        compiler = engine.batch_compiler(rules, pit)
    finally:
        engine._close(pit)
    assert compiler.resolved[contains(UA, "sqlmap")] == (UA, ["sqlmap/1.7.2#stable (https://sqlmap.org)"])
    assert compiler.resolved[contains(UA, "nikto")] == (UA, ["NIKTO/2.5.0"])
    assert compiler.resolved[contains(UA, "masscan")] == (UA, [])
    many = engine.select_many(rules, Scope())
    assert [i for i, _ in many["any-scanner"]] == ["w02", "w03", "w05"]
    assert [i for i, _ in many["ua-nikto"]] == ["w03"]
    for rule in rules:
        assert [i for i, _ in many[rule.id]] == [i for i, _ in MemoryEngine(DOCS).select(rule, Scope())], rule.id


def test_a_field_with_too_many_values_keeps_its_leaves(store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(values_mod, "MAX_VALUES", 3)  # six distinct agents: over the bound
    engine = OpenSearchEngine(store)
    rules = scanner_rules()
    pit = engine._pit()
    try:
        assert engine.batch_compiler(rules, pit).resolved == {}
    finally:
        engine._close(pit)
    many = engine.select_many(rules, Scope())
    assert [i for i, _ in many["any-scanner"]] == ["w02", "w03", "w05"]


def test_case_folding_regexp_on_a_wildcard_field_gets_an_ngram_hint_and_stays_exact(store) -> None:
    """``k`` forces the exact case-folding regexp (KELVIN SIGN lowercases to k); a native
    case-insensitive wildcard on a run without k or i is ANDed in front so the node verifies only
    its candidates — and the Kelvin-sign message still matches."""
    leaf = contains("message", "stack smashing detected")
    dsl, exact = Compiler().compile(leaf)
    assert exact
    hint = {"wildcard": {"message.wildcard": {"value": "*ng detected*", "case_insensitive": True}}}
    assert dsl["bool"]["filter"][0] == hint
    assert "regexp" in dsl["bool"]["filter"][1]
    found = [i for i, _ in OpenSearchEngine(store).select(make_rule(leaf, "smash"), Scope())]
    assert found == ["w04", "w05"]


def test_the_whole_words_of_a_pattern_are_those_the_analyser_must_have_indexed() -> None:
    assert words_of(contains("message", "entered promiscuous mode")) == ("promiscuous",)
    assert words_of(contains("message", "/bin/sh -i")) == ("bin", "sh")  # "i" touches the pattern's end
    assert words_of(contains("message", "nc -e /bin/sh ")) == ("bin", "e", "sh")  # short words count
    assert words_of(contains("message", "0bin0sh1")) == ()  # no breaking character around it
    assert words_of(contains("message", "a.example.com/x")) == ()  # "." and ":" do not break a word
    assert words_of(S("message", "User Root* logged")) == ()  # each word touches an edge of its chunk
    assert words_of(S("message", "*Failed for INVALID user *")) == ("for", "invalid", "user")  # lowered, 3+ characters


def test_message_patterns_are_decided_over_the_documents_their_word_finds(store) -> None:
    """``smashing`` is a token of every message ``*stack smashing detected*`` matches, the Kelvin-sign
    spelling included; the reference then decides on those documents only."""
    engine = OpenSearchEngine(store, min_leaves=1)
    smash = make_rule(contains("message", "stack smashing detected"), "smash")
    pit = engine._pit()
    try:
        compiler = engine.batch_compiler([smash], pit)
    finally:
        engine._close(pit)
    assert compiler.resolved[contains("message", "stack smashing detected")] == ("_id", ["w04", "w05"])
    many = engine.select_many([smash], Scope())
    assert [i for i, _ in many["smash"]] == ["w04", "w05"]


def test_a_message_pattern_is_found_through_all_its_words_together(opensearch_client, monkeypatch) -> None:
    """``a`` and ``b`` are each in four messages, together in two: with at most three documents worth
    fetching per leaf, ``* a b *`` is still decided — on those two, of which one has them in order."""
    monkeypatch.setattr(opensearch_words, "MAX_PER_LEAF", 3)
    lines = ["x a b y", "x a c y", "x b c y", "x b q a y", "x a z y", "x b z y"]
    docs = [web(n, "curl/8.4.0", line) for n, line in enumerate(lines, 1)]
    leaf = contains("message", " a b ")
    rule = make_rule(leaf, "a-b")
    with indexed(opensearch_client, docs, "nginx.access") as store:
        engine = OpenSearchEngine(store, min_leaves=1)
        pit = engine._pit()
        try:
            compiler = engine.batch_compiler([rule], pit)
        finally:
            engine._close(pit)
        assert compiler.resolved[leaf] == ("_id", ["w01"])
        assert [i for i, _ in engine.select_many([rule], Scope())["a-b"]] == ["w01"]


def test_a_number_leaf_on_a_keyword_field_is_decided_over_values_only_when_they_tell() -> None:
    """A term of decimal digits is that number whatever it came from; a term reading as a float may
    be a JSON float (a number to the reference) or a string (not one): when one would be accepted the
    leaf stays with the node."""
    stored = ["80", "\u0668\u0660", "0x50", "443", "+80", "80.5"]  # "٨٠": Arabic-Indic 80
    assert _numbers(ir.Num("event.id", "eq", 80), stored) == ["80", "\u0668\u0660"]
    assert _numbers(ir.Num("event.id", "gt", 100), stored) == ["443"]
    assert _numbers(ir.Num("event.id", "lt", 81), stored) is None  # "80.5" may be the float 80.5
    assert _numbers(ir.Num("event.id", "eq", 80), [*stored, "80.0"]) is None


def test_number_leaves_on_a_keyword_field_select_what_the_reference_selects(opensearch_client) -> None:
    def doc(n: int, value: object) -> tuple[str, dict]:
        event = {"dataset": "linux.auditd", "ingested": "2024-03-01T00:01:00Z", "id": value}  # a keyword field
        return f"n{n}", {"@timestamp": f"2024-03-01T00:00:0{n}Z", "event": event}

    docs = [doc(1, "80"), doc(2, 80), doc(3, "\u0668\u0660"), doc(4, "0x50"), doc(5, "443"), doc(6, "80.0")]
    docs += [doc(7, 80.5), doc(8, 80.0)]
    leaves = {"eq80": ("eq", 80), "gt100": ("gt", 100), "lt81": ("lt", 81)}
    rules = [make_rule(ir.Num("event.id", op, value), name) for name, (op, value) in leaves.items()]
    with indexed(opensearch_client, docs, "linux.auditd") as store:
        engine = OpenSearchEngine(store, min_leaves=1)
        pit = engine._pit()
        try:
            resolved = engine.batch_compiler(rules, pit).resolved
        finally:
            engine._close(pit)
        assert resolved == {rules[1].condition: ("event.id", ["443"])}  # "80.0" and "80.5" leave the others
        many = engine.select_many(rules, Scope())
    assert [i for i, _ in many["eq80"]] == ["n1", "n2", "n3", "n8"]
    assert [i for i, _ in many["gt100"]] == ["n5"]
    assert [i for i, _ in many["lt81"]] == ["n1", "n2", "n3", "n7", "n8"]


def test_a_leaf_shared_by_many_rules_counts_once_per_rule_toward_listing_its_field(store) -> None:
    """Every rule's query builds its own automaton for a shared leaf: eight rules reading one pattern
    cost eight, so the field's values are listed (the shipped threshold is 8 uses); seven are not."""
    engine = OpenSearchEngine(store)
    leaf = contains(UA, "sqlmap")
    for count, listed in ((7, False), (8, True)):
        rules = [make_rule(ir.And((leaf, S("event.dataset", "nginx.access"))), f"r{n}") for n in range(count)]
        pit = engine._pit()
        try:
            resolved = engine.batch_compiler(rules, pit).resolved
        finally:
            engine._close(pit)
        assert (leaf in resolved) is listed, count
    assert resolved[leaf] == (UA, ["sqlmap/1.7.2#stable (https://sqlmap.org)"])


def test_a_batchs_words_are_counted_while_its_values_are_listed(opensearch_client) -> None:
    """Both are answers the node computes before any rule query can be sent: the words' search is
    sent first, beside the values' ``_msearch``, not after it (the listing waits a few seconds at
    most for it to begin)."""
    import threading

    docs = [web(n, agent, line) for n, (agent, line) in enumerate([("curl/8.4.0", "x a b y"), ("Go", "x b a")], 1)]
    by_words, by_values = contains("message", " a b "), contains("user_agent.original", "curl")
    rules = [make_rule(by_words, "words"), make_rule(by_values, "values")]
    with indexed(opensearch_client, docs, "nginx.access") as store:
        engine = OpenSearchEngine(store, min_leaves=1)
        began, met = threading.Event(), []
        search, msearch = engine.search, store.client.msearch

        def counting_words(**kwargs: Any) -> dict[str, Any]:
            began.set()
            return search(**kwargs)

        def listing_values(*args: Any, **kwargs: Any) -> dict[str, Any]:
            if not met:
                met.append(began.wait(timeout=5))
            return msearch(*args, **kwargs)

        engine.search = counting_words  # type: ignore[method-assign]
        store.client.msearch = listing_values
        pit = engine._pit()
        try:
            compiler = engine.batch_compiler(rules, pit)
        finally:
            engine._close(pit)
        assert met == [True]
        assert compiler.resolved[by_words] == ("_id", ["w01"])
        assert compiler.resolved[by_values] == ("user_agent.original", ["curl/8.4.0"])
