"""Alert notifications delivered over real HTTP to a receiver on 127.0.0.1, on both stores.

The receiver is http.server in a thread: it records every request and answers what the test
programs (200, 500, 429 with Retry-After, 410, an echo of the request) or is down (nothing
listening on its port). Time is driven through ``deliver_due(now=...)`` so backoff is exact.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from siem.detect.notify.outbox import Outbox
from siem.detect.notify.routes import NotifyRoute

DOCS = Path(__file__).resolve().parents[1] / "docs" / "notifications.md"
WEBHOOK_SECRET = "whsec-Zq81-hmac-key-do-not-leak"
SLACK_TOKEN = "XoxbSLACKtok3nDoNotLeak"
PD_KEY = "R0UT1NGKEYpagerdutyDoNotLeak"
AUTHOR = "Florian Roth (Nextron)"


class Receiver:
    """An HTTP receiver that records requests; ``program`` queues answers, the default is 200."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.requests: list[dict[str, Any]] = []
        self.answers: collections.deque[tuple[int, dict[str, str], bytes | None]] = collections.deque()
        self.delay = 0.0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def program(self, status: int, headers: dict[str, str] | None = None, body: bytes | None = b"") -> None:
        """Queue one answer; body None echoes the request body back."""
        self.answers.append((status, headers or {}, body))

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                    status, headers, answer = receiver.answers.popleft() if receiver.answers else (200, {}, b"ok")
                answer = body if answer is None else answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> collections.Counter[str]:
        return collections.Counter(r["headers"]["Idempotency-Key"] for r in self.requests)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.up()
    yield r
    r.down()


