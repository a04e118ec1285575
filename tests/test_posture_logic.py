"""The small decision functions behind the posture checks, on hand-written selectors and policies.

The moto-backed tests prove the checks end to end; these pin the corner cases of CloudTrail event
selectors and IAM policy reading that an account fixture would need dozens of trails to show.
"""

from __future__ import annotations

import pytest

from siem.posture import policy
from siem.posture.cloudtrail import records_s3_objects
from siem.posture.context import Trail

OBJ = "arn:aws:s3:::acme-logs/any/object"
OWN = "arn:aws:s3:::acme-logs/AWSLogs/123456789012/CloudTrail/us-east-1/x.json.gz"


def trail(basic: list | None = None, advanced: list | None = None) -> Trail:
    return Trail("t", "arn:t", "us-east-1", "acme-logs", True, True, True, basic or [], advanced or [])


def s3_selector(*fields: dict) -> dict:
    return {
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            *fields,
        ]
    }


def basic(rw: str, *values: str, kind: str = "AWS::S3::Object") -> list[dict]:
    return [{"ReadWriteType": rw, "DataResources": [{"Type": kind, "Values": list(values)}]}]


@pytest.mark.parametrize(
    ("selectors", "write", "loop"),
    [
        (basic("All", "arn:aws:s3"), True, True),
        (basic("WriteOnly", "arn:aws:s3:::acme-logs/"), True, True),
        (basic("ReadOnly", "arn:aws:s3:::acme-logs/"), False, True),
        (basic("All", "arn:aws:s3:::acme-logs/AWSLogs/"), False, True),
        (basic("All", "arn:aws:s3:::acme"), False, False),
        (basic("All", "arn:aws:lambda", kind="AWS::Lambda::Function"), False, False),
    ],
    ids=["all-buckets", "bucket-write-only", "read-only", "prefix-only", "other-bucket-name-prefix", "lambda"],
)
def test_basic_event_selectors(selectors: list, write: bool, loop: bool) -> None:
    t = trail(basic=selectors)
    assert records_s3_objects(t, OBJ, "DeleteObject") is write
    assert records_s3_objects(t, OWN, None) is loop


@pytest.mark.parametrize(
    ("selector", "write", "loop"),
    [
        (s3_selector(), True, True),
        (s3_selector({"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::acme-logs/"]}), True, True),
        (s3_selector({"Field": "resources.ARN", "NotStartsWith": ["arn:aws:s3:::acme-logs/"]}), False, False),
        (s3_selector({"Field": "readOnly", "Equals": ["true"]}), False, True),
        (s3_selector({"Field": "eventName", "Equals": ["PutObject"]}), False, True),
        (s3_selector({"Field": "eventName", "NotEquals": ["DeleteObject"]}), False, True),
        ({"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}, False, False),
    ],
    ids=["all-objects", "this-bucket", "excluding-this-bucket", "reads-only", "puts-only", "not-deletes", "management"],
)
def test_advanced_event_selectors(selector: dict, write: bool, loop: bool) -> None:
    t = trail(advanced=[selector])
    assert records_s3_objects(t, OBJ, "DeleteObject") is write
    assert records_s3_objects(t, OWN, None) is loop


def test_policy_wildcards_deny_and_not_action() -> None:
    doc = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:Put*", "Resource": "arn:aws:s3:::acme-*/*"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::other/*"},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::acme-secret/*"},
        ]
    }
    assert len(policy.allowing(doc, "s3:PutObject", "arn:aws:s3:::acme-logs/x")) == 1
    assert len(policy.allowing(doc, "S3:PUTOBJECT", "arn:aws:s3:::acme-logs/x")) == 1  # actions ignore case
    assert policy.allowing(doc, "s3:PutObject", "arn:aws:s3:::acme-secret/x") == []  # explicit Deny wins
    assert len(policy.allowing(doc, "s3:DeleteObject", "arn:aws:s3:::other/x")) == 1  # NotAction iam:* grants s3
    assert policy.allowing(doc, "s3:DeleteObject", "arn:aws:s3:::acme-logs/x") == []
    assert policy.wildcard_match("arn:aws:s3:::a?c/*", "arn:aws:s3:::abc/k") is True
    assert policy.wildcard_match("arn:aws:s3:::a[b]c", "arn:aws:s3:::abc") is False  # brackets are literal


def test_object_arns_probe_inside_every_prefix_the_policy_names() -> None:
    doc = {"Statement": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::acme-logs/fluentd/*"}}
    assert policy.object_arns("acme-logs", doc) == [
        "arn:aws:s3:::acme-logs/AWSLogs/any-object",
        "arn:aws:s3:::acme-logs/fluentd/x",
    ]
    assert policy.document('{"Statement": []}') == {"Statement": []}
    assert policy.document("%7B%22Statement%22%3A%20%5B%5D%7D") == {"Statement": []}  # IAM's URL-encoded form
