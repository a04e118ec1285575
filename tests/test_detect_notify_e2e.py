"""From log line to signed webhook through the CLI: `siem load`, then `siem detect run --once`.

A cron-driven `detect run --once` must notify as `detect serve` does: the alert's trigger is
recorded in the outbox and delivered in the same command, once — reruns find the alert again but
never send it twice. The receiver is a real HTTP server on 127.0.0.1; the signature is checked with
the snippet docs/notifications.md shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from test_notify_delivery import Receiver, documented_verify

from siem.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "samples" / "logs" / "cloudtrail" / "test-delete-trail-json.log"
RULE = REPO / "detections" / "aws" / "cloudtrail" / "aws_cloudtrail_trail_stopped_or_deleted.yml"
SECRET = "s3cr3t-for-the-test-only"
README = REPO / "README.md"
HUNT = ["--since", "2000-01-01T00:00:00Z", "--until", "2030-01-01T00:00:00Z"]


def readme_verify() -> Any:
    """The ``verify`` snippet exactly as the README shows it."""
    (block,) = [
        b for b in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S) if "def verify" in b
    ]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec"), namespace)
    return namespace["verify"]


def test_detect_run_once_delivers_each_new_alert_once_signed(tmp_path: Path, monkeypatch, capsys) -> None:
    receiver = Receiver()
    receiver.up()
    try:
        config = tmp_path / "siem.yml"
        config.write_text(
            "notifications:\n"
            f"  - {{name: oncall, type: webhook, url: '{receiver.url()}', secret_env: SIEM_TEST_HOOK_SECRET,"
            " levels: [high]}\n",
            encoding="utf-8",
        )
        monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
        monkeypatch.setenv("SIEM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("SIEM_TEST_HOOK_SECRET", SECRET)
        assert main(["--config", str(config), "load", str(SAMPLE)]) == 0
        assert main(["--config", str(config), "detect", "run", "--once", "--rules", str(RULE), *HUNT]) == 0
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        assert documented_verify()(SECRET, request["headers"], request["body"])
        assert readme_verify()(SECRET, request["headers"], request["body"])
        assert not readme_verify()(SECRET, request["headers"], request["body"] + b" ")
        (body,) = receiver.bodies()
        assert body["rule"]["name"] == "CloudTrail Trail Stopped or Deleted"
        assert body["rule"]["author"] == "siem project"
        assert body["event"]["action"] == ["DeleteTrail"]
        assert "sent" in capsys.readouterr().err

        # a rerun finds the same alert: nothing new, nothing sent again
        assert main(["--config", str(config), "detect", "run", "--once", "--rules", str(RULE), *HUNT]) == 0
        assert len(receiver.requests) == 1
        assert SECRET not in capsys.readouterr().err
    finally:
        receiver.down()
