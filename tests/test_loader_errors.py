"""Problems a user must fix first: one clear stderr line, exit 2, never a traceback (issue 8).

Also config ranges (a setting that would silently discard data is refused, naming its key) and
Ctrl-C during a load (stop cleanly, print what was done, exit 130).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main
from siem.config import ConfigError, load_settings

ALB = REPO / "tests/data/alb/test-alb.log"


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("SIEM_DATA_DIR", str(data))
    return data


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- 5. ranges --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("opensearch", "max_retries", -1),
        ("opensearch", "bulk_batch", 0),
        ("opensearch", "timeout", 0),
        ("sqs", "wait_seconds", 21),
        ("sqs", "wait_seconds", -1),
        ("detect", "max_event_ids", -5),
    ],
)
def test_out_of_range_setting_is_refused_naming_the_key(tmp_path: Path, section: str, key: str, value: int) -> None:
    config = tmp_path / "siem.yml"
    config.write_text(f"{section}:\n  {key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match=f"SIEM_{section.upper()}_{key.upper()}"):
        load_settings(None, env={f"SIEM_{section.upper()}_{key.upper()}": str(value)})


def test_boundary_values_are_accepted() -> None:
    env = {"SIEM_OPENSEARCH_MAX_RETRIES": "0", "SIEM_SQS_WAIT_SECONDS": "0", "SIEM_OPENSEARCH_TIMEOUT": "1"}
    settings = load_settings(None, env=env)
    assert settings.opensearch["max_retries"] == 0 and settings.sqs["wait_seconds"] == 0


def test_negative_max_retries_exits_2_before_loading(embedded: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_MAX_RETRIES", "-1")
    assert main(["load", str(ALB)]) == 2
    assert "SIEM_OPENSEARCH_MAX_RETRIES" in _one_line(capsys.readouterr().err)


# --- sources checked before anything is loaded ---------------------------------------------------------


def test_missing_source_beside_a_good_one_loads_nothing_and_exits_2(embedded: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing"
    assert main(["load", str(ALB), str(missing)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(missing) in line and "no such file" in line
    assert not (embedded / "events.duckdb").exists()  # the good file was not half-loaded either


def test_empty_folder_is_reported_not_a_silent_zero(embedded: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    assert main(["load", str(empty)]) == 2
    assert "no files" in _one_line(capsys.readouterr().err)


def test_empty_s3_prefix_is_reported(embedded: Path, aws_endpoint, bucket, capsys) -> None:
    assert main(["load", f"s3://{bucket}/AWSLogs/nothing-here/", "--endpoint-url", aws_endpoint]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"s3://{bucket}/AWSLogs/nothing-here/" in line and "no objects" in line


def test_unreachable_s3_endpoint_exits_2(embedded: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["load", "s3://bucket/prefix/", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("siem: S3 error") and "127.0.0.1:9" in line


def test_s3_without_credentials_exits_2(tmp_path: Path, aws_endpoint) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIEM_", "AWS_"))}
    env.update(
        SIEM_DATA_DIR=str(tmp_path / "data"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "siem.cli", "load", "s3://bucket/prefix/", "--endpoint-url", aws_endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "credentials" in _one_line(done.stderr)


# --- arguments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pivot --ip 192.0.2.1", "dead-letters"])
def test_negative_limit_exits_2(embedded: Path, capsys, command: str) -> None:
    assert main([*command.split(), "--limit", "-1"]) == 2
    assert "--limit" in _one_line(capsys.readouterr().err)


def test_since_out_of_range_exits_2(embedded: Path, capsys) -> None:
    assert main(["pivot", "--ip", "192.0.2.1", "--since", "9999-12-31T23:59:59-14:00"]) == 2
    assert "--since" in _one_line(capsys.readouterr().err)


# --- the embedded store held by another process ---------------------------------------------------------

_HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _hold(db: Path, mode: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(db), mode], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    return holder


def test_load_while_another_process_writes_says_store_in_use_with_pid(embedded: Path, capsys) -> None:
    assert main(["load", str(ALB)]) == 0
    capsys.readouterr()
    holder = _hold(embedded / "events.duckdb", "rw")
    try:
        assert main(["load", str(ALB)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "in use by another process" in line and f"PID {holder.pid}" in line
        assert main(["pivot", "--ip", "67.43.156.20"]) == 2
        assert "in use by another process" in _one_line(capsys.readouterr().err)
    finally:
        holder.kill()
        holder.wait()


def test_pivot_and_dead_letters_open_the_store_read_only(embedded: Path, capsys) -> None:
    assert main(["load", str(ALB)]) == 0
    capsys.readouterr()
    holder = _hold(embedded / "events.duckdb", "ro")  # another reader: readers share the file
    try:
        assert main(["pivot", "--ip", "67.43.156.20"]) == 0
        assert "of 1 events" in capsys.readouterr().err
        assert main(["dead-letters"]) == 0
    finally:
        holder.kill()
        holder.wait()


def test_pivot_on_a_store_never_loaded_is_an_error_and_not_created(embedded: Path, capsys) -> None:
    assert main(["pivot", "--ip", "192.0.2.1"]) == 2  # a mistyped SIEM_DATA_DIR, not a silent "0 of 0"
    assert f"no embedded store in {embedded}" in capsys.readouterr().err
    assert not (embedded / "events.duckdb").exists()


# --- Ctrl-C and a downed cluster ---------------------------------------------------------------------------


def test_ctrl_c_during_load_stops_cleanly_prints_summary_exits_130(
    embedded: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.log").write_bytes(ALB.read_bytes())
    import dataclasses

    import siem.sources.local as local

    real = local.local_objects

    def ctrl_c_then_open(obj):
        signal.raise_signal(signal.SIGINT)
        return obj.opener()

    def interrupting(path, *selection):  # Ctrl-C arrives while the third file is being read
        for n, obj in enumerate(real(path, *selection)):
            yield dataclasses.replace(obj, opener=lambda o=obj: ctrl_c_then_open(o)) if n == 2 else obj

    monkeypatch.setattr(local, "local_objects", interrupting)
    assert main(["load", str(folder)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
    assert "objects: 3 (0 failed)" in err and "written: 30" in err  # the object in hand was finished
    assert main(["pivot", "--ip", "67.43.156.20"]) == 0
    assert "of 3 events" in capsys.readouterr().err


def test_downed_opensearch_is_one_line_not_urllib3_tracebacks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEM_")}
    env["SIEM_OPENSEARCH_URL"] = "http://127.0.0.1:9"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "siem.cli", "load", str(ALB)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr).startswith("siem: OpenSearch error")
    assert time.monotonic() - started < 110
