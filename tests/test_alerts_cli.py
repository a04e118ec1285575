"""`siem alerts list|show|ack|close` on both stores: status with who and why, filters, and the
PagerDuty-style resolve a close records in the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from test_detect_runner import NOW, SINGLE, SUPPRESSED, iso, scenario, write_events
from test_detect_runner_cli import siem_cli, store_env  # noqa: F401  (fixtures)

NOTIFY_RULE = f"""
title: Failed logins by source
id: {SUPPRESSED}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: medium
suppress: {{by: [source.ip], for: 1h}}
notify: [pager]
---
title: Console login failure
id: {SINGLE}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: ConsoleLogin, event.outcome: failure}}
  condition: sel
level: low
"""
CONFIG = """
notifications:
  - {name: pager, type: pagerduty, routing_key_env: PD_ROUTING_KEY}
"""


def _prepare(store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "logins.yml").write_text(NOTIFY_RULE)
    config = tmp_path / "siem.yaml"
    config.write_text(CONFIG)
    monkeypatch.setenv("SIEM_CONFIG", str(config))
    write_events(store, scenario())
    if store.name == "embedded":
        store.close()
    return ["detect", "run", "--once", "--rules", str(rules), "--since", "2026-03-01T00:00:00Z", "--until", iso(NOW)]


def _list(cli: Any, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert cli(["alerts", "list", "--json", *args]) == 0
    return [orjson.loads(line) for line in capsys.readouterr()[0].splitlines()]


def test_ack_and_close_record_who_and_why_and_list_filters_by_status(
    siem_cli: Any,  # noqa: F811
    store_env: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert siem_cli(_prepare(store_env, tmp_path, monkeypatch)) == 0
    alerts = _list(siem_cli, capsys)
    assert len(alerts) == 15 and {a["alert"]["status"] for a in alerts} == {"open"}
    assert alerts == sorted(alerts, key=lambda a: a["alert"]["last_seen"], reverse=True)
    suppressed = [a["alert"]["id"] for a in alerts if a["rule"]["id"] == SUPPRESSED]
    assert len(suppressed) == 3
    first, second = suppressed[:2]

    monkeypatch.setenv("USER", "carol")
    assert siem_cli(["alerts", "ack", first, "--reason", "looking into it"]) == 0
    assert siem_cli(["alerts", "close", first, second, "--by", "dave", "--reason", "pentest"]) == 0
    capsys.readouterr()
    assert siem_cli(["alerts", "show", first]) == 0
    shown = orjson.loads(capsys.readouterr()[0])
    assert shown["alert"]["status"] == "closed"
    assert (shown["alert"]["status_by"], shown["alert"]["status_reason"]) == ("dave", "pentest")
    assert shown["alert"]["status_at"] >= "2026"
    # the trigger recorded when the alert was new, and the resolve the close recorded
    assert shown["alert"]["notifications"] == {"pager": "pending", "pager/resolve": "pending"}

    closed = _list(siem_cli, capsys, "--status", "closed")
    assert sorted(a["alert"]["id"] for a in closed) == sorted([first, second])
    assert len(_list(siem_cli, capsys, "--status", "open")) == 13
    assert len(_list(siem_cli, capsys, "--rule", SUPPRESSED)) == 3
    assert len(_list(siem_cli, capsys, "--rule", "Console login failure")) == 12
    assert len(_list(siem_cli, capsys, "--since", "2026-03-02T11:00:00Z")) == 8  # second burst, lone failure

    # acknowledging records the user from $USER; a rerun of the detection keeps every status
    third = suppressed[2]
    assert siem_cli(["alerts", "ack", third]) == 0
    assert siem_cli(_prepare_rerun(tmp_path)) == 0
    after = {a["alert"]["id"]: a["alert"] for a in _list(siem_cli, capsys)}
    assert after[third]["status"] == "acknowledged" and after[third]["status_by"] == "carol"
    assert after[third]["status_reason"] is None
    assert after[first]["status"] == "closed"


def _prepare_rerun(tmp_path: Path) -> list[str]:
    return ["detect", "run", "--once", "--rules", str(tmp_path / "rules"), "--since", "2026-03-01T00:00:00Z"]


def test_unknown_alert_id_is_a_one_line_error_exit_2(
    siem_cli: Any,  # noqa: F811
    store_env: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert siem_cli(_prepare(store_env, tmp_path, monkeypatch)) == 0
    capsys.readouterr()
    assert siem_cli(["alerts", "close", "0" * 32]) == 2
    assert siem_cli(["alerts", "show", "f" * 32]) == 2
    err = capsys.readouterr()[1]
    assert err.splitlines() == [f"siem: no alert {'0' * 32}", f"siem: no alert {'f' * 32}"]
