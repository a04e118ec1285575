"""--include/--exclude on folder and prefix loads, absolute log.file.path for local files, and sources
or stores that hold nothing reported as errors instead of a silent "0 of 0"."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from oracle import REPO

from siem.cli import main

ALB = (REPO / "tests/data/alb/test-alb.log").read_bytes()  # 10 events
ALB_SMALL = (REPO / "tests/data/alb/alb_al_valid_logs.log").read_bytes()  # 2 events


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    monkeypatch.delenv("SIEM_CONFIG", raising=False)
    monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    for relative, body in {
        "alb/2024/05/01/a.log": ALB,
        "alb/2024/05/01/b.log.gz.tmp": ALB,
        "alb/2024/05/02/a.log": ALB_SMALL,
        "other/a.log": ALB_SMALL,
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)
    return root


def _load_json(argv: list[str], capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_include_and_exclude_globs_on_a_local_folder(embedded: Path, folder: Path, capsys) -> None:
    summary = _load_json(["load", str(folder), "--include", "alb/*", "--exclude", "*.tmp"], capsys)
    assert (summary["objects"], summary["events"]) == (2, 12)  # alb/…/a.log twice, not the .tmp nor other/


def test_include_and_exclude_globs_on_an_s3_prefix(embedded: Path, s3, bucket, aws_endpoint, capsys) -> None:
    for key, body in {
        "p/alb/2024/05/01/a.log": ALB,
        "p/alb/2024/05/01/a.log.tmp": ALB,
        "p/cloudtrail/x.log": ALB_SMALL,
    }.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    argv = ["load", f"s3://{bucket}/p/", "--endpoint-url", aws_endpoint, "--include", "alb/*", "--exclude", "*.tmp"]
    summary = _load_json(argv, capsys)
    assert (summary["objects"], summary["events"]) == (1, 10)


def test_local_log_file_path_is_absolute(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(folder)
    assert main(["parse", "other/a.log"]) == 0
    paths = {json.loads(line)["log"]["file"]["path"] for line in capsys.readouterr().out.splitlines()}
    assert paths == {f"{folder}/other/a.log"}
    assert os.path.isabs(next(iter(paths)))


def test_a_folder_whose_files_are_all_excluded_is_an_error(embedded: Path, folder: Path, capsys) -> None:
    assert main(["load", str(folder), "--exclude", "*.log*"]) == 2
    assert f"{folder}: no files in this folder (hidden files are skipped) match --exclude '*.log*'" in (
        capsys.readouterr().err
    )
    assert not embedded.exists()  # nothing was created for a load that had nothing to load


def test_a_read_command_on_a_store_that_does_not_exist_is_an_error(embedded: Path, capsys) -> None:
    assert main(["dead-letters"]) == 2
    assert f"no embedded store in {embedded}" in capsys.readouterr().err
    assert not embedded.exists()


def test_since_on_a_local_folder_and_a_file_named_on_its_own(embedded: Path, folder: Path, capsys) -> None:
    summary = _load_json(["load", str(folder), "--since", "2024-05-02"], capsys)
    # alb/2024/05/02/a.log (2 events) and other/a.log (no date in its path: kept), not the 05/01 folder
    assert (summary["objects"], summary["events"]) == (2, 4)
    summary = _load_json(["load", str(folder / "alb/2024/05/01/a.log"), "--exclude", "*", "--force"], capsys)
    assert (summary["objects"], summary["events"]) == (1, 10)
