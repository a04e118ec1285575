"""Which alert a match belongs to: the deterministic identity that makes reruns idempotent.

* single-event rule: one alert per event (rule id + version + event id);
* with ``suppress: {by, for}``: one alert per value of ``by`` per period (``floor(@timestamp / for)``);
* correlation: one alert per group per period (``floor(anchor time / period)``; the period is
  ``suppress.for`` or the timespan).

Identity depends only on the data, never on when or how often the runner looked at it, so
overlapping cycles, restarts after kill -9, late data and retro-hunts land on the same alert ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from siem.detect import ir
from siem.detect.engines import micros
from siem.detect.evaluate import values
from siem.detect.rules import Rule
from siem.detect.windows import Window

AlertKey = tuple[Any, ...]


def _period_us(rule: Rule) -> int:
    if rule.suppress is not None:
        return int(rule.suppress.period.total_seconds() * 1_000_000)
    assert rule.correlation is not None
    return int(rule.correlation.timespan.total_seconds() * 1_000_000)


def event_key(rule: Rule, event_id: str, doc: dict[str, Any]) -> AlertKey:
    if rule.suppress is None:
        return ("event", event_id)
    by = tuple(
        ",".join(sorted({t for v in values(doc, name) if (t := ir.text_form(v)) is not None}))
        for name in rule.suppress.by
    )
    ts = doc.get("@timestamp")
    bucket = micros(ts) // _period_us(rule) if isinstance(ts, str) else 0
    return ("suppress", by, bucket)


def window_key(rule: Rule, window: Window) -> AlertKey:
    return ("window", window.group, window.start // _period_us(rule))


def alert_keys(
    rule: Rule,
    *,
    events: Sequence[tuple[str, dict[str, Any]]] = (),
    windows: Sequence[Window] = (),
) -> set[AlertKey]:
    keys = {event_key(rule, i, d) for i, d in events}
    keys |= {window_key(rule, w) for w in windows}
    return keys


def alert_id(rule: Rule, key: AlertKey) -> str:
    """Stable across processes and stores: a hash of rule id, rule version and the key."""
    material = orjson.dumps([rule.id, rule.version, list(key)])
    return hashlib.blake2b(material, digest_size=16).hexdigest()
