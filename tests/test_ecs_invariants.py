"""ECS invariants every log type keeps, checked on every event of every shared sample.

The point of the project is that an analyst follows one IP or one user across all sources; that
only works if every source lands in the same fields with the same kinds of values. The per-type
tests compare each type with Elastic's oracle; these check what must hold whatever the type:
valid UTC timestamps, ECS categorization values, valid and canonical IPs (the embedded store
matches ``related.ip`` as strings), every IP and user of the event in ``related.*`` (the pivot
fields), no ``-``/empty placeholders, consistent ``*.address``/``*.ip``, the right dataset.

One test per (dataset, invariant), so a known violation in a file owned elsewhere is one precise
strict xfail (see KNOWN) and everything else keeps being checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from oracle import SAMPLES, get, parse_file

from siem import formats

# Sample directory → the log type forced on its files (None: routed by content, the envelope
# decides each event's dataset).
SAMPLE_DIRS: dict[str, str | None] = {
    "alb": "aws.alb",
    "waf": "aws.waf",
    "cloudtrail": "aws.cloudtrail",
    "vpcflow": "aws.vpcflow",
    "route53_resolver": "aws.route53_resolver",
    "network_firewall": "aws.network_firewall",
    "k8s_audit": "kubernetes.audit",
    "syslog": "linux.syslog",
    "auth": "linux.auth",
    "auditd": "linux.auditd",
    "nginx_access": "nginx.access",
    "nginx_error": "nginx.error",
    "apache_access": "apache.access",
    "apache_error": "apache.error",
    "cloudwatch_logs": None,
}
DATASETS = sorted({d for d in SAMPLE_DIRS.values() if d} | {"aws.cloudwatch_logs"})

# ECS 8.x categorization fields, allowed values.
KINDS = {"alert", "asset", "enrichment", "event", "metric", "pipeline_error", "signal", "state"}
CATEGORIES = {
    "api", "authentication", "configuration", "database", "driver", "email", "file", "host", "iam",
    "intrusion_detection", "library", "malware", "network", "package", "process", "registry", "session",
    "threat", "vulnerability", "web",
}  # fmt: skip
TYPES = {
    "access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied", "device", "end",
    "error", "group", "indicator", "info", "installation", "protocol", "start", "user",
}  # fmt: skip
OUTCOMES = {"success", "failure", "unknown"}

# Free-form payloads copied as the producer wrote them: placeholders and IPs in there are data.
FREE_FORM = (
    "message",
    "aws.cloudtrail.request_parameters",
    "aws.cloudtrail.response_elements",
    "aws.cloudtrail.additional_eventdata",
    "aws.cloudtrail.service_event_details",
    "kubernetes.audit.requestObject",
    "kubernetes.audit.responseObject",
    "kubernetes.audit.annotations",
)
# Where an IP-looking string is a name, not an address of the event: a URL's or DNS name's host
# part, and DNS answer data (a PTR record's data names a host).
NOT_ADDRESSES = re.compile(r"^(url\.|related\.hosts$|dns\.answers\.data$)|\.domain$")
ENDPOINTS = ("source", "destination", "client", "server")
# A user name that is the log's way of saying "no user": never a person to pivot on.
JUNK_USERS = {"-", "?", "unknown", "(unknown)", "null", "(null)", "none", "n/a"}
# Every user-name field: user.name, user.effective.name, source.user.name, user.target.name...
USER_NAME = re.compile(r"^(?:\w+\.)*user(?:\.(?:effective|target|audit|saved|filesystem|changes))?\.name$")
# Samples that legitimately yield no event or some dead letters: (has events, dead letters).
EVENTLESS_OR_DEAD_LETTERED = {
    "cloudtrail/test-cloudtrail-digest-json.log": (False, 0),  # a digest file: skipped, no event
    "auditd/test-auditd-raw.log": (True, 1),  # a line without an audit(epoch:serial) header
    "cloudwatch_logs/kinesisFirehosePutEvent.json": (False, 2),  # Firehose records that are not CloudWatch
}


@dataclass(frozen=True, slots=True)
class Sampled:
    """One event with where it came from (the sample directory and the event's index in its file)."""

    where: str
    directory: str
    doc: dict[str, Any]


def _sample_files() -> Iterator[tuple[str, Path]]:
    for directory in SAMPLE_DIRS:
        for path in sorted((SAMPLES / directory).iterdir()):
            name = path.name
            if name.endswith(("-expected.json", ".yml")):
                continue
            if name.startswith("test-") and name.endswith("-log.json"):
                continue  # Elastic's Firehose HTTP-endpoint envelopes: out of scope (docs/log-types)
            yield directory, path


@cache
def parsed() -> dict[str, tuple[list[dict[str, Any]], int]]:
    """(events, dead-letter count) of every sample file, by "directory/name" (parsed once per session)."""
    out: dict[str, tuple[list[dict[str, Any]], int]] = {}
    for directory, path in _sample_files():
        events, letters = parse_file(path, SAMPLE_DIRS[directory])
        out[f"{directory}/{path.name}"] = (events, len(letters))
    return out


@cache
def corpus() -> dict[str, list[Sampled]]:
    """Every event of every sample, by the dataset it was indexed under."""
    by_dataset: dict[str, list[Sampled]] = {d: [] for d in DATASETS}
    for name, (events, _) in parsed().items():
        directory = name.split("/", 1)[0]
        for i, doc in enumerate(events):
            dataset = get(doc, "event.dataset")
            by_dataset.setdefault(str(dataset), []).append(Sampled(f"{name}#{i}", directory, doc))
    return by_dataset


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar, list items under their list's path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value, path)
    else:
        yield path, node


def _free_form(path: str) -> bool:
    return any(path == f or path.startswith(f + ".") for f in FREE_FORM)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except (ValueError, TypeError):
        return False
    return True


def _utc_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None


# Each invariant yields one message per violation in a document.
Check = Callable[[Sampled], Iterator[str]]


def timestamps(s: Sampled) -> Iterator[str]:
    """@timestamp and event.ingested are ISO 8601 UTC with a Z; start/end/created too, start <= end."""
    for field in ("@timestamp", "event.ingested", "event.start", "event.end", "event.created"):
        value = get(s.doc, field)
        if (value is not None or field in ("@timestamp", "event.ingested")) and _utc_instant(value) is None:
            yield f"{field}={value!r}"
    start, end = _utc_instant(get(s.doc, "event.start")), _utc_instant(get(s.doc, "event.end"))
    if start and end and start > end:
        yield f"event.start {start} after event.end {end}"


def event_kind(s: Sampled) -> Iterator[str]:
    if get(s.doc, "event.kind") not in KINDS:
        yield f"event.kind={get(s.doc, 'event.kind')!r}"


def event_category(s: Sampled) -> Iterator[str]:
    value = get(s.doc, "event.category")
    if value is not None and not (isinstance(value, list) and value and set(value) <= CATEGORIES):
        yield f"event.category={value!r}"


def event_type(s: Sampled) -> Iterator[str]:
    value = get(s.doc, "event.type")
    if value is not None and not (isinstance(value, list) and value and set(value) <= TYPES):
        yield f"event.type={value!r}"


def categorized_in_pairs(s: Sampled) -> Iterator[str]:
    """A category without a type (or the reverse) falls out of `category:X AND type:Y` filters."""
    category, type_ = get(s.doc, "event.category"), get(s.doc, "event.type")
    if bool(category) != bool(type_):
        yield f"event.category={category!r} event.type={type_!r} action={get(s.doc, 'event.action')!r}"


def event_outcome(s: Sampled) -> Iterator[str]:
    value = get(s.doc, "event.outcome")
    if value is not None and value not in OUTCOMES:
        yield f"event.outcome={value!r}"


def ip_fields(s: Sampled) -> Iterator[str]:
    """Every *.ip (and *_ip) holds IPs only, in canonical form: pivots compare strings."""
    for path, value in leaves(s.doc):
        leaf = path.rsplit(".", 1)[-1]
        if leaf == "ip" or leaf.endswith("_ip"):
            if not _is_ip(value):
                yield f"{path}={value!r} is not an IP"
            elif str(ipaddress.ip_address(value)) != value:
                yield f"{path}={value!r} is not canonical ({ipaddress.ip_address(value)})"


def ports(s: Sampled) -> Iterator[str]:
    for path, value in leaves(s.doc):
        if path.rsplit(".", 1)[-1] == "port" and not (type(value) is int and 0 <= value <= 65535):
            yield f"{path}={value!r}"


def counters(s: Sampled) -> Iterator[str]:
    for path, value in leaves(s.doc):
        if path.rsplit(".", 1)[-1] in ("bytes", "packets") and not (type(value) is int and value >= 0):
            yield f"{path}={value!r}"


def related_ip(s: Sampled) -> Iterator[str]:
    """related.ip holds every source/destination/client/server/host IP."""
    related = _as_list(get(s.doc, "related.ip"))
    for part in (*ENDPOINTS, "host"):
        for ip in _as_list(get(s.doc, f"{part}.ip")):
            if ip not in related:
                yield f"{part}.ip={ip!r} not in related.ip={related!r}"


def every_ip_pivotable(s: Sampled) -> Iterator[str]:
    """Any address the event carries (vendor fields too) is in related.ip, so a pivot finds it."""
    related = set(_as_list(get(s.doc, "related.ip")))
    for path, value in leaves(s.doc):
        if not isinstance(value, str) or _free_form(path) or NOT_ADDRESSES.search(path):
            continue
        if _is_ip(value.strip("[]")) and str(ipaddress.ip_address(value.strip("[]"))) not in related:
            yield f"{path}={value!r} not in related.ip={sorted(related)!r}"


def related_user(s: Sampled) -> Iterator[str]:
    """related.user holds user.name and every other user-name field."""
    related = _as_list(get(s.doc, "related.user"))
    for path, value in leaves(s.doc):
        if USER_NAME.match(path) and value not in related:
            yield f"{path}={value!r} not in related.user={related!r}"


def no_placeholders(s: Sampled) -> Iterator[str]:
    """'-' and empty strings mean "absent": the field must be dropped, not indexed."""
    for path, value in leaves(s.doc):
        if isinstance(value, str) and value.strip() in ("", "-") and not _free_form(path):
            yield f"{path}={value!r}"


def user_names(s: Sampled) -> Iterator[str]:
    """User names (and related.user) are real names: no placeholder, padding or control characters."""
    for path, value in leaves(s.doc):
        if USER_NAME.match(path) or path == "related.user":
            ok = isinstance(value, str) and value == value.strip() and value.isprintable()
            if not ok or value.lower() in JUNK_USERS:
                yield f"{path}={value!r}"


def address_matches_ip(s: Sampled) -> Iterator[str]:
    """An IP in *.address is the same IP in *.ip (a hostname there is fine, an IP elsewhere is not)."""
    for part in ENDPOINTS:
        address, ip = get(s.doc, f"{part}.address"), get(s.doc, f"{part}.ip")
        if not (isinstance(address, str) and _is_ip(address.strip("[]"))):
            continue
        if ip is None or ipaddress.ip_address(address.strip("[]")) != ipaddress.ip_address(ip):
            yield f"{part}.address={address!r} but {part}.ip={ip!r}"


def dataset(s: Sampled) -> Iterator[str]:
    """The forced type's dataset; an envelope's events carry a registered dataset, echoed in data_stream."""
    value, forced = get(s.doc, "event.dataset"), SAMPLE_DIRS[s.directory]
    if (forced and value != forced) or value not in formats.registry():
        yield f"event.dataset={value!r}, expected {forced or 'a registered dataset'}"
    if get(s.doc, "data_stream.dataset") != value:
        yield f"data_stream.dataset={get(s.doc, 'data_stream.dataset')!r} != event.dataset={value!r}"


INVARIANTS: dict[str, Check] = {
    f.__name__: f
    for f in (
        timestamps,
        event_kind,
        event_category,
        event_type,
        categorized_in_pairs,
        event_outcome,
        ip_fields,
        ports,
        counters,
        related_ip,
        every_ip_pivotable,
        related_user,
        no_placeholders,
        user_names,
        address_matches_ip,
        dataset,
    )
}

# Violations in files owned elsewhere, to be fixed there; strict, so a fix makes the xfail fail.
KNOWN: dict[tuple[str, str], str] = {}


def _cases() -> list[Any]:
    cases = []
    for ds in DATASETS:
        for name in INVARIANTS:
            reason = KNOWN.get((ds, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(ds, name, marks=marks, id=f"{ds}-{name}"))
    return cases


@pytest.mark.parametrize(("ds", "invariant"), _cases())
def test_invariant_holds_on_every_event(ds: str, invariant: str) -> None:
    events = corpus()[ds]
    assert events, f"no sample event of {ds}: the invariants would hold vacuously"
    check = INVARIANTS[invariant]
    problems = [f"{s.where}: {problem}" for s in events for problem in check(s)]
    assert not problems, f"{len(problems)} violation(s) of {invariant} in {ds}:\n" + "\n".join(problems[:20])


def test_every_event_is_checked_under_a_known_dataset() -> None:
    """No sample produces a dataset outside DATASETS (its events would escape every check)."""
    assert set(corpus()) == set(DATASETS)


def test_every_sample_file_contributes_events() -> None:
    """A sample that stops parsing must not shrink the checked corpus silently."""
    outcome = {name: (len(events) > 0, letters) for name, (events, letters) in parsed().items()}
    odd = {name: seen for name, seen in outcome.items() if seen != (True, 0)}
    assert odd == EVENTLESS_OR_DEAD_LETTERED


# One document breaking each invariant: proves the check can fail (a check that never fires passes
# on every sample too).
_OK = {"@timestamp": "2024-01-01T00:00:00Z", "event": {"kind": "event", "ingested": "2024-01-01T00:00:01Z"}}
BROKEN: dict[str, dict[str, Any]] = {
    "timestamps": {**_OK, "@timestamp": "2024-01-01T00:00:00+09:00"},
    "event_kind": {**_OK, "event": {**_OK["event"], "kind": "log"}},
    "event_category": {**_OK, "event": {**_OK["event"], "category": "web"}},
    "event_type": {**_OK, "event": {**_OK["event"], "type": ["stop"]}},
    "categorized_in_pairs": {**_OK, "event": {**_OK["event"], "category": ["session"]}},
    "event_outcome": {**_OK, "event": {**_OK["event"], "outcome": "failed"}},
    "ip_fields": {**_OK, "host": {"ip": ["10.0.0.1", "2001:DB8::1"]}, "related": {"ip": ["10.0.0.1", "2001:DB8::1"]}},
    "ports": {**_OK, "source": {"port": "443"}},
    "counters": {**_OK, "network": {"bytes": -1}},
    "related_ip": {**_OK, "destination": {"ip": "10.0.0.2"}},
    "every_ip_pivotable": {**_OK, "aws": {"vpcflow": {"pkt_srcaddr": "10.0.0.3"}}},
    "related_user": {**_OK, "user": {"effective": {"name": "root"}}},
    "no_placeholders": {**_OK, "http": {"request": {"referrer": "-"}}},
    "user_names": {**_OK, "user": {"name": "unknown"}, "related": {"user": ["unknown"]}},
    "address_matches_ip": {**_OK, "client": {"address": "10.0.0.4"}},
    "dataset": {**_OK, "event": {**_OK["event"], "dataset": "aws.alb"}, "data_stream": {"dataset": "aws.alb"}},
}


def test_every_invariant_can_fail() -> None:
    assert set(BROKEN) == set(INVARIANTS)
    for name, doc in BROKEN.items():
        assert list(INVARIANTS[name](Sampled("broken", "waf", doc))), f"{name} did not flag {doc}"
        if name != "dataset":
            assert not list(INVARIANTS[name](Sampled("ok", "waf", _OK))), f"{name} flags a clean document"
