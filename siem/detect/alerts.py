"""Alert documents: what an analyst (and a notification) sees, built only from the rule and the data.

An alert's identity comes from ``siem.detect.fold`` (rule id + version + event id, suppression key
and period, or correlation group and period). Its *content* is a pure function of the rule and of
the events it covers — never of when or how often the runner looked — so a rerun, an overlapping
cycle or a retro-hunt rebuilds the same document, and merging it onto the stored one changes
nothing unless the data changed (late events: count, first_seen or last_seen move).

ECS: ``event.kind: alert``, ``event.severity``, ``event.action`` (of the covered events),
``rule.*``, ``threat.*`` (from ``attack.*`` tags), the group-by values at their own paths,
``related.ip``/``related.user`` (union over the covered events), the ECS fields of the (first)
matched event for single-event rules, and ``alert.*`` for the lifecycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from siem.detect.engines import micros
from siem.detect.rules import Rule
from siem.detect.windows import Shown, shown, texts
from siem.normalize import iso_utc

STATUSES = ("open", "acknowledged", "closed")
# ECS field sets copied from the matched event of a single-event rule.
EVENT_FIELDS = ("source", "destination", "user", "cloud", "host", "url", "http", "process", "orchestrator")
# What a recomputation may change; anything else on a stored alert (status, notifications,
# detection time) belongs to the alert's lifecycle and is kept.
CONTENT_KEYS = ("count", "first_seen", "last_seen")

TACTICS = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
_TECHNIQUE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")


def iso_of_micros(us: int) -> str:
    return iso_utc(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us))


def duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ruleset(rule: Rule) -> str:
    return "sigmahq" if any(part.lower() == "sigmahq" for part in rule.path.parts) else "siem"


def rule_fields(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.title,
        "description": rule.description,
        "author": rule.author,
        "reference": list(rule.references),
        "version": rule.version,
        "ruleset": ruleset(rule),
        "license": rule.license,
        "level": rule.level,
    }


def threat_fields(tags: Iterable[str]) -> dict[str, Any]:
    """ATT&CK tags (``attack.t1110.001``, ``attack.credential-access``) as ECS ``threat.*``."""
    techniques: list[str] = []
    subtechniques: list[str] = []
    tactic_ids: list[str] = []
    tactic_names: list[str] = []
    for tag in tags:
        namespace, _, name = tag.lower().partition(".")
        if namespace != "attack":
            continue
        match = _TECHNIQUE.match(name)
        if match:
            technique = f"T{match.group(1)}"
            if technique not in techniques:
                techniques.append(technique)
            if match.group(2) and f"{technique}.{match.group(2)}" not in subtechniques:
                subtechniques.append(f"{technique}.{match.group(2)}")
            continue
        tactic = TACTICS.get(name.replace("-", "_"))
        if tactic and tactic[0] not in tactic_ids:
            tactic_ids.append(tactic[0])
            tactic_names.append(tactic[1])
    if not techniques and not tactic_ids:
        return {}
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if techniques:
        threat["technique"] = {"id": techniques}
        if subtechniques:
            threat["technique"]["subtechnique"] = {"id": subtechniques}
    if tactic_ids:
        threat["tactic"] = {"id": tactic_ids, "name": tactic_names}
    return threat


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Put a group-by value at its own dotted path, unless something else already lives there."""
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(leaf, value)


def _describe(doc: dict[str, Any]) -> str:
    parts = []
    action = texts(doc, "event.action")
    if action:
        parts.append(action[0])
    user = texts(doc, "user.name")
    if user:
        parts.append(f"by {user[0]}")
    source = texts(doc, "source.ip") or texts(doc, "source.address")
    if source:
        parts.append(f"from {source[0]}")
    return " ".join(parts)


