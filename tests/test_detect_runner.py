"""The detection runner on both real stores: idempotent alerts, late data once, suppression without
limits, failing rules isolated, checkpoints that only move after the alerts are written.

Shared with the other runner tests: the ``detect_store`` fixture (a real embedded DuckDB file, or
a real OpenSearch node under a throw-away prefix), the rule files and the event generator.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from siem.detect.rules import Rule, load_paths
from siem.detect.runner import Runner, make_engine
from siem.detect.state import open_state, store_counter
from siem.normalize import iso_utc
from siem.pipeline import Event

SINGLE = "11111111-0000-0000-0000-000000000001"
SUPPRESSED = "11111111-0000-0000-0000-000000000002"
BURST = "11111111-0000-0000-0000-000000000003"
BURST_BY_USER = "11111111-0000-0000-0000-000000000004"

RULES = {
    "single.yml": f"""
title: Console login failure
id: {SINGLE}
status: test
description: one alert per failed console login
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: low
tags: [attack.t1110, attack.credential-access]
""",
    "suppressed.yml": f"""
title: Failed logins by source
id: {SUPPRESSED}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: medium
suppress: {{by: [source.ip], for: 1h}}
""",
    "burst.yml": f"""
title: Failed login (burst member)
id: 11111111-0000-0000-0000-00000000000b
name: failed_login
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: medium
---
title: Failed login burst
id: {BURST}
status: test
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [source.ip]
  timespan: 60s
  condition: {{gte: 5}}
level: high
""",
    "burst_by_user.yml": f"""
title: Failed login (burst by user member)
id: 11111111-0000-0000-0000-00000000000c
name: failed_login_of_user
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: medium
---
title: Failed login burst by user
id: {BURST_BY_USER}
status: test
correlation:
  type: event_count
  rules: [failed_login_of_user]
  group-by: [user.name]
  timespan: 60s
  condition: {{gte: 5}}
level: high
""",
}


def write_rules(folder: Path, names: tuple[str, ...] = ("single.yml", "suppressed.yml", "burst.yml")) -> list[Rule]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(RULES[name])
    rules = load_paths([folder])
    assert all(not r.problems for r in rules), [r.problems for r in rules]
    return rules


def iso(dt: datetime) -> str:
    return iso_utc(dt)


def event(n: int, ts: datetime, ip: str, ingested: datetime, *, outcome: str = "failure", user: str = "alice") -> Event:
    doc = {
        "@timestamp": iso(ts),
        "event": {
            "dataset": "aws.cloudtrail",
            "kind": "event",
            "action": "ConsoleLogin",
            "outcome": outcome,
            "provider": "signin.amazonaws.com",
            "ingested": iso(ingested),
        },
        "source": {"ip": ip},
        "user": {"name": user},
        "cloud": {"provider": "aws", "account": {"id": "123456789012"}},
        "related": {"ip": [ip], "user": [user]},
        "log": {"file": {"path": "s3://logs/ct.json.gz"}, "offset": n},
    }
    return Event(f"ev-{n:07d}", "aws.cloudtrail", doc)


def burst_events(start: int, at: datetime, ip: str, ingested: datetime, count: int = 6) -> list[Event]:
    """``count`` failed logins from one IP, 5 s apart (a burst: ≥5 in 60 s)."""
    return [event(start + i, at + timedelta(seconds=5 * i), ip, ingested) for i in range(count)]


def write_events(store: Any, events: list[Event]) -> None:
    for start in range(0, len(events), 5000):
        assert store.write(events[start : start + 5000]) == []
    store.refresh()


@pytest.fixture(params=["embedded", "opensearch"])
def detect_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A real store of each kind (templates installed on OpenSearch), closed and cleaned up after."""
    if request.param == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        store = EmbeddedStore(tmp_path / "data")
        yield store
        store.close()
        return
    yield from _opensearch_store(request)


@pytest.fixture
def opensearch_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _opensearch_store(request)


