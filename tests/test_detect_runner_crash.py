"""kill -9 the runner at random points, restart it, and compare with a run that was never killed:
every alert exactly once, with the same content, every notification recorded once, and checkpoints
that never move past what was written. SIGTERM on `detect serve` finishes the cycle and exits 0.

The runner is a real process (``python -m siem.cli detect ...``) on a real store; the clean
reference run is the same command on a fresh store holding the same events.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_detect_runner import write_events

from siem.detect.state import open_state
from siem.normalize import iso_utc
from siem.pipeline import Event

REPO = Path(__file__).resolve().parents[1]


def siem_command() -> list[str]:
    """The `siem` command as a child process (killed -9 by the tests)."""
    return [sys.executable, "-m", "siem.cli"]


def _rule(n: int, body: str, title: str, extra: str = "") -> str:
    return f"title: {title}\nid: 22222222-0000-0000-0000-{n:012d}\nstatus: test\n{body}\nlevel: medium\n{extra}"


_FAILED = "logsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: ConsoleLogin, event.outcome: %s}\n  condition: sel"  # noqa: E501


def crash_rules(folder: Path) -> Path:
    """Eight rules of every kind over the same events: single, suppressed, correlations."""
    folder.mkdir(parents=True)
    failed, ok = _FAILED % "failure", _FAILED % "success"
    files = {
        "single.yml": _rule(1, failed, "Failed login"),
        "single_ok.yml": _rule(2, ok, "Successful login"),
        "by_ip.yml": _rule(3, failed, "Failed logins by IP", "suppress: {by: [source.ip], for: 1h}\nnotify: [hook]\n"),
        "by_user.yml": _rule(4, failed, "Failed logins by user", "suppress: {by: [user.name], for: 10m}\n"),
        "by_both.yml": _rule(5, failed, "Failed by IP and user", "suppress: {by: [source.ip, user.name], for: 1h}\n"),
    }

    def member(n: int) -> str:
        head = f"title: burst member\nid: 22222222-0000-0000-0000-1000000000{n:02d}\nname: member{n}\nstatus: test\n"
        return head + failed + "\nlevel: low\n---\n"

    files["burst.yml"] = member(6) + _rule(
        6,
        "correlation:\n  type: event_count\n  rules: [member6]\n  group-by: [source.ip]\n  timespan: 60s\n"
        "  condition: {gte: 5}",
        "Burst by IP",
        "notify: [hook]\n",
    )
    files["spray.yml"] = member(7) + _rule(
        7,
        "correlation:\n  type: value_count\n  rules: [member7]\n  group-by: [source.ip]\n  timespan: 5m\n"
        "  condition: {gte: 3, field: user.name}",
        "Password spray",
    )
    files["burst_user.yml"] = member(8) + _rule(
        8,
        "correlation:\n  type: event_count\n  rules: [member8]\n  group-by: [user.name]\n  timespan: 2m\n"
        "  condition: {gte: 4}",
        "Burst by user",
    )
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def stage_events(first: int, ips: int, at: datetime, ingested: datetime, late: bool = False) -> list[Event]:
    """Per IP: 6 failures over 3 users 5 s apart and one success; ``late`` puts them an hour back."""
    out = []
    base = at - timedelta(hours=1) if late else at
    for k in range(ips):
        ip = f"10.{(first + k) // 65536}.{((first + k) // 256) % 256}.{(first + k) % 256}"
        start = base - timedelta(seconds=40 * k)
        for j in range(7):
            n = (first + k) * 10 + j
            doc = {
                "@timestamp": iso_utc(start + timedelta(seconds=5 * j)),
                "event": {
                    "dataset": "aws.cloudtrail",
                    "action": "ConsoleLogin",
                    "outcome": "success" if j == 6 else "failure",
                    "ingested": iso_utc(ingested),
                },
                "source": {"ip": ip},
                "user": {"name": f"user{(k + j) % 3}"},
                "related": {"ip": [ip], "user": [f"user{(k + j) % 3}"]},
            }
            out.append(Event(f"crash-{n:08d}", "aws.cloudtrail", doc))
    return out


CONFIG = """
notifications:
  - {name: hook, type: webhook, url: "https://hooks.example.invalid/siem", secret_env: SIEM_TEST_HOOK_KEY}
