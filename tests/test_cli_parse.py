"""`siem parse`: the user tool and the contract the tests stand on."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from oracle import REPO, sample

from siem import formats
from siem.cli import main

DATASETS = [
    "aws.alb", "aws.waf", "aws.cloudtrail", "aws.vpcflow", "aws.route53_resolver", "aws.network_firewall",
    "kubernetes.audit", "linux.syslog", "linux.auth", "linux.auditd", "nginx.access", "nginx.error",
    "apache.access", "apache.error",
]  # fmt: skip


def test_list_types_prints_every_dataset(capsys) -> None:
    assert main(["parse", "--list-types"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert set(DATASETS) <= listed
    assert listed == set(formats.registry())


def test_parse_gzip_auto_detects_and_dead_letters(tmp_path: Path, capsys) -> None:
    lines = sample("alb/test-alb.log").read_bytes().splitlines()
    data = gzip.compress(b"\n".join([lines[0], b"garbage that is not ALB", lines[1]]) + b"\n")
    path = tmp_path / "no-known-path.gz"
    path.write_bytes(data)
    dead = tmp_path / "dead.ndjson"
    code = main(["parse", str(path), "--dead-letter", str(dead)])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [e["event"]["dataset"] for e in events] == ["aws.alb", "aws.alb"]
    assert all(e["_id"] and e["log"]["file"]["path"] == str(path) for e in events)
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(letters) == 1
    assert letters[0]["raw"] == "garbage that is not ALB"
    assert letters[0]["offset"] == len(lines[0]) + 1 and letters[0]["reason"]
    assert "dead-lettered: 1" in err


def test_parse_forced_type_and_unknown_type(tmp_path: Path, capsys) -> None:
    assert main(["parse", str(sample("alb/alb_al_valid_logs.log")), "--type", "aws.alb"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["parse", str(sample("alb/alb_al_valid_logs.log")), "--type", "aws.nope"]) == 2
    assert "unknown log type 'aws.nope'" in capsys.readouterr().err


def test_unknown_content_names_the_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mystery.txt"
    path.write_text("¯\\_(ツ)_/¯ nothing we know\n")
    assert main(["parse", str(path)]) == 1
    assert f"{path}: unknown log format" in capsys.readouterr().err


def test_console_script_runs_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "siem.cli", "parse", str(REPO / "tests/data/alb/alb_al_valid_logs.log")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "events: 2" in result.stderr