def _opensearch_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    from opensearchpy import OpenSearch

    from siem.sinks.opensearch import OpenSearchStore
    from siem.templates import install_templates

    admin = request.getfixturevalue("opensearch_client")
    prefix = request.getfixturevalue("index_prefix")
    url = request.getfixturevalue("opensearch_url")
    install_templates(admin, prefix)
    store = OpenSearchStore(OpenSearch(hosts=[url], timeout=60), prefix=prefix)
    try:
        yield store
    finally:
        store.close()
        admin.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for name in ("alerts", "outbox"):  # before index_prefix removes the component templates they use
            admin.indices.delete_index_template(name=f"{prefix}-{name}", params={"ignore": 404})


def runner_for(store: Any, **kw: Any) -> Runner:
    options = {"overlap_seconds": 120, "settle_seconds": 30, "lookback_seconds": 86400} | kw
    return Runner(make_engine(store), open_state(store), counter=store_counter(store), **options)


def alerts_by_id(store: Any) -> dict[str, dict[str, Any]]:
    state = open_state(store)
    state.refresh()
    return {d["alert"]["id"]: d for d in state.search(size=10000)}


def content(doc: dict[str, Any]) -> dict[str, Any]:
    """An alert without its detection time (the only field that depends on when it was found)."""
    return {k: v for k, v in doc.items() if k != "@timestamp"}


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def scenario() -> list[Event]:
    """Two bursts (alerts on all three rules), a lone failure and a success (no alert)."""
    ingested = NOW - timedelta(minutes=20)
    events = burst_events(0, NOW - timedelta(hours=2), "203.0.113.7", ingested)
    events += burst_events(10, NOW - timedelta(minutes=50), "198.51.100.9", ingested, count=5)
    events.append(event(20, NOW - timedelta(minutes=40), "192.0.2.1", ingested))
    events.append(event(21, NOW - timedelta(minutes=40), "192.0.2.1", ingested, outcome="success"))
    return events