"""


class Target:
    """One store (embedded data dir, or an OpenSearch prefix) and how to point `siem` at it."""

    def __init__(self, kind: str, root: Path, url: str) -> None:
        self.kind, self.url = kind, url
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.data_dir = root / f"data-{self.prefix}"
        config = root / "siem.yaml"
        config.write_text(CONFIG)
        self.env = {
            **os.environ,
            "SIEM_CONFIG": str(config),
            "SIEM_DETECT_SETTLE_SECONDS": "0",
            "SIEM_DATA_DIR": str(self.data_dir),
            "SIEM_TEST_HOOK_KEY": "k",
        }
        self.env.pop("SIEM_OPENSEARCH_URL", None)
        if kind == "opensearch":
            self.env |= {"SIEM_OPENSEARCH_URL": url, "SIEM_OPENSEARCH_INDEX_PREFIX": self.prefix}

    @contextmanager
    def store(self) -> Iterator[Any]:
        if self.kind == "embedded":
            from siem.sinks.embedded import EmbeddedStore

            store: Any = EmbeddedStore(self.data_dir)
        else:
            from opensearchpy import OpenSearch

            from siem.sinks.opensearch import OpenSearchStore
            from siem.templates import install_templates

            store = OpenSearchStore(OpenSearch(hosts=[self.url], timeout=60), prefix=self.prefix)
            install_templates(store.client, self.prefix)
        try:
            yield store
        finally:
            store.close()

    def load(self, events: list[Event]) -> None:
        with self.store() as store:
            write_events(store, events)

    def alerts(self) -> dict[str, tuple[Any, ...]]:
        with self.store() as store:
            state = open_state(store)
            state.refresh()
            docs = state.search(size=10000)
        return {
            d["alert"]["id"]: (d["rule"]["id"], d["alert"]["count"], d["alert"]["first_seen"], d["alert"]["last_seen"])
            for d in docs
        }

    def checkpoints(self, rule_ids: list[str]) -> dict[str, str]:
        with self.store() as store:
            return open_state(store).checkpoints(rule_ids)

    def triggers(self) -> list[str]:
        from siem.detect.notify import Outbox

        with self.store() as store:
            pending = Outbox(store).pending(limit=100000)
        return sorted(n.alert_id for n in pending if n.kind == "trigger")

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*siem_command(), "detect", *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )

    def cleanup(self, client: Any) -> None:
        if self.kind != "opensearch":
            return
        client.indices.delete(index=f"{self.prefix}-*", params={"ignore_unavailable": "true", "ignore": 404})
        for name in ("events", "deadletter", "alerts", "outbox"):
            client.indices.delete_index_template(name=f"{self.prefix}-{name}", params={"ignore": 404})
        for name in ("settings", "ecs"):
            client.cluster.delete_component_template(name=f"{self.prefix}-{name}", params={"ignore": 404})


@pytest.fixture(params=["embedded", "opensearch"])
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Target, Target]]:
    url = request.getfixturevalue("opensearch_url") if request.param == "opensearch" else ""
    client = request.getfixturevalue("opensearch_client") if request.param == "opensearch" else None
    pair = (Target(request.param, tmp_path, url), Target(request.param, tmp_path, url))
    yield pair
    if client is not None:
        for target in pair:
            target.cleanup(client)


def test_kill_9_at_random_points_then_restart_gives_every_alert_exactly_once(
    targets: tuple[Target, Target], tmp_path: Path
) -> None:
    victim, clean = targets
    rules = crash_rules(tmp_path / "rules")
    rule_ids = [f"22222222-0000-0000-0000-{n:012d}" for n in range(1, 9)]
    seed = int(os.environ.get("SIEM_TEST_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    stage_a = stage_events(0, 100, now - timedelta(minutes=30), now - timedelta(minutes=20))
    # the reference: the same command on the same data, never killed (one cycle per stage)
    clean.load(stage_a)
    started = time.monotonic()
    reference = clean.run("run", "--once", "--rules", str(rules), "--json")
    assert reference.returncode == 0, reference.stderr[-3000:]
    cycle_seconds = time.monotonic() - started  # how long one whole run takes here: the kill window
    victim.load(stage_a)

    kills = 0
    marks_seen: list[dict[str, str]] = []

    def kill_runs(times: int) -> None:
        nonlocal kills
        for _ in range(times):
            proc = subprocess.Popen(
                [*siem_command(), "detect", "run", "--once", "--rules", str(rules)],
                env=victim.env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.2, cycle_seconds * 1.1))
            proc.send_signal(signal.SIGKILL)
            killed_at = iso_utc(datetime.now(UTC))
            proc.wait(timeout=60)
            kills += proc.returncode == -signal.SIGKILL
            marks = victim.checkpoints(rule_ids)
            assert all(mark <= killed_at for mark in marks.values()), (marks, killed_at)
            if marks_seen:  # a checkpoint never moves back
                assert all(marks[r] >= marks_seen[-1][r] for r in marks_seen[-1]), (marks_seen[-1], marks)
            marks_seen.append(marks)

    kill_runs(2)
    # more data arrives between crashes: new events, and late ones (an hour old, ingested now)
    stage_b = stage_events(300, 30, datetime.now(UTC), datetime.now(UTC) - timedelta(seconds=1))
    stage_b += stage_events(400, 30, datetime.now(UTC), datetime.now(UTC) - timedelta(seconds=1), late=True)
    victim.load(stage_b)
    clean.load(stage_b)
    reference = clean.run("run", "--once", "--rules", str(rules), "--json")
    assert reference.returncode == 0, reference.stderr[-3000:]
    kill_runs(2)
    final = victim.run("run", "--once", "--rules", str(rules), "--json")
    assert final.returncode == 0, final.stderr[-3000:]
    settled = victim.run("run", "--once", "--rules", str(rules), "--json")
    assert settled.returncode == 0 and '"alerts_new":0,"alerts_updated":0' in settled.stdout, settled.stdout

    expected, got = clean.alerts(), victim.alerts()
    assert kills >= 1, f"no run was killed mid-way (seed {seed})"
    assert len(expected) > 1000
    missing, extra = len(set(expected) - set(got)), len(set(got) - set(expected))
    assert set(got) == set(expected), f"seed {seed}: {missing} alerts missing, {extra} extra"
    assert got == expected, f"seed {seed}: same alerts, different counts or times"
    # every alert of a notifying rule has exactly one trigger recorded, killed or not
    notifying = sorted(i for i, a in expected.items() if a[0] in (rule_ids[2], rule_ids[5]))
    assert victim.triggers() == notifying == clean.triggers()
    marks = victim.checkpoints(rule_ids)
    assert set(marks) == set(rule_ids)


def test_sigterm_on_serve_finishes_the_cycle_and_exits_0(targets: tuple[Target, Target], tmp_path: Path) -> None:
    victim, _ = targets
    rules = crash_rules(tmp_path / "rules")
    rule_ids = [f"22222222-0000-0000-0000-{n:012d}" for n in range(1, 9)]
    now = datetime.now(UTC)
    victim.load(stage_events(0, 100, now - timedelta(minutes=30), now - timedelta(minutes=20)))
    proc = subprocess.Popen(
        [*siem_command(), "detect", "serve", "--rules", str(rules)],
        env=victim.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the cycle has started
    assert line.startswith("cycle: 8 rules due"), line + proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "8 of 8 rules ran" in err and err.rstrip().endswith("siem detect serve: stopped")
    assert "cycle: " not in err  # no second cycle after the signal
    marks = victim.checkpoints(rule_ids)
    assert set(marks) == set(rule_ids)  # the cycle in progress completed: every rule's checkpoint moved
    assert len(victim.alerts()) > 1000
