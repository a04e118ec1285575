"""`siem detect run` as a user runs it: summaries, --json, exit codes 0/1/2, on both stores."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_detect_runner import BURST, NOW, SINGLE, SUPPRESSED, iso, scenario, write_events, write_rules

import siem.cli

UNMAPPED = """
title: Something on a product we do not carry
id: 11111111-0000-0000-0000-0000000000ff
status: test
logsource: {product: zos, service: smf}
detection:
  sel: {Type: 80}
  condition: sel
level: low
"""


@pytest.fixture
def siem_cli() -> Any:
    """The `siem` command's main, in process."""
    return siem.cli.main


@pytest.fixture(params=["embedded", "opensearch"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment that points `siem` at a real store of each kind; yields a store to seed it."""
    from test_detect_runner import _opensearch_store

    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    if request.param == "embedded":
        from siem.sinks.embedded import EmbeddedStore

        monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
        monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
        store = EmbeddedStore(tmp_path / "data")
        yield store
        store.close()
        return
    opened = _opensearch_store(request)
    store = next(opened)
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", request.getfixturevalue("opensearch_url"))
    monkeypatch.setenv("SIEM_OPENSEARCH_INDEX_PREFIX", store.prefix)
    yield store
    opened.close()


def _seed(store: Any) -> None:
    write_events(store, scenario())
    if store.name == "embedded":
        store.close()  # the command opens the DuckDB file itself


def test_retro_hunt_json_summary_and_rerun_finds_nothing_new(
    siem_cli: Any, store_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rules(tmp_path / "rules")
    _seed(store_env)
    argv = ["detect", "run", "--once", "--rules", str(tmp_path / "rules"), "--json"]
    argv += ["--since", "2026-03-01T12:00:00", "--until", iso(NOW)]  # a zone-less time is UTC
    assert siem_cli(argv) == 0
    out, err = capsys.readouterr()
    summary = orjson.loads(out)
    assert summary["mode"] == "retro-hunt"
    assert (summary["rules_run"], summary["alerts_new"], summary["alerts_updated"]) == (3, 17, 0)
    assert summary["events_scanned"] == 13
    assert {r["rule"]: r["new"] for r in summary["rules"]} == {SINGLE: 12, SUPPRESSED: 3, BURST: 2}
    assert "3 of 3 rules ran, 13 events scanned, 17 new alerts, 0 updated" in err
    assert siem_cli(argv) == 0
    again = orjson.loads(capsys.readouterr()[0])
    assert (again["alerts_new"], again["alerts_updated"]) == (0, 0)


def test_a_cycle_runs_with_the_loaded_rules_left_out_of_garbage_collection_and_they_return_after(
    siem_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from siem.detect.runner import Runner

    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    write_rules(tmp_path / "rules", ("single.yml",))
    frozen_during: list[int] = []
    run_cycle = Runner.run_cycle

    def watched(self: Runner, *args: Any, **kw: Any) -> Any:
        frozen_during.append(gc.get_freeze_count())
        return run_cycle(self, *args, **kw)

    monkeypatch.setattr(Runner, "run_cycle", watched)
    assert siem_cli(["detect", "run", "--once", "--rules", str(tmp_path / "rules")]) == 0
    assert frozen_during[0] > 1000  # the rules and everything loaded before them
    assert gc.get_freeze_count() == 0


def test_a_rule_that_cannot_run_is_reported_skipped_others_run_exit_1(
    siem_cli: Any, store_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rules"
    write_rules(folder, ("single.yml",))
    (folder / "zos.yml").write_text(UNMAPPED)
    (folder / "broken.yml").write_text("title: [unclosed\n")
    _seed(store_env)
    code = siem_cli(["detect", "run", "--once", "--rules", str(folder), "--since", "2026-03-01T00:00:00Z", "--json"])
    assert code == 1
    out, err = capsys.readouterr()
    summary = orjson.loads(out)
    assert summary["rules_run"] == 1 and summary["rules_skipped"] == 1 and summary["alerts_new"] == 12
    assert len(summary["load_errors"]) == 1 and "broken.yml" in summary["load_errors"][0]
    assert "skipped" in err and "zos.yml" in err and "not carried by any dataset" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "/nonexistent/rules"], "/nonexistent/rules: no such rule file or folder"),
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 date or time"),
        (["--since", "2026-03-02", "--until", "2026-03-01"], "is not before --until"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    siem_cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    write_rules(tmp_path / "rules", ("single.yml",))
    if "--rules" not in args:
        args = [*args, "--rules", str(tmp_path / "rules")]
    assert siem_cli(["detect", "run", "--once", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_scheduled_run_sets_checkpoints_and_a_second_run_continues_from_them(
    siem_cli: Any, store_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from test_detect_runner import burst_events

    write_rules(tmp_path / "rules", ("single.yml",))
    now = datetime.now(UTC)
    write_events(store_env, burst_events(0, now - timedelta(minutes=30), "192.0.2.9", now - timedelta(minutes=5)))
    if store_env.name == "embedded":
        store_env.close()
    monkeypatch.setenv("SIEM_DETECT_SETTLE_SECONDS", "0")
    argv = ["detect", "run", "--once", "--rules", str(tmp_path / "rules"), "--json"]
    assert siem_cli(argv) == 0
    first = orjson.loads(capsys.readouterr()[0])
    assert first["mode"] == "scheduled" and first["alerts_new"] == 6
    start, end = first["rules"][0]["window"]
    assert siem_cli(argv) == 0
    second = orjson.loads(capsys.readouterr()[0])
    assert second["alerts_new"] == 0
    # the second window starts `overlap` (120 s) before where the first ended
    assert second["rules"][0]["window"][0] == iso(
        datetime.fromisoformat(end.replace("Z", "+00:00")) - timedelta(seconds=120)
    )
    assert start < end