def test_retro_hunt_twice_gives_the_same_alerts_and_nothing_new_on_rerun(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    write_events(detect_store, scenario())
    runner = runner_for(detect_store)
    since, until = iso(NOW - timedelta(days=1)), iso(NOW)
    first = runner.run_cycle(rules, since=since, until=until, now=NOW)
    assert first.exit_code == 0, first.render()
    by_rule = {r.rule.id: r for r in first.runs}
    assert by_rule[SINGLE].new == 12  # every failed login
    assert by_rule[SUPPRESSED].new == 3  # one per source IP and hour
    assert by_rule[BURST].new == 2  # one per bursting IP
    assert first.events_scanned == 13
    before = alerts_by_id(detect_store)
    second = runner.run_cycle(rules, since=since, until=until, now=NOW + timedelta(hours=1))
    assert (second.new, second.updated) == (0, 0), second.render()
    after = alerts_by_id(detect_store)
    assert after == before  # not even the detection time moved
    burst = next(d for d in after.values() if d["rule"]["id"] == BURST and d["source"]["ip"] == "203.0.113.7")
    assert burst["alert"]["count"] == 6 and burst["alert"]["group"] == {"source.ip": "203.0.113.7"}
    assert burst["alert"]["reason"] == "6 Failed login (burst member) events from 203.0.113.7 in 1m"
    assert burst["event"]["kind"] == "alert" and burst["event"]["severity"] == 73
    # a retro-hunt leaves the checkpoints alone
    assert open_state(detect_store).checkpoints([r.id for r in rules]) == {}


def test_a_retro_hunt_starting_inside_a_burst_alerts_from_its_first_instant(detect_store: Any, tmp_path: Path) -> None:
    """A retro-hunt does not select a correlation's members one by one: a window is new when one of
    its members' @timestamp lies in [since, until). The burst (6 failures 5 s apart) began before
    ``since``: ``since`` at its last event's exact instant alerts, on the whole burst (the windows are
    computed over the range's reach); one microsecond later does not."""
    rules = write_rules(tmp_path / "rules", ("burst.yml",))
    start = NOW - timedelta(hours=2)
    write_events(detect_store, burst_events(0, start, "203.0.113.7", NOW - timedelta(minutes=20)))
    runner = runner_for(detect_store)
    last = start + timedelta(seconds=25)
    after = runner.run_cycle(rules, since=iso(last + timedelta(microseconds=1)), until=iso(NOW), now=NOW)
    assert after.exit_code == 0 and after.new == 0, after.render()
    report = runner.run_cycle(rules, since=iso(last), until=iso(NOW), now=NOW)
    run = next(r for r in report.runs if r.rule.id == BURST)
    assert (run.new, run.matches) == (1, 1), report.render()  # one member in range: the last failure
    (alert,) = [d for d in alerts_by_id(detect_store).values() if d["rule"]["id"] == BURST]
    assert alert["alert"]["count"] == 6


def test_both_stores_give_the_same_alert_ids_and_documents(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from siem.sinks.embedded import EmbeddedStore

    rules = write_rules(tmp_path / "rules")
    results = []
    embedded = EmbeddedStore(tmp_path / "data")
    opened = _opensearch_store(request)
    opensearch = next(opened)
    try:
        for store in (embedded, opensearch):
            write_events(store, scenario())
            runner = runner_for(store)
            report = runner.run_cycle(rules, now=NOW)  # scheduled, first run: the lookback
            assert report.exit_code == 0 and report.new == 17, report.render()
            results.append({i: content(d) for i, d in alerts_by_id(store).items()})
    finally:
        embedded.close()
        opened.close()
    assert set(results[0]) == set(results[1])
    assert results[0] == results[1]


def test_a_correlation_alert_shows_every_members_users_and_opensearch_reads_no_member_twice(
    detect_store: Any, tmp_path: Path
) -> None:
    """Five failures from one IP, each for another user: the burst's alert lists all five users and
    the IP. On OpenSearch the members were read with what their alert shows, so the runner fetches
    nothing; DuckDB's members carry only what the windows need, so it fetches them."""
    rules = write_rules(tmp_path / "rules", ("burst.yml",))
    start, ingested = NOW - timedelta(hours=2), NOW - timedelta(minutes=20)
    users = ["ann", "bob", "cyd", "dee", "eve"]
    write_events(
        detect_store,
        [event(i, start + timedelta(seconds=5 * i), "203.0.113.7", ingested, user=u) for i, u in enumerate(users)],
    )
    runner = runner_for(detect_store)
    fetched: list[str] = []
    fetch = runner.engine.fetch

    def counting(ids: list[str]) -> dict[str, dict[str, Any]]:
        fetched.extend(ids)
        return fetch(ids)

    runner.engine.fetch = counting  # type: ignore[method-assign]
    report = runner.run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW), now=NOW)
    assert report.exit_code == 0 and report.new == 1, report.render()
    (alert,) = alerts_by_id(detect_store).values()
    assert alert["related"] == {"ip": ["203.0.113.7"], "user": users}
    assert alert["event"]["action"] == ["ConsoleLogin"] and alert["alert"]["count"] == 5
    expected_fetch = [] if runner.engine.name == "opensearch" else [f"ev-{i:07d}" for i in range(5)]
    assert fetched == expected_fetch


def test_late_event_is_alerted_in_the_next_cycle_exactly_once(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    write_events(detect_store, scenario())
    runner = runner_for(detect_store)
    assert runner.run_cycle(rules, now=NOW).new == 17
    # a late event: @timestamp inside the first burst, two hours ago; ingested now
    late_ingested = NOW + timedelta(minutes=1)
    write_events(
        detect_store, [event(99, NOW - timedelta(hours=2) + timedelta(seconds=7), "203.0.113.7", late_ingested)]
    )
    too_early = runner.run_cycle(rules, now=NOW + timedelta(minutes=1, seconds=10))  # not settled yet
    assert (too_early.new, too_early.updated) == (0, 0)
    cycle = runner.run_cycle(rules, now=NOW + timedelta(minutes=5))
    by_rule = {r.rule.id: r for r in cycle.runs}
    assert (by_rule[SINGLE].new, by_rule[SINGLE].updated) == (1, 0)
    assert (by_rule[SUPPRESSED].new, by_rule[SUPPRESSED].updated) == (0, 1)
    assert (by_rule[BURST].new, by_rule[BURST].updated) == (0, 1)
    for minutes in (6, 7, 30):  # overlapping windows still see it: nothing new, nothing updated
        again = runner.run_cycle(rules, now=NOW + timedelta(minutes=minutes))
        assert (again.new, again.updated) == (0, 0), again.render()
    docs = alerts_by_id(detect_store)
    assert len(docs) == 18
    suppressed = [d for d in docs.values() if d["rule"]["id"] == SUPPRESSED and d["source"]["ip"] == "203.0.113.7"]
    assert [d["alert"]["count"] for d in suppressed] == [7]
    assert "ev-0000099" in suppressed[0]["alert"]["event_ids"]
    # and a retro-hunt over the same data agrees with what the scheduled cycles built
    retro = runner.run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW + timedelta(hours=1)))
    assert (retro.new, retro.updated) == (0, 0)


