"""The delivery loop: record first, send, mark the result — once, signed, never silently lost.

``enqueue`` records one notification per (alert, route, kind) in the store BEFORE anything is
sent; the id is deterministic, so recording twice changes nothing. ``deliver_due`` then, for each
notification that is due:

1. claims it with a compare-and-set (state ``sending``, a lease, attempts + 1) — a loop that loses
   the race skips it, so two loops on one store never deliver the same notification twice;
2. builds the request (secrets from the environment at this moment) and POSTs it with TLS
   verification on, a timeout, and no redirects;
3. records the result: ``delivered`` on 2xx; back to ``pending`` with a later ``next_attempt_at``
   on connection errors, timeouts, 408/425/429 and 5xx (exponential backoff with full jitter, or
   exactly ``Retry-After`` when the receiver says so); ``dead`` on any other answer (400, 404,
   410...) or once the notification is older than ``max_age`` (or ``max_attempts`` is reached).
   A dead notification stays in the store with its last error and status and is logged as an error.

A receiver that is down for days gets every notification exactly once when it returns, as long as
it returns within ``max_age``. A loop that dies between sending and recording the result leaves a
lease that expires, after which the notification is sent again with the same ``Idempotency-Key``
— the one case a receiver can see a repeat, and the reason the key exists. A ``resolve`` waits
until the ``trigger`` of the same alert and route is final, so a PagerDuty incident is never
resolved before it is opened.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from siem.detect.notify.outbox_store import (
    FINAL,
    Notification,
    notification_id,
    open_outbox_store,
)
from siem.detect.notify.routes import MissingSecret, NotifyRoute, select_routes
from siem.detect.notify.senders import SENDERS, DirectDelivery, Sender, alert_id

log = logging.getLogger(__name__)

KINDS = ("trigger", "resolve")
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER = 24 * 3600.0
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0  # claimed by another loop, or a resolve waiting for its trigger


@dataclass(frozen=True, slots=True)
class NotificationState:
    state: str  # pending | sending | delivered | dead
    kind: str
    attempts: int
    last_error: str | None
    last_status: int | None
    next_attempt_at: float | None
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: str  # delivered | retry | dead
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


class _Redactor(logging.Filter):
    """Scrubs secret values (and the paths of secret URLs) from urllib3's debug log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            scrubbed = scrub(message, self.secrets)
            if scrubbed != message:
                record.msg, record.args = scrubbed, ()
        return True


_REDACTOR = _Redactor()
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "apprise"):
    logging.getLogger(_name).addFilter(_REDACTOR)


