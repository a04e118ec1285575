"""`siem posture` as a CI gate: exit codes, --fail-on, the table, colour, user errors, API errors.

Runs against the accounts of _posture_accounts.py on moto's server. The AccessDenied test switches
on moto's IAM enforcement (its /moto-api/reset-auth endpoint) for one run with a restricted user's
key, and switches it off again; moto answering AccessDenied is a real error path, not a fake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from _posture_accounts import APP, BAD, COMPLIANT, CT, NONCOMPLIANT, REPO, RULES, account, run_posture

from siem.cli import main
from siem.posture import report


@pytest.fixture(scope="module")
def compliant_env(aws_endpoint: str) -> dict[str, str]:
    return account(aws_endpoint, COMPLIANT)["env"]


@pytest.fixture(scope="module")
def noncompliant_env(aws_endpoint: str) -> dict[str, str]:
    return account(aws_endpoint, NONCOMPLIANT)["env"]


def test_fail_on_gates_on_severity_and_the_table_groups_by_it(aws_endpoint: str, compliant_env: dict) -> None:
    # a 500-day minimum makes only the medium-severity retention check fail (the groups keep 400 days)
    args = ["--regions", "us-east-1", "--bucket", CT, APP, "--rules", str(RULES), "--min-retention-days", "500"]
    code_medium, text = run_posture(aws_endpoint, compliant_env, *args, "--fail-on", "medium")
    code_high, text_all = run_posture(aws_endpoint, compliant_env, *args, "--fail-on", "high", "--all")
    assert (code_high, code_medium) == (0, 1)
    lines = text.splitlines()
    assert lines[0] == f"account {COMPLIANT} · regions us-east-1 · log buckets {CT}, {APP}"
    assert [line for line in lines if line in ("HIGH", "MEDIUM", "LOW")] == ["MEDIUM"]  # failing findings only
    medium = lines.index("MEDIUM")
    rows = [line.split()[:4] for line in lines[medium + 1 : medium + 3]]
    assert rows == [
        ["FAIL", "logs.retention", "us-east-1", "/aws/eks/batch/cluster"],
        ["FAIL", "logs.retention", "us-east-1", "/aws/eks/prod/cluster"],
    ]
    assert lines[medium + 1].endswith("retention 400 days < minimum 500")
    assert "  logs.retention (medium): CloudWatch Logs retention not shorter than the minimum" in lines
    assert lines[-1] == "36 passed, 2 failed, 0 could not be checked, 0 not applicable (--all lists every finding)"
    assert "\033[" not in text  # not a terminal: no colour codes
    # --all: every finding, under its severity
    lines = text_all.splitlines()
    assert [line for line in lines if line in ("HIGH", "MEDIUM", "LOW")] == ["HIGH", "MEDIUM", "LOW"]
    high, medium, low = lines.index("HIGH"), lines.index("MEDIUM"), lines.index("LOW")
    assert ["PASS", "s3.versioning", "us-east-1", APP] in [line.split()[:4] for line in lines[high:medium]]
    assert ["FAIL", "logs.retention", "us-east-1", "/aws/eks/prod/cluster"] in [
        line.split()[:4] for line in lines[medium:low]
    ]
    assert ["PASS", "s3.default_encryption", "us-east-1", CT] in [line.split()[:4] for line in lines[low:]]
    assert lines[-1] == "36 passed, 2 failed, 0 could not be checked, 0 not applicable"


def test_fail_on_defaults_to_low() -> None:
    from siem.cli import build_parser

    assert build_parser().parse_args(["posture"]).fail_on == "low"


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = os.openpty()
    read, write = os.pipe()
    with os.fdopen(follower, "w") as tty, os.fdopen(write, "w") as pipe:
        monkeypatch.delenv("NO_COLOR", raising=False)
        assert (report.use_colour(tty), report.use_colour(pipe)) == (True, False)
        monkeypatch.setenv("NO_COLOR", "1")
        assert report.use_colour(tty) is False
    os.close(leader)
    os.close(read)


def test_default_log_buckets_come_from_the_trails_and_every_call_is_read_only(
    aws_endpoint: str, compliant_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.client

    calls: list[str] = []
    real_call = botocore.client.BaseClient._make_api_call

    def recording(self: botocore.client.BaseClient, operation: str, params: dict) -> dict:  # a spy: the call goes on
        calls.append(operation)
        return real_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    code, out = run_posture(aws_endpoint, compliant_env, "--regions", "us-east-1", "--rules", str(RULES), "--json")
    doc = json.loads(out)
    audit = f"audit-logs-{COMPLIANT}"
    assert doc["log_buckets"] == [audit, CT]
    assert sorted({f["resource"] for f in doc["findings"] if f["check"] == "s3.versioning"}) == [audit, CT]
    # the load balancers log to app-logs, which is then not one of the log buckets: named, and failing
    elb = {f["resource"]: (f["status"], f["detail"]) for f in doc["findings"] if f["check"] == "elb.access_logs"}
    assert elb["application web"] == ("fail", f"access logs go to s3://{APP}, not a log bucket ({audit}, {CT})")
    assert code == 1
    assert len(calls) > 40
    assert sorted({op for op in calls if not op.startswith(("Get", "Describe", "List"))}) == []


def test_default_regions_are_the_enabled_regions_starting_with_the_home_one(
    aws_endpoint: str, compliant_env: dict
) -> None:
    import argparse

    import boto3

    from siem.posture.cli import _regions

    session = boto3.Session(**_session_kwargs(compliant_env))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", aws_endpoint)
        regions = _regions(argparse.Namespace(regions=None), session, "eu-west-1")
    assert regions[0] == "eu-west-1"
    assert {"us-east-1", "ap-northeast-1"} <= set(regions[1:])
    assert len(regions) == len(set(regions))


def test_api_errors_are_reported_per_check_and_the_run_goes_on(aws_endpoint: str, noncompliant_env: dict) -> None:
    """AccessDenied from moto's IAM enforcement: one user may not read bucket policies or anything of WAF."""
    import boto3

    iam = boto3.Session(**_session_kwargs(noncompliant_env)).client("iam", endpoint_url=aws_endpoint)
    iam.create_user(UserName="limited-auditor")
    iam.put_user_policy(
        UserName="limited-auditor",
        PolicyName="read-most",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    # no PutObject: this user is not a log writer, whatever order the tests run in
                    {"Effect": "Deny", "Action": ["s3:GetBucketPolicy", "s3:PutObject", "wafv2:*"], "Resource": "*"},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="limited-auditor")["AccessKey"]
    limited = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    missing = f"no-such-bucket-{NONCOMPLIANT}"
    args = ["--regions", "us-east-1", "--bucket", BAD, missing, "--rules", str(RULES), "--json"]
    previous = requests.post(f"{aws_endpoint}/moto-api/reset-auth", data=b"0", timeout=10).json()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("AWS_SESSION_TOKEN", raising=False)
            code, out = run_posture(aws_endpoint, limited, *args)
    finally:
        requests.post(
            f"{aws_endpoint}/moto-api/reset-auth", data=previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"], timeout=10
        )
    findings = json.loads(out)["findings"]
    by_check = {(f["check"], f["resource"]): f for f in findings}
    denied = by_check["s3.policy_delete_grant", BAD]
    assert denied["status"] == "error"
    assert denied["detail"].startswith("AccessDenied on GetBucketPolicy: ")
    waf = by_check["waf.logging", "us-east-1"]
    assert waf["status"] == "error" and "wafv2:ListWebACLs" in waf["detail"]
    gone = by_check["s3.versioning", missing]
    assert (gone["status"], gone["detail"].split(":")[0]) == ("error", "NoSuchBucket on GetBucketLocation")
    # the checks the user may run still give their verdicts
    assert by_check["s3.versioning", BAD]["status"] == "fail"
    assert by_check["logs.retention", "/aws/eks/prod/cluster"]["status"] == "fail"
    assert code == 1


