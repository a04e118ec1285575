"""Every posture check, passing on an account that keeps its logs and failing on one that does not.

Both accounts live on moto's server (see _posture_accounts.py); `siem posture --json` runs in-process
once per account (module scope) and each test reads its verdicts. Expected verdicts are written out
by hand from what the builders configured.
"""

from __future__ import annotations

import json
import re
import shutil

import boto3
import pytest
from _posture_accounts import (
    ALL_CHECK_IDS,
    APP,
    BAD,
    COMPLIANT,
    CT,
    NONCOMPLIANT,
    PLAIN,
    REPO,
    RULES,
    account,
    assume,
    run_posture,
)

from siem.posture import buckets, cloudtrail, iam_keys
from siem.posture.context import Context
from siem.posture.runner import run


@pytest.fixture(scope="module")
def compliant(aws_endpoint: str) -> dict:
    built = account(aws_endpoint, COMPLIANT)
    args = ["--regions", "us-east-1", "eu-west-1", "--bucket", CT, APP, "--rules", str(RULES), "--json"]
    code, out = run_posture(aws_endpoint, built["env"], *args)
    return {"code": code, "report": json.loads(out), **built}


@pytest.fixture(scope="module")
def noncompliant(aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    built = account(aws_endpoint, NONCOMPLIANT)
    rules = tmp_path_factory.mktemp("rules")  # the shipped deletion rule, retired
    shipped = REPO / "detections/aws/s3/aws_s3_log_bucket_object_deletion.yml"
    text = shipped.read_text().replace("status: experimental", "status: deprecated", 1)
    (rules / shipped.name).write_text(text)
    shutil.copy(REPO / "detections/aws/s3/aws_s3_bucket_versioning_suspended.yml", rules)
    args = ["--regions", "us-east-1", "--bucket", BAD, PLAIN, "--rules", str(rules), "--fail-on", "high", "--json"]
    code, out = run_posture(aws_endpoint, built["env"], *args)
    return {"code": code, "report": json.loads(out), "rules": rules, **built}


def verdicts(report: dict, check: str) -> dict[str, tuple[str, str]]:
    return {f["resource"]: (f["status"], f["detail"]) for f in report["findings"] if f["check"] == check}


def test_compliant_account_passes_every_check_and_exits_0(compliant: dict) -> None:
    findings = compliant["report"]["findings"]
    assert {f["check"] for f in findings} == ALL_CHECK_IDS
    assert [f for f in findings if f["status"] not in ("pass", "not_applicable")] == []
    assert {f["check"] for f in findings if f["status"] == "pass"} == ALL_CHECK_IDS
    assert compliant["code"] == 0
    assert compliant["report"]["account"] == COMPLIANT
    assert compliant["report"]["summary"] == {"pass": 40, "fail": 0, "not_applicable": 5, "error": 0}


def test_noncompliant_account_fails_every_check_and_exits_1_even_with_fail_on_high(noncompliant: dict) -> None:
    findings = noncompliant["report"]["findings"]
    assert {f["check"] for f in findings if f["status"] == "fail"} == ALL_CHECK_IDS
    assert [f for f in findings if f["status"] == "error"] == []
    assert noncompliant["code"] == 1
    assert noncompliant["report"]["log_buckets"] == [BAD, PLAIN]
    keys = {"check", "title", "severity", "status", "region", "resource", "detail", "why", "fix"}
    assert all(set(f) == keys for f in findings)


# (check, resource, expected detail) — what the compliant builder configured, read back
PASSING = [
    ("s3.versioning", CT, "versioning is Enabled"),
    ("s3.object_ownership", APP, "Object Ownership is BucketOwnerEnforced (ACLs disabled)"),
    ("s3.public_access_block", CT, "all four public access block settings are on"),
    ("s3.default_encryption", APP, "default encryption aws:kms"),
    ("s3.lifecycle_no_expiration", CT, "1 lifecycle rule(s), none expires log versions"),
    ("s3.policy_delete_grant", CT, "the bucket policy grants object deletion to no broad principal"),
    (
        "cloudtrail.multi_region",
        f"arn:aws:cloudtrail:us-east-1:{COMPLIANT}:trail/main-trail",
        f"multi-region, logging, delivers to s3://{CT}",
    ),
    (
        "cloudtrail.log_file_validation",
        f"arn:aws:cloudtrail:us-east-1:{COMPLIANT}:trail/data-trail",
        "log file validation on: digest files prove the logs were not altered",
    ),
    ("cloudtrail.s3_data_events", CT, "write data events recorded by data-trail"),
    ("cloudtrail.s3_data_events", APP, "write data events recorded by main-trail"),
    (
        "cloudtrail.no_data_event_loop",
        f"arn:aws:cloudtrail:us-east-1:{COMPLIANT}:trail/main-trail",
        f"does not record data events on its own bucket {CT}",
    ),
    ("elb.access_logs", "application web", f"access logs to s3://{APP}"),
    ("elb.access_logs", "network tcp", f"access logs to s3://{APP}"),
    ("elb.access_logs", "classic legacy", f"access logs to s3://{APP}"),
    ("waf.logging", "regional web ACL site", "logs to arn:aws:s3:::aws-waf-logs-site"),
    ("waf.logging", "cloudfront web ACL cdn", "logs to arn:aws:s3:::aws-waf-logs-cdn"),
    ("eks.control_plane_logging", "cluster prod", "enabled: api, audit, authenticator"),
    ("eks.audit_logs_to_s3", "cluster prod", f"subscription to-s3 → Firehose → s3://{APP}"),
    ("eks.audit_logs_to_s3", "cluster batch", f"export tasks to s3://{APP} within the last 48 h"),
    ("logs.retention", "/aws/eks/prod/cluster", "retention 400 days"),
    ("logs.retention", "/app/orders", "never expires"),
    (
        "iam.log_writer_access_keys",
        f"account {COMPLIANT}",
        f"no IAM user with an active access key can write to {CT}, {APP}",
    ),
]


@pytest.mark.parametrize(("check", "resource", "detail"), PASSING, ids=[f"{c}:{r}" for c, r, _ in PASSING])
def test_check_passes_on_the_compliant_account(compliant: dict, check: str, resource: str, detail: str) -> None:
    assert verdicts(compliant["report"], check)[resource] == ("pass", detail)


def test_delete_alert_passes_through_the_shipped_rule_file(compliant: dict) -> None:
    status, detail = verdicts(compliant["report"], "s3.delete_alert")[CT]
    rule = REPO / "detections/aws/s3/aws_s3_log_bucket_object_deletion.yml"
    assert (status, detail) == (
        "pass",
        f"{rule}: 'Objects Deleted From a Log Bucket' (status experimental, level high) fires",
    )


def test_vpc_checks_cover_every_vpc_in_every_region(compliant: dict) -> None:
    flow = [f for f in compliant["report"]["findings"] if f["check"] == "vpc.flow_logs"]
    dns = [f for f in compliant["report"]["findings"] if f["check"] == "route53.resolver_query_logging"]
    # us-east-1: the default VPC and the one the builder made; eu-west-1: its default VPC
    assert sorted(f["region"] for f in flow) == ["eu-west-1", "us-east-1", "us-east-1"]
    assert all(f["status"] == "pass" and "(ALL traffic) to arn:aws:s3:::" + APP in f["detail"] for f in flow)
    assert sorted(f["region"] for f in dns) == ["eu-west-1", "us-east-1", "us-east-1"]
    assert all(f["status"] == "pass" for f in dns)
    assert compliant["vpc"] in {f["resource"] for f in flow}


def test_a_region_without_resources_is_not_applicable_not_passing(compliant: dict) -> None:
    empty = {
        (f["check"], f["resource"]): f["detail"]
        for f in compliant["report"]["findings"]
        if f["status"] == "not_applicable"
    }
    assert empty == {
        ("elb.access_logs", "eu-west-1"): "no load balancers",
        ("waf.logging", "eu-west-1"): "no WAF web ACLs",
        ("eks.control_plane_logging", "eu-west-1"): "no EKS clusters",
        ("eks.audit_logs_to_s3", "eu-west-1"): "no EKS clusters",
        ("logs.retention", "eu-west-1"): "no CloudWatch Logs groups",
    }


FAILING = [
    ("s3.versioning", BAD, "versioning is Suspended: an overwrite or delete loses the log"),
    ("s3.versioning", PLAIN, "versioning is never enabled: an overwrite or delete loses the log"),
    (
        "s3.object_ownership",
        BAD,
        "Object Ownership is ObjectWriter (no ownership controls): objects AWS services write may not belong to you",
    ),
    (
        "s3.object_ownership",
        PLAIN,
        "Object Ownership is ObjectWriter: objects AWS services write may not belong to you",
    ),
    (
        "s3.public_access_block",
        BAD,
        "public access block not fully on: IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off",
    ),
    ("s3.default_encryption", BAD, "no default encryption configured"),
    ("s3.lifecycle_no_expiration", BAD, "rotate expires current versions; old-versions expires noncurrent versions"),
    ("s3.policy_delete_grant", BAD, "statement 'AnyoneCleansUp' grants delete to *"),
    ("s3.policy_delete_grant", PLAIN, f"statement 'WholeAccount' grants delete to arn:aws:iam::{NONCOMPLIANT}:root"),
    ("cloudtrail.multi_region", f"account {NONCOMPLIANT}", "solo-trail: single-region, not logging"),
    (
        "cloudtrail.log_file_validation",
        f"arn:aws:cloudtrail:us-east-1:{NONCOMPLIANT}:trail/solo-trail",
        "log file validation off: a tampered or deleted log file cannot be detected",
    ),
    ("cloudtrail.s3_data_events", BAD, "no logging trail records S3 write data events (DeleteObject) for every object"),
    (
        "cloudtrail.no_data_event_loop",
        f"arn:aws:cloudtrail:us-east-1:{NONCOMPLIANT}:trail/solo-trail",
        f"records S3 data events on its own bucket {BAD}: every delivery is logged again",
    ),
    ("elb.access_logs", "application web", "access logs are off"),
    (
        "elb.access_logs",
        "classic legacy",
        f"access logs go to s3://elsewhere-{NONCOMPLIANT}, not a log bucket ({BAD}, {PLAIN})",
    ),
    ("waf.logging", "regional web ACL site", "no logging configuration"),
    ("eks.control_plane_logging", "cluster dev", "control-plane log types off: audit, authenticator"),
    (
        "eks.audit_logs_to_s3",
        "cluster dev",
        "log group /aws/eks/dev/cluster does not exist (control-plane logging never enabled)",
    ),
    (
        "eks.audit_logs_to_s3",
        "cluster prod",
        "/aws/eks/prod/cluster: no subscription filter to S3 and no export task in the last 48 h",
    ),
    ("logs.retention", "/aws/eks/prod/cluster", "retention 30 days < minimum 365"),
]


@pytest.mark.parametrize(("check", "resource", "detail"), FAILING, ids=[f"{c}:{r}" for c, r, _ in FAILING])
def test_check_fails_on_the_noncompliant_account(noncompliant: dict, check: str, resource: str, detail: str) -> None:
    assert verdicts(noncompliant["report"], check)[resource] == ("fail", detail)


def test_flow_logs_fail_for_a_vpc_without_and_one_with_only_rejected_traffic(noncompliant: dict) -> None:
    flow = verdicts(noncompliant["report"], "vpc.flow_logs")
    assert flow == {
        noncompliant["default_vpc"]: ("fail", "no active flow log"),
        noncompliant["vpc"]: ("fail", "flow logs record only REJECT traffic"),
    }
    dns = verdicts(noncompliant["report"], "route53.resolver_query_logging")
    assert set(dns.values()) == {("fail", "no Route 53 Resolver query log config associated")}
    assert len(dns) == 2


def test_delete_alert_fails_when_the_rule_is_deprecated_or_does_not_match_the_bucket(noncompliant: dict) -> None:
    rules = noncompliant["rules"]
    alert = verdicts(noncompliant["report"], "s3.delete_alert")
    deprecated = rules / "aws_s3_log_bucket_object_deletion.yml"
    assert alert[BAD] == (
        "fail",
        f"no enabled rule in {rules} fires on DeleteObject in this bucket ({deprecated} fires but is deprecated)",
    )
    # 'evidence-store' contains neither 'log' nor 'cloudtrail': the rule's bucket selection misses it
    assert alert[PLAIN] == ("fail", f"no enabled rule in {rules} fires on DeleteObject in this bucket")


def test_iam_users_with_active_keys_that_can_write_logs_are_reported(noncompliant: dict) -> None:
    users = verdicts(noncompliant["report"], "iam.log_writer_access_keys")
    assert sorted(users) == ["user alice", "user fluentd"]
    status, detail = users["user fluentd"]
    assert status == "fail"
    assert re.fullmatch(
        rf"active key\(s\) AKIA…\w{{4}} last used \d{{4}}-\d\d-\d\d \(s3\); "
        rf"s3:PutObject on {BAD} via inline fluentd-policy",
        detail,
    )
    status, detail = users["user alice"]
    assert detail.endswith(
        f"s3:PutObject on {BAD} via group ops everything-s3; s3:PutObject on {PLAIN} via group ops everything-s3"
    )


def test_an_empty_account_has_no_log_bucket_and_no_trail(aws_endpoint: str) -> None:
    """A fresh account: nothing to check in the buckets, and the missing trail is the finding."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", aws_endpoint)
        env = assume("333333333333")
        for name, value in env.items():
            mp.setenv(name, value)
        ctx = Context(boto3.Session(region_name="us-east-1"), "333333333333", ["us-east-1"], [], [RULES])
        findings = run(ctx, [buckets.CHECKS[0], cloudtrail.CHECKS[0], iam_keys.CHECKS[0]])
    assert [(f.check, f.status.value, f.resource, f.detail) for f in findings] == [
        (
            "s3.versioning",
            "not_applicable",
            "log buckets",
            "no log bucket: none given with --bucket and no trail delivers to S3",
        ),
        ("cloudtrail.multi_region", "fail", "account 333333333333", "no CloudTrail trail at all"),
        ("iam.log_writer_access_keys", "not_applicable", "account 333333333333", "no log bucket known (pass --bucket)"),
    ]
