"""`siem rules lint | test | compile`: the gate every shipped rule passes in CI.

The shipped rules are linted strictly (every rule has matching and non-matching cases) and their
own cases run through the real parsers on all three engines — OpenSearch on the real node. The
error paths are checked on rule files written here: a malformed rule is one file:line message and
exit 1, a missing path exit 2, and a failing case exit 1 naming the rule, the case and the engine.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from siem.cli import main

REPO = Path(__file__).resolve().parents[1]
DETECTIONS = REPO / "detections"

GOOD = """\
title: Trail deleted (test rule)
id: 2f0c6f55-3a55-4b8b-8f58-2f3f3b8f0a11
status: test
description: a test rule
author: siem tests
date: 2026-11-28
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: DeleteTrail}
  condition: selection
level: high
tests:
  - name: DeleteTrail fires
    lines: |
      {"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DeleteTrail","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.5","userIdentity":{"type":"IAMUser","userName":"mallory","accountId":"123456789012"},"eventID":"a1","eventType":"AwsApiCall","recipientAccountId":"123456789012"}
    expect: {match: %s}
  - name: StartLogging does not
    lines: |
      {"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StartLogging","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.5","userIdentity":{"type":"IAMUser","userName":"mallory","accountId":"123456789012"},"eventID":"a2","eventType":"AwsApiCall","recipientAccountId":"123456789012"}
    expect: {match: false}
"""


def test_shipped_rules_lint_clean_in_strict_mode(capsys) -> None:
    assert main(["rules", "lint", "--strict", str(DETECTIONS)]) == 0, capsys.readouterr().out
    assert "0 problems" in capsys.readouterr().err


def test_shipped_rules_pass_their_own_cases_on_all_three_engines(opensearch_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SIEM_OPENSEARCH_URL", opensearch_url)
    code = main(["rules", "test", "--json", str(DETECTIONS)])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failed = [r for r in results if not r["ok"]]
    assert code == 0 and not failed, failed[:5]
    assert {r["engine"] for r in results} == {"offline", "duckdb", "opensearch"}
    assert len({r["file"] for r in results}) >= 30


def test_a_failing_case_is_exit_1_naming_rule_case_and_engine(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("SIEM_OPENSEARCH_URL", raising=False)
    rule = tmp_path / "wrong.yml"
    rule.write_text(GOOD % "false", encoding="utf-8")  # the DeleteTrail case claims no match
    assert main(["rules", "test", str(rule)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "DeleteTrail fires [offline]" in out and "DeleteTrail fires [duckdb]" in out
    rule.write_text(GOOD % "true", encoding="utf-8")
    assert main(["rules", "test", str(rule)]) == 0


def test_a_malformed_rule_is_one_file_line_message_and_exit_1(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        textwrap.dedent(
            """\
            title: bad suppression
            logsource: {product: aws, service: cloudtrail}
            detection:
              selection: {eventName: DeleteTrail}
              condition: selection
            suppress: {by: source.ip, for: 1h}
            """
        ),
        encoding="utf-8",
    )
    assert main(["rules", "lint", str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{bad}:6: suppress.by: expected a list of field names"]


def test_an_uncarried_field_is_a_lint_error_naming_it(tmp_path: Path, capsys) -> None:
    rule = tmp_path / "cookie.yml"
    rule.write_text(
        "title: cookie rule\nlogsource: {category: proxy}\n"
        "detection:\n  selection: {cs-cookie|contains: evil}\n  condition: selection\n",
        encoding="utf-8",
    )
    assert main(["rules", "lint", str(rule)]) == 1
    assert "cs-cookie" in capsys.readouterr().out


def test_a_missing_rules_path_is_exit_2_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["rules", "test", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such rule file or folder" in err[0]


def test_compile_shows_structured_dsl_and_bound_sql(tmp_path: Path, capsys) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(GOOD % "true", encoding="utf-8")
    assert main(["rules", "compile", str(rule), "--target", "opensearch"]) == 0
    dsl = capsys.readouterr().out
    assert '"case_insensitive": true' in dsl and "query_string" not in dsl and '"deletetrail"' in dsl
    assert main(["rules", "compile", str(rule), "--target", "duckdb"]) == 0
    sql = capsys.readouterr().out
    sql_text, params = sql.split("-- parameters:")
    assert "deletetrail" not in sql_text.lower() and "deletetrail" in params.lower()