class Covered:
    """The events of one alert, folded as they stream in (no need to hold them all)."""

    def __init__(self, max_event_ids: int = 100) -> None:
        self.max_event_ids = max_event_ids
        self.count = 0
        self.first: tuple[int, str, dict[str, Any]] | None = None
        self.last_ts: int | None = None
        self.ids: list[tuple[int, str]] = []
        self.related_ip: set[str] = set()
        self.related_user: set[str] = set()
        self.actions: set[str] = set()

    def add(self, doc_id: str, ts: int, doc: dict[str, Any]) -> None:
        """One event (each event once: the runner deduplicates)."""
        self.add_shown(doc_id, ts, shown(doc), doc)

    def add_shown(self, doc_id: str, ts: int, facts: Shown, doc: dict[str, Any] | None = None) -> None:
        """One event of which only what a correlation alert shows was read (``windows.SHOWN``)."""
        self.count += 1
        if self.first is None or (ts, doc_id) < self.first[:2]:
            self.first = (ts, doc_id, doc or {})
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        self.ids.append((ts, doc_id))
        if len(self.ids) > 4 * self.max_event_ids:
            self.ids = sorted(self.ids)[: self.max_event_ids]
        ips, users, actions = facts
        self.related_ip.update(ips)
        self.related_user.update(users)
        self.actions.update(actions)

    @property
    def event_ids(self) -> list[str]:
        return [i for _, i in sorted(self.ids)[: self.max_event_ids]]


def build(
    rule: Rule,
    alert_id: str,
    covered: Covered,
    *,
    group: dict[str, str],
    window_start: int,
    value: int | None = None,
) -> dict[str, Any]:
    """The alert document of the events it covers; independent of the order they were found in."""
    assert covered.first is not None and covered.last_ts is not None
    first_ts, first_id, first_doc = covered.first
    doc: dict[str, Any] = {}
    if rule.correlation is None:
        for name in EVENT_FIELDS:
            if isinstance(first_doc.get(name), dict):
                doc[name] = first_doc[name]
    for path, val in group.items():
        _set_path(doc, path, val)
    doc["event"] = {"kind": "alert", "severity": rule.severity, "action": sorted(covered.actions)}
    doc["rule"] = rule_fields(rule)
    threat = threat_fields(rule.tags)
    if threat:
        doc["threat"] = threat
    related = {k: sorted(v) for k, v in (("ip", covered.related_ip), ("user", covered.related_user)) if v}
    if related:
        doc["related"] = related
    doc["alert"] = {
        "id": alert_id,
        "status": "open",
        "status_by": None,
        "status_reason": None,
        "status_at": None,
        "count": covered.count,
        "first_seen": iso_of_micros(first_ts),
        "last_seen": iso_of_micros(covered.last_ts),
        "reason": reason(rule, covered.count, group, value, first_doc),
        "group": dict(group),
        "group_key": group_key(group) if group else first_id,
        "event_ids": covered.event_ids,
        "window_start": iso_of_micros(window_start),
        "notifications": {},
    }
    return doc


def group_key(group: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())


def reason(rule: Rule, count: int, group: dict[str, str], value: int | None, first: dict[str, Any]) -> str:
    """One human line: "5 WAF block events from 203.0.113.7 in 60s"."""
    where = ", ".join(v for v in group.values() if v) or None
    corr = rule.correlation
    if corr is not None:
        span = duration_text(corr.timespan)
        of = " / ".join(r.title for r in corr.rules) or rule.title
        src = f" from {where}" if where else ""
        if corr.type == "event_count":
            return f"{value} {of} events{src} in {span}"
        if corr.type == "value_count":
            return f"{value} distinct {corr.value_field}{src} in {span} ({of})"
        if corr.type == "temporal_ordered":
            return f"{of} in order{src} within {span}"
        return f"{value} of {len(corr.rules)} rules ({of}){src} within {span}"
    if rule.suppress is not None:
        src = f" from {where}" if where else ""
        return f"{count} {rule.title} events{src} in {duration_text(rule.suppress.period)}"
    what = _describe(first)
    return f"{rule.title}: {what}" if what else rule.title


def merge(stored: dict[str, Any] | None, fresh: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(document to keep, "new" | "updated" | "same"). Lifecycle fields of a stored alert survive."""
    if stored is None:
        return fresh, "new"
    old = stored.get("alert", {})
    new = fresh["alert"]
    # only ever grow: events an earlier look saw and a later one cannot (deleted indices) stay counted
    if new["count"] < old.get("count", 0):
        return stored, "same"
    if all(old.get(k) == new[k] for k in CONTENT_KEYS):
        return stored, "same"
    doc = dict(fresh)
    doc["@timestamp"] = stored.get("@timestamp", fresh.get("@timestamp"))
    doc["alert"] = {
        **new,
        **{k: old.get(k) for k in ("status", "status_by", "status_reason", "status_at", "notifications") if k in old},
    }
    return doc, "updated"


def event_ts(doc: dict[str, Any]) -> int:
    ts = doc.get("@timestamp")
    return micros(ts) if isinstance(ts, str) else 0