@pytest.fixture(params=["embedded", pytest.param("opensearch", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        embedded = EmbeddedStore(tmp_path)
        yield embedded
        embedded.close()
    else:
        from siem.sinks.opensearch import OpenSearchStore

        client = request.getfixturevalue("opensearch_client")
        yield OpenSearchStore(client, prefix=request.getfixturevalue("index_prefix"))


def make_alert(n: int = 1, status: str = "open", group: str | None = None) -> dict[str, Any]:
    ip = f"203.0.113.{n}"
    return {
        "alert": {
            "id": f"alert-{n:04d}",
            "group": group or f"source.ip={ip}",
            "reason": f"12 failed SSH logins from {ip} in 5m",
            "count": 12,
            "first_seen": "2024-05-01T10:00:00.000Z",
            "last_seen": "2024-05-01T10:04:59.000Z",
            "status": status,
        },
        "rule": {"id": "rule-ssh-brute", "name": "SSH brute force", "author": AUTHOR, "level": "high"},
        "event": {"severity": 73},
    }


def webhook(receiver: Receiver, name: str = "oncall") -> NotifyRoute:
    return NotifyRoute(name=name, type="webhook", url=receiver.url(), secret_env="SIEM_WEBHOOK_SECRET", timeout=5)


ENV = {
    "SIEM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "SIEM_PAGERDUTY_KEY": PD_KEY,
}


def outbox(store: Any, receiver: Receiver | None = None, **kwargs: Any) -> Outbox:
    env = dict(ENV)
    if receiver is not None:
        env["SIEM_SLACK_WEBHOOK_URL"] = receiver.url(f"/services/T000/B000/{SLACK_TOKEN}")
    kwargs.setdefault("base_delay", 1.0)
    kwargs.setdefault("max_delay", 60.0)
    return Outbox(store, env=env, **kwargs)


def documented_verify() -> Any:
    """The ``verify`` function exactly as docs/notifications.md shows it."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(DOCS), "exec"), namespace)
    return namespace["verify"]


def test_webhook_signature_verifies_with_the_documented_snippet(store: Any, receiver: Receiver) -> None:
    box = outbox(store)
    alert = make_alert()
    box.enqueue(alert, [webhook(receiver)])
    assert box.deliver_due().sent == 1
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    verify = documented_verify()

    assert verify(WEBHOOK_SECRET, headers, body)
    assert json.loads(body) == alert
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "alert-0001:trigger"
    assert re.fullmatch(r"v1=[0-9a-f]{64}", headers["X-Siem-Signature"])
    # The snippet refuses what it must: a changed body, another key, a replay outside the tolerance.
    assert not verify(WEBHOOK_SECRET, headers, body.replace(b"12 failed", b"13 failed"))
    assert not verify("another-secret", headers, body)
    assert not verify(WEBHOOK_SECRET, headers, body, now=int(headers["X-Siem-Timestamp"]) + 301)
    assert not verify(WEBHOOK_SECRET, {}, body)
    # And it computes what the header format in the docs says.
    message = headers["X-Siem-Timestamp"].encode() + b"." + body
    assert headers["X-Siem-Signature"] == "v1=" + hmac.new(WEBHOOK_SECRET.encode(), message, hashlib.sha256).hexdigest()


def test_receiver_down_for_many_passes_gets_each_alert_exactly_once_when_back(store: Any, receiver: Receiver) -> None:
    receiver.down()
    box = outbox(store)
    route = webhook(receiver)
    alerts = [make_alert(n) for n in range(1, 6)]
    for alert in alerts:
        box.enqueue(alert, [route])
    now = time.time()
    for _ in range(6):
        now += 120  # past any backoff (max_delay 60 s)
        report = box.deliver_due(now=now)
        assert (report.sent, report.retried, report.dead) == (0, 5, 0)
        for alert in alerts:  # the cycle that wrote an alert re-records it: nothing changes
            box.enqueue(alert, [route])
    assert len(box.pending()) == 5
    state = box.states("alert-0003")["oncall"]
    assert state.state == "pending" and state.attempts == 6
    assert "connection failed" in state.last_error

    receiver.up()
    now += 120
    assert box.deliver_due(now=now).sent == 5
    for _ in range(3):
        now += 120
        assert box.deliver_due(now=now).sent == 0
    assert receiver.keys() == {f"alert-{n:04d}:trigger": 1 for n in range(1, 6)}
    assert box.pending() == []
    assert all(box.states(a["alert"]["id"])["oncall"].state == "delivered" for a in alerts)


def test_server_error_is_retried_with_backoff_then_delivered(store: Any, receiver: Receiver) -> None:
    box = outbox(store, base_delay=10.0)
    receiver.program(500, body=b"upstream broke")
    box.enqueue(make_alert(), [webhook(receiver)])
    now = time.time()
    assert box.deliver_due(now=now).retried == 1
    state = box.states("alert-0001")["oncall"]
    assert (state.state, state.last_status, state.last_error) == ("pending", 500, "HTTP 500: upstream broke")
    assert now <= state.next_attempt_at <= now + 10.0  # full jitter within the first step
    assert box.deliver_due(now=now + 10.5).sent == 1
    assert receiver.keys() == {"alert-0001:trigger": 2}  # the same key on the retry
    assert box.states("alert-0001")["oncall"].state == "delivered"


def test_429_retry_after_is_honoured(store: Any, receiver: Receiver) -> None:
    box = outbox(store, base_delay=1.0)  # without Retry-After the retry would be due within a second
    receiver.program(429, {"Retry-After": "120"}, b"slow down")
    box.enqueue(make_alert(), [webhook(receiver)])
    now = time.time()
    assert box.deliver_due(now=now).retried == 1
    assert box.states("alert-0001")["oncall"].next_attempt_at == pytest.approx(now + 120, abs=0.01)
    assert box.deliver_due(now=now + 119).sent == 0
    assert len(receiver.requests) == 1
    assert box.deliver_due(now=now + 121).sent == 1
    assert len(receiver.requests) == 2


def test_410_gone_is_dead_and_visible_with_its_error(store: Any, receiver: Receiver, caplog: Any) -> None:
    box = outbox(store)
    receiver.program(410, body=b"channel_is_archived")
    box.enqueue(make_alert(), [webhook(receiver)])
    now = time.time()
    report = box.deliver_due(now=now)
    assert (report.sent, report.retried, report.dead) == (0, 0, 1)
    state = box.states("alert-0001")["oncall"]
    assert (state.state, state.last_status) == ("dead", 410)
    assert state.last_error == "HTTP 410: channel_is_archived"
    assert [n.id for n in box.dead()] == ["alert-0001:oncall:trigger"]
    assert box.pending() == []
    assert any(r.levelno == logging.ERROR and "dead" in r.getMessage() for r in caplog.records)
    assert box.deliver_due(now=now + 3600).sent == 0
    assert len(receiver.requests) == 1  # never sent again


def test_receiver_down_past_max_age_is_dead_not_dropped(store: Any, receiver: Receiver) -> None:
    receiver.down()
    box = outbox(store, max_age=600.0)
    box.enqueue(make_alert(), [webhook(receiver)], now=1_700_000_000.0)
    assert box.deliver_due(now=1_700_000_100.0).retried == 1
    assert box.deliver_due(now=1_700_000_700.0).dead == 1
    state = box.states("alert-0001")["oncall"]
    assert state.state == "dead"
    assert state.last_error.startswith("gave up after 2 attempts over 700s: connection failed")


def test_slack_message_is_block_kit_crediting_the_rule_author(store: Any, receiver: Receiver) -> None:
    box = outbox(store, receiver)
    slack = NotifyRoute(name="slack", type="slack", url_env="SIEM_SLACK_WEBHOOK_URL")
    alert = make_alert(7)
    box.enqueue(alert, [slack])
    assert box.deliver_due().sent == 1
    [request] = receiver.requests
    assert request["path"] == f"/services/T000/B000/{SLACK_TOKEN}"
    message = json.loads(request["body"])
    header, reason, facts, context = message["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "HIGH: SSH brute force", "emoji": False}}
    assert reason["type"] == "section" and reason["text"] == {"type": "mrkdwn", "text": alert["alert"]["reason"]}
    fields = {f["text"].split("\n")[0].strip("*"): f["text"].split("\n", 1)[1] for f in facts["fields"]}
    assert fields["Rule author"] == "Florian Roth (Nextron)"
    assert fields["Group"] == "source.ip=203.0.113.7"
    assert fields["Count"] == "12"
    assert fields["First seen"] == "2024-05-01T10:00:00.000Z"
    assert fields["Last seen"] == "2024-05-01T10:04:59.000Z"
    assert fields["Alert id"] == "alert-0007"
    assert "Florian Roth (Nextron)" in context["elements"][0]["text"]
    assert message["text"].startswith("HIGH: SSH brute force")


def test_pagerduty_trigger_then_resolve_share_the_dedup_key(store: Any, receiver: Receiver) -> None:
    box = outbox(store)
    pd = NotifyRoute(name="pd", type="pagerduty", url=receiver.url("/v2/enqueue"), routing_key_env="SIEM_PAGERDUTY_KEY")
    box.enqueue(make_alert(1), [pd])
    assert box.deliver_due().sent == 1
    # the next suppression period of the same incident: another alert id, same group key
    box.enqueue(make_alert(2, group="source.ip=203.0.113.1"), [pd])
    box.enqueue(make_alert(2, status="closed", group="source.ip=203.0.113.1"), [pd], kind="resolve")
    assert box.deliver_due().sent == 2
    first, update, resolve = receiver.bodies()
    assert [b["event_action"] for b in (first, update, resolve)] == ["trigger", "trigger", "resolve"]
    assert first["dedup_key"] == "siem:rule-ssh-brute:source.ip=203.0.113.1"
    assert update["dedup_key"] == resolve["dedup_key"] == first["dedup_key"]
    assert first["routing_key"] == PD_KEY
    payload = first["payload"]
    assert payload["severity"] == "error"
    assert payload["summary"] == "[high] SSH brute force: 12 failed SSH logins from 203.0.113.1 in 5m"
    assert payload["source"] == "source.ip=203.0.113.1"
    assert payload["custom_details"]["rule_author"] == "Florian Roth (Nextron)"
    assert payload["custom_details"]["alert_id"] == "alert-0001"
    assert set(resolve) == {"routing_key", "event_action", "dedup_key"}
    assert set(box.states("alert-0002")) == {"pd", "pd/resolve"}
    assert box.states("alert-0002")["pd/resolve"].state == "delivered"


def test_resolve_waits_until_its_trigger_is_delivered(store: Any, receiver: Receiver) -> None:
    box = outbox(store, base_delay=10.0)
    pd = NotifyRoute(name="pd", type="pagerduty", url=receiver.url(), routing_key_env="SIEM_PAGERDUTY_KEY")
    receiver.program(503)
    box.enqueue(make_alert(), [pd])
    box.enqueue(make_alert(status="closed"), [pd], kind="resolve")
    now = time.time()
    report = box.deliver_due(now=now)
    assert (report.sent, report.retried, report.skipped) == (0, 1, 1)
    assert [b["event_action"] for b in receiver.bodies()] == ["trigger"]
    assert box.deliver_due(now=now + 12).sent == 2
    assert [b["event_action"] for b in receiver.bodies()] == ["trigger", "trigger", "resolve"]


def _raw_outbox(store: Any) -> str:
    if hasattr(store, "db"):
        return repr(store.db.execute("SELECT * FROM outbox").fetchall())
    response = store.client.search(index=f"{store.prefix}-outbox", body={"size": 100, "query": {"match_all": {}}})
    return json.dumps(response["hits"]["hits"])


def test_secrets_never_in_outbox_rows_logs_or_errors(store: Any, receiver: Receiver, caplog: Any, capsys: Any) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs request paths at DEBUG; the Slack path is a secret
    box = outbox(store, receiver)
    routes = [
        webhook(receiver),
        NotifyRoute(name="slack", type="slack", url_env="SIEM_SLACK_WEBHOOK_URL"),
        NotifyRoute(name="pd", type="pagerduty", url=receiver.url("/pd"), routing_key_env="SIEM_PAGERDUTY_KEY"),
    ]
    receiver.down()
    box.enqueue(make_alert(1), routes)
    now = time.time()
    assert box.deliver_due(now=now).retried == 3  # connection errors: their text names the URL path
    receiver.up()
    for _ in range(3):
        receiver.program(400, body=None)  # a receiver that echoes the request (PagerDuty's has the key)
    box.enqueue(make_alert(2), routes)
    now += 120
    report = box.deliver_due(now=now)
    assert (report.sent, report.dead) == (3, 3)

    # the secrets were really used...
    assert any(r["path"].endswith(SLACK_TOKEN) for r in receiver.requests)
    assert any(PD_KEY.encode() in r["body"] for r in receiver.requests)
    errors = [s.last_error for a in ("alert-0001", "alert-0002") for s in box.states(a).values() if s.last_error]
    assert len(errors) == 3 and all(errors)
    assert any("[redacted]" in e for e in errors)
    # ...and are nowhere we keep or print anything
    captured = capsys.readouterr()
    places = {
        "outbox": _raw_outbox(store),
        "logs": caplog.text + "".join(str(r.__dict__) for r in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "errors": repr(errors),
    }
    assert "HTTP connection" in places["logs"] or "connectionpool" in places["logs"]  # DEBUG was captured
    for secret in (WEBHOOK_SECRET, SLACK_TOKEN, PD_KEY):
        for place, text in places.items():
            assert secret not in text, f"{secret} leaked into {place}"


def test_two_outboxes_delivering_concurrently_deliver_each_notification_once(store: Any, receiver: Receiver) -> None:
    receiver.delay = 0.01  # a slow receiver widens the window in which both loops see the same work
    route = webhook(receiver)
    first, second = outbox(store, routes=[route]), outbox(store, routes=[route])
    for n in range(1, 21):
        first.enqueue(make_alert(n), [route])
    start = threading.Barrier(2)
    reports: list[Any] = []
    failures: list[BaseException] = []

    def loop(box: Outbox) -> None:
        try:
            start.wait()
            for _ in range(5):
                reports.append(box.deliver_due())
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=loop, args=(box,)) for box in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert receiver.keys() == {f"alert-{n:04d}:trigger": 1 for n in range(1, 21)}
    assert sum(r.sent for r in reports) == 20
    assert first.pending() == [] and second.pending() == []


def test_recording_a_notification_twice_is_idempotent(store: Any, receiver: Receiver) -> None:
    box = outbox(store)
    alert = make_alert()
    ids = box.enqueue(alert, [webhook(receiver)])
    assert ids == box.enqueue(alert, [webhook(receiver)]) == ["alert-0001:oncall:trigger"]
    assert len(box.pending()) == 1
    assert box.deliver_due().sent == 1
    box.enqueue(alert, [webhook(receiver)])  # after delivery: still delivered, not sent again
    assert box.deliver_due().sent == 0
    assert receiver.keys() == {"alert-0001:trigger": 1}


def test_missing_secret_is_retried_naming_the_variable(tmp_path: Path, receiver: Receiver) -> None:
    from siem.sinks.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path)
    box = Outbox(store, env={})
    box.enqueue(make_alert(), [webhook(receiver)])
    assert box.deliver_due().retried == 1
    assert box.states("alert-0001")["oncall"].last_error == "environment variable SIEM_WEBHOOK_SECRET is not set"
    assert receiver.requests == []  # never sent unsigned
    store.close()


class _Crash(BaseException):
    """The process dies mid-send (after the claim, before the result is recorded)."""


def test_a_loop_that_dies_mid_send_leaves_a_lease_that_another_loop_takes_over(store: Any, receiver: Receiver) -> None:
    route = webhook(receiver)
    dying, survivor = outbox(store, routes=[route]), outbox(store, routes=[route])
    dying.enqueue(make_alert(), [route])

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise _Crash

    dying.session.post = crash  # type: ignore[method-assign]
    now = time.time()
    with pytest.raises(_Crash):
        dying.deliver_due(now=now)
    assert dying.store.get("alert-0001:oncall:trigger")[0].state == "sending"  # realtime read
    assert survivor.deliver_due(now=now + 5).sent == 0  # leased: not taken over (a stale search hit loses the CAS)
    assert receiver.requests == []
    lease = route.timeout * 2 + 30
    assert survivor.deliver_due(now=now + lease + 1).sent == 1
    assert receiver.keys() == {"alert-0001:trigger": 1}
    assert survivor.states("alert-0001")["oncall"].attempts == 2


_PROCESS_LOOP = """
import json, sys, time
from opensearchpy import OpenSearch
from siem.detect.notify.outbox import Outbox
from siem.detect.notify.routes import NotifyRoute
from siem.sinks.opensearch import OpenSearchStore

url, prefix, hook, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
route = NotifyRoute(name="oncall", type="webhook", url=hook, secret_env="SIEM_WEBHOOK_SECRET", timeout=5)
store = OpenSearchStore(OpenSearch(hosts=[url], timeout=60), prefix=prefix)
box = Outbox(store, [route], env={"SIEM_WEBHOOK_SECRET": "k"})
time.sleep(max(0.0, start - time.time()))
print(json.dumps(sum(box.deliver_due().sent for _ in range(5))))
"""


@pytest.mark.integration
def test_two_processes_on_one_opensearch_deliver_each_notification_once(
    opensearch_url: str, opensearch_client: Any, index_prefix: str, receiver: Receiver
) -> None:
    import subprocess
    import sys

    from siem.sinks.opensearch import OpenSearchStore

    receiver.delay = 0.02
    route = webhook(receiver)
    box = outbox(OpenSearchStore(opensearch_client, prefix=index_prefix), routes=[route])
    for n in range(1, 21):
        box.enqueue(make_alert(n), [route])
    start = time.time() + 4  # both processes imported and connected, then released together
    args = [sys.executable, "-c", _PROCESS_LOOP, opensearch_url, index_prefix, route.url, str(start)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    sent = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(sent) == 20
    assert receiver.keys() == {f"alert-{n:04d}:trigger": 1 for n in range(1, 21)}
    assert box.pending() == []


def test_pending_lists_past_one_search_page(store: Any) -> None:
    from siem.detect.notify.outbox_store import Notification

    box = outbox(store)
    now = time.time()
    alert = make_alert()
    records = [
        Notification(f"a{n}:r:trigger", f"a{n}", "r", "trigger", alert, created_at=now + n, next_attempt_at=now)
        for n in range(1205)
    ]
    assert box.store.insert(records) == 1205
    assert box.store.insert(records[:10]) == 0  # recorded already
    pending = box.pending(limit=100_000)
    assert [n.id for n in pending] == [r.id for r in records]  # all of them, oldest first
    assert len(box.pending(limit=1100)) == 1100


def _embedded(tmp_path: Path) -> Any:
    from siem.sinks.embedded import EmbeddedStore

    return EmbeddedStore(tmp_path)


def test_apprise_route_delivers_through_apprise_and_retries_its_failures(
    tmp_path: Path, receiver: Receiver, caplog: Any
) -> None:
    pytest.importorskip("apprise", reason="apprise is an optional dependency (pip install apprise)")
    caplog.set_level(logging.DEBUG)  # Apprise logs its target URLs at DEBUG; the token must not show
    store = _embedded(tmp_path)
    route = NotifyRoute(name="chat", type="apprise", url_env="SIEM_APPRISE_URL")
    url = f"json://127.0.0.1:{receiver.port}/apprise/{SLACK_TOKEN}"
    box = Outbox(store, env={"SIEM_APPRISE_URL": url}, base_delay=1.0)
    box.enqueue(make_alert(), [route])
    receiver.program(500)
    now = time.time()
    assert box.deliver_due(now=now).retried == 1
    assert "apprise reported a failed delivery" in box.states("alert-0001")["chat"].last_error
    assert box.deliver_due(now=now + 2).sent == 1
    message = receiver.bodies()[-1]
    assert message["title"] == "HIGH: SSH brute force"
    assert "12 failed SSH logins from 203.0.113.1 in 5m" in message["message"]
    assert f"by {AUTHOR}" in message["message"]
    assert receiver.requests[-1]["path"] == f"/apprise/{SLACK_TOKEN}"
    assert "apprise" in caplog.text.lower()  # Apprise's own log lines were captured...
    assert SLACK_TOKEN not in caplog.text + "".join(str(r.__dict__) for r in caplog.records)  # ...scrubbed
    assert SLACK_TOKEN not in _raw_outbox(store)
    store.close()


def test_invalid_apprise_url_is_dead_without_echoing_it(tmp_path: Path, caplog: Any) -> None:
    pytest.importorskip("apprise", reason="apprise is an optional dependency (pip install apprise)")
    store = _embedded(tmp_path)
    route = NotifyRoute(name="chat", type="apprise", url_env="SIEM_APPRISE_URL")
    box = Outbox(store, env={"SIEM_APPRISE_URL": f"nosuchscheme://{SLACK_TOKEN}"})
    box.enqueue(make_alert(), [route])
    assert box.deliver_due().dead == 1
    state = box.states("alert-0001")["chat"]
    assert state.last_error == "the Apprise URL in $SIEM_APPRISE_URL is not valid"
    assert SLACK_TOKEN not in caplog.text
    store.close()


class _JitterAtCeiling(random.Random):
    """Full jitter that always draws its upper bound, for tests that need a retry to stay far away."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_resolves_waiting_for_their_trigger_do_not_starve_later_notifications(store: Any, receiver: Receiver) -> None:
    box = outbox(store, base_delay=1000.0, batch=2, rng=_JitterAtCeiling())
    pd = NotifyRoute(name="pd", type="pagerduty", url=receiver.url(), routing_key_env="SIEM_PAGERDUTY_KEY")
    receiver.program(503)
    receiver.program(503)
    now = time.time()
    box.enqueue(make_alert(1), [pd], now=now)
    box.enqueue(make_alert(2), [pd], now=now + 0.001)
    assert box.deliver_due(now=now + 0.01).retried == 2  # both triggers back off 1000 s
    box.enqueue(make_alert(1, status="closed"), [pd], kind="resolve", now=now + 0.002)
    box.enqueue(make_alert(2, status="closed"), [pd], kind="resolve", now=now + 0.003)
    box.enqueue(make_alert(3), [pd], now=now + 0.004)
    sent = [box.deliver_due(now=now + step).sent for step in (1, 2, 3)]
    assert sum(sent) == 1
    assert receiver.keys()["alert-0003:trigger"] == 1
    assert box.states("alert-0001")["pd/resolve"].state == "pending"
    assert box.states("alert-0001")["pd/resolve"].last_error == "waiting for the trigger"