def test_checkpoints_start_at_lookback_and_end_at_now_minus_settle(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", ("single.yml",))
    old = event(1, NOW - timedelta(days=3), "192.0.2.1", NOW - timedelta(days=2))  # before the lookback
    fresh = event(2, NOW - timedelta(minutes=5), "192.0.2.2", NOW - timedelta(minutes=2))
    unsettled = event(3, NOW - timedelta(minutes=5), "192.0.2.3", NOW - timedelta(seconds=10))
    write_events(detect_store, [old, fresh, unsettled])
    runner = runner_for(detect_store, lookback_seconds=86400, settle_seconds=30, overlap_seconds=120)
    report = runner.run_cycle(rules, now=NOW)
    assert report.runs[0].window == (iso(NOW - timedelta(days=1)), iso(NOW - timedelta(seconds=30)))
    assert report.new == 1 and report.events_scanned == 1
    state = open_state(detect_store)
    assert state.checkpoints([SINGLE]) == {SINGLE: iso(NOW - timedelta(seconds=30))}
    nxt = runner.run_cycle(rules, now=NOW + timedelta(minutes=5))
    assert nxt.runs[0].window == (iso(NOW - timedelta(seconds=150)), iso(NOW + timedelta(minutes=5, seconds=-30)))
    assert nxt.new == 1  # the event that had not settled
    assert {d["source"]["ip"] for d in alerts_by_id(detect_store).values()} == {"192.0.2.2", "192.0.2.3"}


def test_a_rules_own_lookback_replaces_the_default_on_its_first_cycle(detect_store: Any, tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "single.yml").write_text(RULES["single.yml"] + "schedule: {interval: 1m, lookback: 7d}\n")
    rules = load_paths([folder])
    assert rules[0].lookback == timedelta(days=7) and rules[0].interval == timedelta(minutes=1)
    three_days_old = event(1, NOW - timedelta(days=3), "192.0.2.1", NOW - timedelta(days=3))
    write_events(detect_store, [three_days_old])
    report = runner_for(detect_store, lookback_seconds=86400, settle_seconds=30).run_cycle(rules, now=NOW)
    assert report.runs[0].window == (iso(NOW - timedelta(days=7)), iso(NOW - timedelta(seconds=30)))
    assert report.new == 1  # the default 24 h would not have reached it


def test_suppression_folds_thousands_of_distinct_keys_with_no_bucket_limit(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", ("suppressed.yml",))
    keys = 3000
    ingested = NOW - timedelta(minutes=10)
    events = []
    for k in range(keys):
        ip = f"10.{k // 65536}.{(k // 256) % 256}.{k % 256}"
        for j in range(2 + k % 2):
            events.append(event(k * 10 + j, NOW - timedelta(minutes=30, seconds=j), ip, ingested))
    write_events(detect_store, events)
    runner = runner_for(detect_store)
    report = runner.run_cycle(rules, now=NOW)
    assert report.exit_code == 0 and report.new == keys, report.render()
    docs = alerts_by_id(detect_store)
    assert len(docs) == keys
    counts = {d["alert"]["group"]["source.ip"]: d["alert"]["count"] for d in docs.values()}
    assert len(counts) == keys
    assert sum(counts.values()) == len(events)
    assert counts["10.0.0.1"] == 3 and counts["10.0.11.183"] == 3 and counts["10.0.11.182"] == 2
    again = runner.run_cycle(rules, now=NOW + timedelta(minutes=1))
    assert (again.new, again.updated) == (0, 0)


class FailingFor:
    """The store's real engine, except that one rule's queries fail (a query error or timeout)."""

    def __init__(self, engine: Any, rule_id: str) -> None:
        self.engine, self.rule_id, self.name = engine, rule_id, engine.name
        self.failing = True
        if hasattr(engine, "select_many"):  # the same interface as the engine it wraps
            self.select_many = self._select_many
        if hasattr(engine, "correlate_many"):
            self.correlate_many = self._correlate_many

    def _check(self, rule: Rule) -> None:
        if self.failing and rule.id == self.rule_id:
            raise TimeoutError("query timed out after 30s")

    def select(self, rule: Rule, scope: Any) -> Any:
        self._check(rule)
        return self.engine.select(rule, scope)

    def _select_many(self, rules: list[Rule], scope: Any) -> Any:
        if any(r.id == self.rule_id for r in rules) and self.failing:
            raise TimeoutError("batch timed out")
        return self.engine.select_many(rules, scope)

    def correlate(self, rule: Rule, scope: Any) -> Any:
        self._check(rule)
        return self.engine.correlate(rule, scope)

    def _correlate_many(self, requests: list[tuple[Rule, Any]]) -> list[Any]:
        results = self.engine.correlate_many(requests)
        timeout = TimeoutError("query timed out after 30s")
        pairs = zip(requests, results, strict=True)
        return [timeout if self.failing and r.id == self.rule_id else got for (r, _), got in pairs]

    def fetch(self, ids: list[str]) -> Any:
        return self.engine.fetch(ids)


def test_a_failing_correlation_is_reported_while_the_other_correlations_run(detect_store: Any, tmp_path: Path) -> None:
    """A cycle's correlations are computed together (side by side on OpenSearch): one that fails is
    reported, the others' alerts are written."""
    rules = write_rules(tmp_path / "rules", ("burst.yml", "burst_by_user.yml"))
    write_events(detect_store, scenario())
    runner = runner_for(detect_store)
    runner.engine = FailingFor(runner.engine, BURST)
    report = runner.run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW), now=NOW)
    by_rule = {r.rule.id: r for r in report.runs}
    assert by_rule[BURST].error == "TimeoutError: query timed out after 30s"
    assert by_rule[BURST_BY_USER].error is None and by_rule[BURST_BY_USER].new == 2  # alice's two bursts
    assert report.exit_code == 1
    assert {d["rule"]["id"] for d in alerts_by_id(detect_store).values()} == {BURST_BY_USER}