def test_an_error_alone_fails_the_gate() -> None:
    from siem.posture.model import Finding, Status

    error = Finding("waf.logging", "t", "high", Status.ERROR, "us-east-1", "us-east-1", "AccessDenied", "w", "f")
    passing = Finding("logs.retention", "t", "medium", Status.PASS, "us-east-1", "g", "ok", "w", "f")
    assert report.exit_code([error, passing], "high") == 1
    assert report.exit_code([passing], "low") == 0


def _session_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
        "region_name": "us-east-1",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regions", "Europe"], "siem: --regions: Europe is not an AWS region name (like eu-west-1)"),
        (["--regions", "us-east-1", "--min-retention-days", "0"], "siem: --min-retention-days 0: must be 1 or more"),
        (
            ["--regions", "us-east-1", "--rules", "/nonexistent/rules"],
            "siem: --rules: /nonexistent/rules not found (the DeleteObject alert check reads the rules in use)",
        ),
    ],
    ids=["bad-region", "retention-zero", "missing-rules"],
)
def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["posture", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n"
    assert captured.out == ""


def test_no_credentials_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    assert main(["posture", "--regions", "us-east-1", "--rules", str(RULES)]) == 2
    err = capsys.readouterr().err
    assert err == "siem: no AWS credentials found (boto3 default chain: environment, profile, instance or task role)\n"


def test_fail_on_accepts_only_the_three_severities(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["posture", "--fail-on", "critical"])
    assert exited.value.code == 2
    assert "invalid choice: 'critical'" in capsys.readouterr().err


def test_readme_and_docs_name_every_check() -> None:
    from siem.posture.runner import ALL_CHECKS

    docs = (REPO / "docs/posture.md").read_text()
    assert [c.id for c in ALL_CHECKS if f"`{c.id}`" not in docs] == []
    assert "docs/posture.md" in (REPO / "README.md").read_text()
