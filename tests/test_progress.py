"""Progress: a live line on a terminal (a real pty), nothing when stderr is not one, key=value log
lines with -v, and a --json summary on parse (templates --json: tests/test_ledger.py)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main

ALB = (REPO / "tests/data/alb/test-alb.log").read_bytes()  # 10 events


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "logs" / "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01"
    root.mkdir(parents=True)
    for name in ("a.log", "b.log", "c.log"):
        (root / name).write_bytes(ALB)
    (root / "d.log").write_bytes(ALB.rstrip(b"\n") + b"\nhttp 2024-05-01T00:00:00Z x\n")  # one dead letter
    return tmp_path / "logs"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEM_")}
    return {**env, "SIEM_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}


def test_a_terminal_gets_a_live_progress_line(folder: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "siem.cli", "load", str(folder)],
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    code = proc.wait(timeout=60)
    assert code == 1  # one dead letter
    text = screen.decode("utf-8", errors="replace")
    last = text.split("\rload:")[-1].split("\r\n")[0]  # the line as last drawn
    assert "100%" in last and "4/4" in last, text
    assert "events=40 " in last and "dead_letters=1" in last and "read=" in last, last


def test_not_a_terminal_no_progress_unless_verbose(folder: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "siem.cli", "-v", "load", str(folder)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("INFO progress ")]
    assert progress[-1].startswith("INFO progress command=load objects=4 total=4 events=40 events_per_s="), done.stderr
    assert "dead_letters=1 skipped=0" in progress[-1]
    assert sum(line.startswith("INFO object done path=") for line in done.stderr.splitlines()) == 4
    assert "\r" not in done.stderr

    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data2"))
    assert main(["load", str(folder)]) == 1  # stderr is not a terminal, no -v: the summary only
    err = capsys.readouterr().err
    assert err.startswith("store: embedded\nobjects: 4 (0 failed)"), err


def test_parse_json_summary_is_the_last_stderr_line(folder: Path, capsys) -> None:
    assert main(["parse", str(folder), "--json"]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 40
    summary = json.loads(err.splitlines()[-1])
    assert (summary["objects"], summary["events"], summary["dead_lettered"]) == (4, 40, 1)
