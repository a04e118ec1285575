"""Alert documents: ECS fields, ATT&CK mapping, order-independent content, and what a merge keeps."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from siem.detect.alerts import Covered, build, duration_text, merge, ruleset, threat_fields
from siem.detect.engines import micros
from siem.detect.ir import TRUE
from siem.detect.rules import Correlation, Rule, Suppress


def _rule(path: str = "detections/aws/x.yml", **kw) -> Rule:
    base = dict(
        id="r-1",
        name="r-1",
        title="WAF block",
        description="blocked by the WAF",
        author="secops",
        references=["https://example.org/waf"],
        level="high",
        tags=["attack.t1190", "attack.initial-access", "attack.t1110.001", "attack.command-and-control", "cve.x"],
        status="test",
        license="MIT",
        version="2024-05-01",
        path=Path(path),
        line=1,
        logsource={"product": "aws", "service": "waf", "category": None},
        condition=TRUE,
    )
    base.update(kw)
    return Rule(**base)


def _event(i: int, ip: str, user: str, action: str) -> tuple[str, int, dict]:
    ts = f"2024-05-01T10:00:{i:02d}Z"
    doc = {
        "@timestamp": ts,
        "event": {"action": action, "dataset": "aws.waf"},
        "source": {"ip": ip},
        "user": {"name": user},
        "url": {"path": f"/p{i}"},
        "related": {"ip": [ip, "10.0.0.1"], "user": [user]},
    }
    return f"ev-{i}", micros(ts), doc


def test_ecs_fields_rule_threat_and_alert_block_of_a_single_event_alert() -> None:
    covered = Covered()
    covered.add(*_event(3, "203.0.113.7", "alice", "BLOCK"))
    doc = build(_rule(), "a1", covered, group={}, window_start=covered.first[0])
    assert doc["event"] == {"kind": "alert", "severity": 73, "action": ["BLOCK"]}
    assert doc["rule"] == {
        "id": "r-1",
        "name": "WAF block",
        "description": "blocked by the WAF",
        "author": "secops",
        "reference": ["https://example.org/waf"],
        "version": "2024-05-01",
        "ruleset": "siem",
        "license": "MIT",
        "level": "high",
    }
    assert doc["threat"]["framework"] == "MITRE ATT&CK"
    assert doc["threat"]["technique"]["id"] == ["T1190", "T1110"]
    assert doc["threat"]["technique"]["subtechnique"]["id"] == ["T1110.001"]
    assert doc["threat"]["tactic"]["name"] == ["Initial Access", "Command and Control"]
    assert doc["threat"]["tactic"]["id"] == ["TA0001", "TA0011"]
    # the matched event's own ECS fields travel with the alert
    assert doc["source"] == {"ip": "203.0.113.7"} and doc["user"] == {"name": "alice"} and doc["url"] == {"path": "/p3"}
    alert = doc["alert"]
    assert alert["status"] == "open" and alert["count"] == 1
    assert alert["first_seen"] == alert["last_seen"] == alert["window_start"] == "2024-05-01T10:00:03Z"
    assert alert["event_ids"] == ["ev-3"]
    assert alert["reason"] == "WAF block: BLOCK by alice from 203.0.113.7"
    assert doc["related"] == {"ip": ["10.0.0.1", "203.0.113.7"], "user": ["alice"]}


def test_content_does_not_depend_on_the_order_events_were_found_in() -> None:
    rule = _rule(suppress=Suppress(("source.ip",), timedelta(hours=1)))
    events = [_event(i, "203.0.113.7", f"u{i % 3}", f"A{i % 4}") for i in range(40)]
    docs = []
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        covered = Covered(max_event_ids=10)
        for e in shuffled:
            covered.add(*e)
        docs.append(build(rule, "a", covered, group={"source.ip": "203.0.113.7"}, window_start=0))
    assert all(d == docs[0] for d in docs)
    alert = docs[0]["alert"]
    assert alert["count"] == 40
    assert alert["event_ids"] == [f"ev-{i}" for i in range(10)]  # the first ten by time, capped
    assert alert["reason"] == "40 WAF block events from 203.0.113.7 in 1h"
    assert docs[0]["source"]["ip"] == "203.0.113.7"
    assert docs[0]["event"]["action"] == ["A0", "A1", "A2", "A3"]
    assert docs[0]["related"]["user"] == ["u0", "u1", "u2"]


def test_correlation_reason_names_count_group_and_timespan() -> None:
    base = _rule()
    corr = _rule(
        id="c-1",
        title="WAF burst",
        correlation=Correlation("event_count", (base,), ("source.ip",), timedelta(seconds=60), "gte", 5),
    )
    covered = Covered()
    for i in range(5):
        covered.add(*_event(i, "203.0.113.7", "alice", "BLOCK"))
    doc = build(corr, "c", covered, group={"source.ip": "203.0.113.7"}, window_start=0, value=5)
    assert doc["alert"]["reason"] == "5 WAF block events from 203.0.113.7 in 1m"
    assert doc["alert"]["group"] == {"source.ip": "203.0.113.7"}
    assert doc["alert"]["group_key"] == "source.ip=203.0.113.7"
    assert doc["source"] == {"ip": "203.0.113.7"}  # the group-by value at its own path
    assert "user" not in doc  # a correlation does not pick one event's fields


def test_merge_is_same_for_a_rebuild_updated_for_late_events_and_keeps_the_lifecycle() -> None:
    rule = _rule(suppress=Suppress(("source.ip",), timedelta(hours=1)))
    covered = Covered()
    for i in range(3):
        covered.add(*_event(i, "203.0.113.7", "alice", "BLOCK"))
    first = build(rule, "a", covered, group={"source.ip": "203.0.113.7"}, window_start=0)
    first["@timestamp"] = "2024-05-01T11:00:00Z"
    stored, what = merge(None, first)
    assert what == "new"
    stored["alert"].update(status="acknowledged", status_by="bob", status_reason="looking", status_at="t")
    again = build(rule, "a", covered, group={"source.ip": "203.0.113.7"}, window_start=0)
    again["@timestamp"] = "2024-05-01T12:00:00Z"
    assert merge(stored, again)[1] == "same"
    covered.add(*_event(9, "203.0.113.7", "alice", "BLOCK"))  # a late event of the same bucket
    later = build(rule, "a", covered, group={"source.ip": "203.0.113.7"}, window_start=0)
    later["@timestamp"] = "2024-05-01T12:00:00Z"
    doc, what = merge(stored, later)
    assert what == "updated"
    assert doc["alert"]["count"] == 4 and doc["alert"]["last_seen"] == "2024-05-01T10:00:09Z"
    assert doc["alert"]["status"] == "acknowledged" and doc["alert"]["status_by"] == "bob"
    assert doc["@timestamp"] == "2024-05-01T11:00:00Z"  # detection time is the first detection


def test_ruleset_sigmahq_by_path_and_durations() -> None:
    assert ruleset(_rule("detections/sigmahq/cloud/aws/x.yml")) == "sigmahq"
    assert ruleset(_rule("detections/aws/x.yml")) == "siem"
    assert threat_fields(["cve.2021-44228"]) == {}
    assert [duration_text(timedelta(seconds=s)) for s in (60, 90, 3600, 86400, 7200)] == ["1m", "90s", "1h", "1d", "2h"]