def _variants(secret: str) -> list[str]:
    """The secret and the parts of it that get logged on their own when it is a URL.

    urllib3 logs the path, Apprise logs the URL rebuilt with another scheme, and Apprise URLs keep
    tokens in the host position (``tgram://bottoken/chat``): path, query, password, a non-http
    host and every long path segment are scrubbed as well.
    """
    variants = [secret]
    parts = urlsplit(secret)
    if parts.scheme and parts.netloc:
        if len(parts.path) > 1:
            variants.append(parts.path + (f"?{parts.query}" if parts.query else ""))
            variants.append(parts.path)
        if parts.query:
            variants.append(parts.query)
        if parts.password:
            variants.append(parts.password)
        if parts.scheme not in ("http", "https") and len(parts.netloc) >= 8:
            variants.append(parts.netloc.rsplit("@", 1)[-1].split(":")[0])
        variants.extend(segment for segment in parts.path.split("/") if len(segment) >= 12)
    return [v for v in variants if v]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({v for s in secrets if s for v in _variants(s)}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def _epoch(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def _due(n: Notification, now: float) -> bool:
    if n.state == "pending":
        return n.next_attempt_at <= now
    return n.state == "sending" and n.lease_until is not None and n.lease_until <= now


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Outbox:
    """Notifications recorded in the store, delivered by ``deliver_due`` (see the module docstring)."""

    def __init__(
        self,
        store: Any,
        routes: Iterable[NotifyRoute] = (),
        *,
        env: Mapping[str, str] | None = None,
        senders: Mapping[str, Sender] | None = None,
        session: requests.Session | None = None,
        base_delay: float = 30.0,
        max_delay: float = 3600.0,
        max_age: float = 7 * 24 * 3600.0,
        max_attempts: int | None = None,
        batch: int = 200,
        rng: random.Random | None = None,
    ) -> None:
        self.store = open_outbox_store(store)
        self.routes: dict[str, NotifyRoute] = {route.name: route for route in routes}
        self.env = env
        self.senders = dict(senders or {})
        self.session = session or requests.Session()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_age = max_age
        self.max_attempts = max_attempts
        self.batch = batch
        self.rng = rng or random.Random()
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    # -- recording ---------------------------------------------------------------------------

    def enqueue(
        self, alert: dict[str, Any], routes: Iterable[NotifyRoute], kind: str = "trigger", now: float | None = None
    ) -> list[str]:
        """Record one notification per route (idempotent: an existing one is left as it is). Returns the ids."""
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        aid = alert_id(alert)
        document = orjson.loads(orjson.dumps(alert))  # our own JSON copy: what is stored is what is sent
        moment = _epoch(now)
        records = []
        for route in routes:
            self.routes.setdefault(route.name, route)
            records.append(
                Notification(
                    id=notification_id(aid, route.name, kind),
                    alert_id=aid,
                    route=route.name,
                    kind=kind,
                    alert=document,
                    created_at=moment,
                    next_attempt_at=moment,
                    updated_at=moment,
                )
            )
        self.store.insert(records)
        return [r.id for r in records]

    def enqueue_alert(
        self, alert: dict[str, Any], notify: Iterable[str] = (), kind: str | None = None, now: float | None = None
    ) -> list[str]:
        """Route an alert by the rule's ``notify:`` names and its level; closed alerts send ``resolve``."""
        level = (alert.get("rule") or {}).get("level")
        routes = select_routes(self.routes.values(), notify, level)
        if kind is None:
            status = (alert.get("alert") or {}).get("status")
            kind = "resolve" if status in ("closed", "resolved") else "trigger"
        return self.enqueue(alert, routes, kind, now=now)

    # -- delivering --------------------------------------------------------------------------

    def deliver_due(
        self, now: float | datetime | None = None, senders: Mapping[str, Sender] | None = None
    ) -> DeliveryReport:
        """One pass over the notifications that are due; returns what happened."""
        moment = _epoch(now)
        table = {**SENDERS, **self.senders, **(senders or {})}
        report = DeliveryReport()
        try:
            self._pass(moment, time.monotonic(), table, report)
        finally:
            if report.sent or report.retried or report.dead or report.skipped:
                # one refresh per pass makes every result visible to states() and to the next pass's
                # search — including resolves pushed back behind their trigger (skipped), which a
                # stale search would hand out again and again, filling the batch
                self.store.refresh()
        return report

    def _pass(self, moment: float, started: float, table: Mapping[str, Sender], report: DeliveryReport) -> None:
        for record, token in self.store.due(moment, self.batch):
            # `moment` is the pass's clock (tests drive it); a lease counts from the real claim time
            # so that a long pass never hands out leases that have already expired.
            claim_time = moment + (time.monotonic() - started)
            if record.kind == "resolve" and self._wait_for_trigger(record, token, claim_time):
                report.skipped += 1
                continue
            route = self.routes.get(record.route)
            claimed, token = self._claim(record, token, route, claim_time)
            if claimed is None:
                report.skipped += 1  # another loop has it
                continue
            outcome = self._attempt(claimed, route, table, moment)
            final = self._result(claimed, outcome, moment)
            if self._finish(final, token) is None:
                log.error("notification %s: result not recorded (lease lost); it may be sent again", final.id)
            if final.state == "delivered":
                report.sent += 1
            elif final.state == "dead":
                report.dead += 1
            else:
                report.retried += 1

    def _claim(
        self, record: Notification, token: Any, route: NotifyRoute | None, now: float
    ) -> tuple[Notification | None, Any]:
        """Take the notification (state sending, a lease, attempts + 1) if nobody else has.

        The search that found it may be stale (OpenSearch between refreshes): when the
        compare-and-set fails, the realtime record decides — still due, it is claimed at its
        current version; otherwise another loop has it or has finished it.
        """
        lease = (route.timeout if route else 10.0) * 2 + 30.0
        for attempt in range(2):
            claimed = record.changed(
                state="sending",
                attempts=record.attempts + 1,
                lease_owner=self.owner,
                lease_until=now + lease,
                updated_at=now,
            )
            new_token = self.store.compare_and_set(claimed, token)  # no refresh: the CAS needs none
            if new_token is not None:
                return claimed, new_token
            current = self.store.get(record.id) if attempt == 0 else None
            if current is None or not _due(current[0], now):
                break
            record, token = current
        return None, None

    def _finish(self, record: Notification, token: Any) -> Any | None:
        for _ in range(5):  # an embedded write conflict is transient; a version change is not
            new = self.store.compare_and_set(record, token)
            if new is not None:
                return new
            current = self.store.get(record.id)
            if current is None or current[1] != token:
                return None
        return None

    def _wait_for_trigger(self, record: Notification, token: Any, now: float) -> bool:
        """True if the resolve must wait: its trigger is not delivered or dead yet.

        The resolve is then moved to when the trigger is next tried, so waiting resolves never
        fill a pass's batch and starve what comes after them.
        """
        found = self.store.get(notification_id(record.alert_id, record.route, "trigger"))
        if found is None or found[0].state in FINAL:
            return False
        trigger = found[0]
        after = trigger.lease_until if trigger.state == "sending" else trigger.next_attempt_at
        later = max(after or now, now) + 1.0
        self.store.compare_and_set(record.changed(next_attempt_at=later, last_error="waiting for the trigger"), token)
        return True

    def _attempt(
        self, record: Notification, route: NotifyRoute | None, table: Mapping[str, Sender], now: float
    ) -> _Outcome:
        if route is None:
            return _Outcome("retry", error=f"route {record.route!r} is not configured")
        secrets = route.secret_values(self.env)
        _REDACTOR.secrets.update(secrets)
        sender = table.get(route.type)
        if sender is None:
            return _Outcome("retry", error=f"no sender for route type {route.type!r}")
        try:
            request = sender(route, record.alert, record.kind, self.env, now)
        except MissingSecret as exc:
            return _Outcome("retry", error=str(exc))
        if isinstance(request, DirectDelivery):
            try:
                result, error = request.send()
            except Exception as exc:  # a library's failure is retried, never lost; its text may hold a URL
                result, error = "retry", f"{type(exc).__name__} while sending"
            return _Outcome(result, error=scrub(error, secrets) if error else None)
        try:
            response = self.session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=route.timeout,
                verify=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            return _Outcome("retry", error=f"timed out after {route.timeout:g}s")
        except requests.ConnectionError as exc:
            found = _ERRNO.search(str(exc))
            reason = found.group(0).strip() if found else type(exc).__name__
            return _Outcome("retry", error=scrub(f"connection failed: {reason}", secrets))
        except requests.RequestException as exc:
            return _Outcome("dead", error=f"request failed: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome("delivered", status=status)
        detail = scrub(response.text[:300].strip(), secrets)
        error = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in RETRY_STATUSES or status >= 500:
            return _Outcome("retry", status, error, parse_retry_after(response.headers.get("Retry-After"), now))
        return _Outcome("dead", status, error)

    def _result(self, record: Notification, outcome: _Outcome, now: float) -> Notification:
        where = f"notification {record.id} (route {record.route}, attempt {record.attempts})"
        common = {"lease_owner": None, "lease_until": None, "updated_at": now, "last_status": outcome.status}
        if outcome.result == "delivered":
            log.info("%s delivered: HTTP %s", where, outcome.status)
            return record.changed(state="delivered", delivered_at=now, last_error=None, **common)
        error = outcome.error or "unknown error"
        if outcome.result == "retry":
            too_old = now - record.created_at >= self.max_age
            too_many = self.max_attempts is not None and record.attempts >= self.max_attempts
            if not (too_old or too_many):
                if outcome.retry_after is not None:
                    delay = outcome.retry_after
                else:
                    ceiling = min(self.max_delay, self.base_delay * 2 ** min(record.attempts - 1, 60))
                    delay = self.rng.uniform(0, ceiling)  # full jitter
                log.warning("%s failed: %s; next attempt in %.0fs", where, error, delay)
                return record.changed(state="pending", next_attempt_at=now + delay, last_error=error, **common)
            error = f"gave up after {record.attempts} attempts over {now - record.created_at:.0f}s: {error}"
        log.error("%s is dead (not delivered, kept in the outbox): %s", where, error)
        return record.changed(state="dead", last_error=error, **common)

    # -- reading -----------------------------------------------------------------------------

    def states(self, alert_id: str) -> dict[str, NotificationState]:
        """Notification state per route of one alert: ``route`` for trigger, ``route/resolve`` for resolve."""
        result = {}
        for n in self.store.by_alert(alert_id):
            key = n.route if n.kind == "trigger" else f"{n.route}/{n.kind}"
            result[key] = NotificationState(
                n.state, n.kind, n.attempts, n.last_error, n.last_status, n.next_attempt_at, n.delivered_at
            )
        return result

    def pending(self, limit: int = 1000) -> list[Notification]:
        """Notifications not yet delivered and not dead (pending or being sent)."""
        return self.store.by_state(("pending", "sending"), limit)

    def dead(self, limit: int = 1000) -> list[Notification]:
        return self.store.by_state(("dead",), limit)
