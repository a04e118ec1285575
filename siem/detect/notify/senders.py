"""What each target receives: a request built from the stored alert document, the route and secrets.

Senders are pure: ``(route, alert, kind, env, now) -> HttpRequest``. Secrets are read from the
environment here, at send time, and go only into the request (a header, the URL, the PagerDuty
body) — never into the outbox record, a log line or an error. Posting is the outbox's job.

* webhook — the alert document as JSON, signed: ``X-Siem-Signature: v1=<hex HMAC-SHA256 of
  "{timestamp}.{body}">`` with ``X-Siem-Timestamp`` (unix seconds); see docs/notifications.md.
* slack — a Block Kit message to the incoming-webhook URL (the URL is the secret).
* pagerduty — Events v2 ``trigger`` / ``resolve`` sharing one ``dedup_key`` per rule and group.
* apprise — any Apprise target, from an Apprise URL in ``url_env`` (optional dependency).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from siem.detect.notify.routes import NotifyRoute

SIGNATURE_VERSION = "v1"
_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "informational": "info"}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the URL and headers may hold secrets; never print them
        return f"HttpRequest(<redacted>, {len(self.body)} bytes)"


Sender = Callable[[NotifyRoute, dict[str, Any], str, Mapping[str, str] | None, float], "HttpRequest | DirectDelivery"]


def idempotency_key(alert: dict[str, Any], kind: str) -> str:
    return f"{alert_id(alert)}:{kind}"


def alert_id(alert: dict[str, Any]) -> str:
    value = (alert.get("alert") or {}).get("id")
    if not isinstance(value, str) or not value:
        raise ValueError("the alert document has no alert.id")
    return value


def group_key(alert: dict[str, Any]) -> str:
    """The alert's group key as text: ``alert.group_key``, else ``alert.group`` (a string or a field map)."""
    a = alert.get("alert") or {}
    key = a.get("group_key")
    if isinstance(key, str) and key:
        return key
    group = a.get("group")
    if isinstance(group, dict):
        return ", ".join(f"{k}={v}" for k, v in group.items())
    return str(group) if group else ""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``."""
    message = str(timestamp).encode() + b"." + body
    return f"{SIGNATURE_VERSION}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _common_headers(alert: dict[str, Any], kind: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key(alert, kind),
        "X-Siem-Delivery": kind,
        "User-Agent": "siem-notify/1",
    }


def webhook_request(
    route: NotifyRoute, alert: dict[str, Any], kind: str, env: Mapping[str, str] | None, now: float
) -> HttpRequest:
    body = orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)
    timestamp = int(now)
    headers = _common_headers(alert, kind)
    headers["X-Siem-Timestamp"] = str(timestamp)
    headers["X-Siem-Signature"] = sign(route.secret(env), timestamp, body)
    return HttpRequest(route.resolve_url(env), body, headers)


def _slack_escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: dict[str, Any], kind: str) -> dict[str, Any]:
    """Block Kit: header (level + rule), the one-line reason, then the facts, author credited."""
    a = alert.get("alert") or {}
    rule = alert.get("rule") or {}
    level = str(rule.get("level") or "unknown").upper()
    name = str(rule.get("name") or rule.get("id") or "rule")
    prefix = "RESOLVED" if kind == "resolve" else level
    headline = _cut(f"{prefix}: {name}", 150)
    reason = str(a.get("reason") or "")
    author = _slack_escape(rule.get("author") or "unknown")

    def fact(label: str, value: object) -> dict[str, str]:
        return {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_slack_escape(value)}", 2000)}

    return {
        "text": _cut(f"{headline} — {reason}", 3000),  # fallback for notifications and screen readers
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline, "emoji": False}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_slack_escape(reason) or " ", 3000)}},
            {
                "type": "section",
                "fields": [
                    fact("Rule author", rule.get("author") or "unknown"),
                    fact("Group", group_key(alert) or "-"),
                    fact("Count", a.get("count", "-")),
                    fact("Status", a.get("status") or "-"),
                    fact("First seen", a.get("first_seen") or "-"),
                    fact("Last seen", a.get("last_seen") or "-"),
                    fact("Alert id", a.get("id") or "-"),
                    fact("Rule id", rule.get("id") or "-"),
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(f"Detection rule by {author}", 2000)}],
            },
        ],
    }


def slack_request(
    route: NotifyRoute, alert: dict[str, Any], kind: str, env: Mapping[str, str] | None, now: float
) -> HttpRequest:
    body = orjson.dumps(slack_message(alert, kind))
    return HttpRequest(route.resolve_url(env), body, _common_headers(alert, kind))


def dedup_key(alert: dict[str, Any]) -> str:
    """Stable across updates of one incident: the rule id plus the alert's group key.

    The rule id is part of it so that two rules grouping on the same entity (one IP) stay two
    incidents. PagerDuty allows 255 characters; longer keys are hashed.
    """
    rule_id = str((alert.get("rule") or {}).get("id") or "")
    group = group_key(alert) or alert_id(alert)
    key = f"siem:{rule_id}:{group}"
    if len(key) > 255:
        key = "siem:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def pagerduty_event(routing_key: str, alert: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(alert)}
    a = alert.get("alert") or {}
    rule = alert.get("rule") or {}
    level = str(rule.get("level") or "medium")
    summary = f"[{level}] {rule.get('name') or rule.get('id')}: {a.get('reason') or ''}".strip()
    payload: dict[str, Any] = {
        "summary": _cut(summary, 1024),
        "severity": _PD_SEVERITY.get(level, "warning"),
        "source": _cut(group_key(alert) or "siem", 255),
        "component": str(rule.get("id") or ""),
        "class": level,
        "custom_details": {
            "alert_id": a.get("id"),
            "rule_id": rule.get("id"),
            "rule_name": rule.get("name"),
            "rule_author": rule.get("author"),
            "group": group_key(alert),
            "count": a.get("count"),
            "first_seen": a.get("first_seen"),
            "last_seen": a.get("last_seen"),
            "reason": a.get("reason"),
            "event_severity": (alert.get("event") or {}).get("severity"),
        },
    }
    if a.get("last_seen"):
        payload["timestamp"] = a["last_seen"]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "client": "siem",
        "payload": payload,
    }


def pagerduty_request(
    route: NotifyRoute, alert: dict[str, Any], kind: str, env: Mapping[str, str] | None, now: float
) -> HttpRequest:
    body = orjson.dumps(pagerduty_event(route.secret(env), alert, kind))
    return HttpRequest(route.resolve_url(env), body, _common_headers(alert, kind))


@dataclass(frozen=True, slots=True)
class DirectDelivery:
    """A target reached through a library instead of one HTTP request we make (Apprise).

    ``send()`` returns ``(result, error)``: result ``delivered``, ``retry`` or ``dead``.
    """

    send: Callable[[], tuple[str, str | None]]

    def __repr__(self) -> str:
        return "DirectDelivery(<redacted>)"


def apprise_text(alert: dict[str, Any], kind: str) -> tuple[str, str]:
    """(title, body) for Apprise targets: the Slack facts as plain text, the author credited."""
    a = alert.get("alert") or {}
    rule = alert.get("rule") or {}
    prefix = "RESOLVED" if kind == "resolve" else str(rule.get("level") or "unknown").upper()
    title = f"{prefix}: {rule.get('name') or rule.get('id') or 'rule'}"
    body = "\n".join(
        [
            str(a.get("reason") or ""),
            f"Rule: {rule.get('name')} ({rule.get('id')}) by {rule.get('author') or 'unknown'}",
            f"Group: {group_key(alert) or '-'} | Count: {a.get('count', '-')}",
            f"First seen: {a.get('first_seen') or '-'} | Last seen: {a.get('last_seen') or '-'}",
            f"Alert id: {a.get('id')}",
        ]
    )
    return title, body


def apprise_request(
    route: NotifyRoute, alert: dict[str, Any], kind: str, env: Mapping[str, str] | None, now: float
) -> DirectDelivery:
    """Any of Apprise's targets (Teams, Telegram, email, ...) from an Apprise URL in ``url_env``.

    Apprise only says whether it worked, so every failure is retried until the outbox's max_age,
    and a repeat cannot be deduplicated by the receiver as the webhook's Idempotency-Key allows.
    """
    url = route.resolve_url(env)

    def send() -> tuple[str, str | None]:
        try:
            import apprise
        except ImportError:
            return "retry", "apprise is not installed (pip install apprise)"
        targets = apprise.Apprise()
        if not targets.add(url):
            return "dead", f"the Apprise URL in ${route.url_env} is not valid"
        title, body = apprise_text(alert, kind)
        level = str((alert.get("rule") or {}).get("level") or "")
        notify_type = (
            apprise.NotifyType.SUCCESS
            if kind == "resolve"
            else apprise.NotifyType.FAILURE
            if level in ("high", "critical")
            else apprise.NotifyType.WARNING
            if level == "medium"
            else apprise.NotifyType.INFO
        )
        if targets.notify(title=title, body=body, notify_type=notify_type):
            return "delivered", None
        return "retry", "apprise reported a failed delivery (details in the apprise log)"

    return DirectDelivery(send)


SENDERS: dict[str, Sender] = {
    "webhook": webhook_request,
    "slack": slack_request,
    "pagerduty": pagerduty_request,
    "apprise": apprise_request,
}