class Meeting:
    """The OpenSearch engine, except that its batched selection waits (a few seconds at most) for the
    correlations to have begun: they can only begin first if they run beside it."""

    def __init__(self, engine: Any) -> None:
        import threading

        self.engine, self.name = engine, engine.name
        self.began = threading.Event()
        self.met = False

    def select_many(self, rules: list[Rule], scope: Any) -> Any:
        self.met = self.began.wait(timeout=5)
        return self.engine.select_many(rules, scope)

    def correlate_many(self, requests: list[tuple[Rule, Any]]) -> list[Any]:
        self.began.set()
        return self.engine.correlate_many(requests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_a_retro_hunts_correlations_run_beside_its_selection(opensearch_store: Any, tmp_path: Path) -> None:
    """A retro-hunt's correlation windows do not depend on its selection: the engine works on both at
    once, and the alerts are those of the one-after-the-other cycle."""
    rules = write_rules(tmp_path / "rules", ("single.yml", "suppressed.yml", "burst.yml", "burst_by_user.yml"))
    write_events(opensearch_store, scenario())
    runner = runner_for(opensearch_store)
    runner.engine = meeting = Meeting(runner.engine)
    report = runner.run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW), now=NOW)
    assert meeting.met
    assert report.exit_code == 0, report.render()
    by_rule = {r.rule.id: r.new for r in report.runs}
    assert by_rule == {SINGLE: 12, SUPPRESSED: 3, BURST: 2, BURST_BY_USER: 2}


def test_a_failing_rule_is_reported_and_retried_while_the_others_run(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    write_events(detect_store, scenario())
    runner = runner_for(detect_store)
    assert runner.run_cycle(rules, now=NOW).new == 17
    state = open_state(detect_store)
    first_marks = state.checkpoints([r.id for r in rules])
    # new data; the burst rule's queries now time out
    write_events(detect_store, burst_events(50, NOW - timedelta(minutes=3), "192.0.2.50", NOW + timedelta(minutes=1)))
    failing = FailingFor(runner.engine, BURST)
    runner.engine = failing
    report = runner.run_cycle(rules, now=NOW + timedelta(minutes=5))
    by_rule = {r.rule.id: r for r in report.runs}
    assert by_rule[BURST].error == "TimeoutError: query timed out after 30s"
    assert by_rule[SINGLE].new == 6 and by_rule[SUPPRESSED].new == 1  # the others ran
    assert report.exit_code == 1 and "FAILED" in report.render()
    marks = state.checkpoints([r.id for r in rules])
    assert marks[BURST] == first_marks[BURST]  # not advanced
    assert marks[SINGLE] == iso(NOW + timedelta(minutes=4, seconds=30))
    failing.failing = False  # next cycle: the failed rule looks again from its own checkpoint
    retry = runner.run_cycle(rules, now=NOW + timedelta(minutes=10))
    by_rule = {r.rule.id: r for r in retry.runs}
    assert by_rule[BURST].window[0] == iso(NOW - timedelta(seconds=150))
    assert by_rule[BURST].new == 1 and by_rule[SINGLE].new == 0 and retry.exit_code == 0
    assert state.checkpoints([BURST])[BURST] == iso(NOW + timedelta(minutes=9, seconds=30))


def test_a_rule_that_cannot_run_here_is_skipped_and_the_others_run(detect_store: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", ("single.yml",))
    broken = write_rules(tmp_path / "more", ("suppressed.yml",))[0]
    broken.problems.append("field 'x.y' is not carried by our documents")
    write_events(detect_store, scenario())
    report = runner_for(detect_store).run_cycle([*rules, broken], now=NOW)
    assert report.exit_code == 1
    assert report.runs[1].skipped == "field 'x.y' is not carried by our documents"
    assert report.runs[0].new == 12
    assert report.to_dict()["rules_skipped"] == 1


def test_notifications_are_enqueued_once_for_new_alerts_only(detect_store: Any, tmp_path: Path) -> None:
    from siem.detect.notify import Outbox
    from siem.detect.notify.routes import compile_notifications

    route = {"name": "oncall", "type": "webhook", "url": "https://hooks.example/x", "secret_env": "HOOK_KEY"}
    routes = compile_notifications([route])
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "suppressed.yml").write_text(RULES["suppressed.yml"] + "notify: [oncall]\n")
    rules = load_paths([folder])
    write_events(detect_store, scenario())
    outbox = Outbox(detect_store, routes)
    runner = runner_for(detect_store, outbox=outbox)
    assert runner.run_cycle(rules, now=NOW).new == 3
    # rerun, then a late event that updates an alert: neither notifies again
    runner.run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW))
    write_events(detect_store, [event(99, NOW - timedelta(hours=2), "203.0.113.7", NOW + timedelta(minutes=1))])
    assert runner.run_cycle(rules, now=NOW + timedelta(minutes=5)).updated == 1
    pending = outbox.pending()
    assert len(pending) == 3 and len({n.id for n in pending}) == 3
    assert {n.kind for n in pending} == {"trigger"}
    for alert_id in alerts_by_id(detect_store):
        assert set(outbox.states(alert_id)) == {"oncall"}


def test_a_new_rule_and_the_same_data_in_a_retro_hunt_get_the_same_ids_as_scheduled(
    detect_store: Any, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules")
    write_events(detect_store, scenario())
    runner_for(detect_store).run_cycle(rules, now=NOW)
    scheduled = alerts_by_id(detect_store)
    # the same events and rules under another prefix/file: a retro-hunt finds exactly these ids
    other = tmp_path / f"other-{uuid.uuid4().hex[:6]}"
    from siem.sinks.embedded import EmbeddedStore

    fresh = EmbeddedStore(other)
    try:
        write_events(fresh, scenario())
        runner_for(fresh).run_cycle(rules, since=iso(NOW - timedelta(days=1)), until=iso(NOW))
        assert {i: content(d) for i, d in alerts_by_id(fresh).items()} == {i: content(d) for i, d in scheduled.items()}
    finally:
        fresh.close()
