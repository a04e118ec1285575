"""CloudTrail: the account's audit log, its integrity, and S3 data events for the log buckets.

Data events are what record a DeleteObject. They must be on for each log bucket, but a trail that
records data events for the bucket it delivers to logs its own deliveries, whose records are
deliveries again: the feedback loop that floods the bucket. The fix is a second trail (delivering
elsewhere) for the first trail's bucket, or an advanced selector excluding the trail's own bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from siem.posture.context import Context, Trail
from siem.posture.model import Check, Outcome, failed, not_applicable, passed

_ALL_S3 = ("arn:aws:s3", "arn:aws:s3:::")
_OPERATORS = {
    "Equals": lambda value, given: value in given,
    "StartsWith": lambda value, given: any(value.startswith(g) for g in given),
    "EndsWith": lambda value, given: any(value.endswith(g) for g in given),
    "NotEquals": lambda value, given: value not in given,
    "NotStartsWith": lambda value, given: not any(value.startswith(g) for g in given),
    "NotEndsWith": lambda value, given: not any(value.endswith(g) for g in given),
}


def _field_allows(selector: dict[str, Any], name: str, value: str) -> bool:
    """Whether every condition an advanced selector puts on ``name`` holds for ``value`` (none = holds)."""
    for field in selector.get("FieldSelectors", []):
        if field.get("Field") != name:
            continue
        for op, test in _OPERATORS.items():
            if op in field and not test(value, field[op]):
                return False
    return True


def records_s3_objects(trail: Trail, object_arn: str, write_event: str | None) -> bool:
    """Does the trail record S3 data events on ``object_arn``?

    ``write_event`` names a write API call that must be recorded (e.g. DeleteObject); None means any
    data event, read or write, counts.
    """
    bucket_arn = object_arn.split("/", 1)[0]
    for selector in trail.event_selectors:
        if write_event and selector.get("ReadWriteType", "All") == "ReadOnly":
            continue
        for resource in selector.get("DataResources", []):
            if resource.get("Type") != "AWS::S3::Object":
                continue
            for value in resource.get("Values", []):
                if value in _ALL_S3 or value == bucket_arn:
                    return True
                if value.startswith(f"{bucket_arn}/") and object_arn.startswith(value):  # bucket/ or bucket/prefix
                    return True
    for selector in trail.advanced_selectors:
        if not _field_allows(selector, "eventCategory", "Data"):
            continue
        if not _field_allows(selector, "resources.type", "AWS::S3::Object"):
            continue
        if not any(f.get("Field") == "resources.type" for f in selector.get("FieldSelectors", [])):
            continue  # a data selector without a resource type is not an S3 object selector
        if write_event and not (
            _field_allows(selector, "readOnly", "false") and _field_allows(selector, "eventName", write_event)
        ):
            continue
        if _field_allows(selector, "resources.ARN", object_arn):
            return True
    return False


def multi_region_trail(ctx: Context, _: None) -> Iterator[Outcome]:
    trails = ctx.trails()
    buckets = set(ctx.log_buckets())
    good = [t for t in trails if t.multi_region and t.logging and t.bucket in buckets]
    if good:
        yield from (passed(t.arn, f"multi-region, logging, delivers to s3://{t.bucket}") for t in good)
        return
    reasons = []
    for t in trails:
        problems = [
            *([] if t.multi_region else ["single-region"]),
            *([] if t.logging else ["not logging"]),
            *([] if t.bucket in buckets else [f"delivers to {t.bucket or 'no bucket'}, not a log bucket"]),
        ]
        reasons.append(f"{t.name}: {', '.join(problems)}")
    yield failed(f"account {ctx.account_id}", "; ".join(reasons) or "no CloudTrail trail at all")


def log_file_validation(ctx: Context, _: None) -> Iterator[Outcome]:
    trails = ctx.trails()
    if not trails:
        yield not_applicable(f"account {ctx.account_id}", "no trails (see cloudtrail.multi_region)")
    for t in trails:
        if t.validation:
            yield passed(t.arn, "log file validation on: digest files prove the logs were not altered")
        else:
            yield failed(t.arn, "log file validation off: a tampered or deleted log file cannot be detected")


def s3_data_events(ctx: Context, bucket: str) -> Iterator[Outcome]:
    region = ctx.bucket_region(bucket)
    probe = f"arn:aws:s3:::{bucket}/any/object"
    covering = [
        t
        for t in ctx.trails()
        if t.logging and (t.multi_region or t.home_region == region) and records_s3_objects(t, probe, "DeleteObject")
    ]
    if covering:
        yield passed(bucket, f"write data events recorded by {', '.join(t.name for t in covering)}")
    else:
        yield failed(bucket, "no logging trail records S3 write data events (DeleteObject) for every object")


def no_data_event_loop(ctx: Context, _: None) -> Iterator[Outcome]:
    trails = [t for t in ctx.trails() if t.bucket]
    if not trails:
        yield not_applicable(f"account {ctx.account_id}", "no trail delivers to S3")
    for t in trails:
        own = f"arn:aws:s3:::{t.bucket}/AWSLogs/{ctx.account_id}/CloudTrail/{t.home_region}/delivery.json.gz"
        if records_s3_objects(t, own, None):
            yield failed(t.arn, f"records S3 data events on its own bucket {t.bucket}: every delivery is logged again")
        else:
            yield passed(t.arn, f"does not record data events on its own bucket {t.bucket}")


CHECKS = (
    Check(
        "cloudtrail.multi_region",
        "A multi-region trail is logging to the log bucket",
        "high",
        "account",
        "CloudTrail is the audit log of every AWS API call; a trail in one region misses an attacker working in "
        "another, and a stopped trail records nothing.",
        "aws cloudtrail create-trail --name org-trail --s3-bucket-name BUCKET --is-multi-region-trail "
        "--enable-log-file-validation && aws cloudtrail start-logging --name org-trail",
        multi_region_trail,
    ),
    Check(
        "cloudtrail.log_file_validation",
        "Trail log file validation on",
        "medium",
        "account",
        "Digest files let you prove which log files were modified or deleted after delivery.",
        "aws cloudtrail update-trail --name TRAIL --enable-log-file-validation",
        log_file_validation,
    ),
    Check(
        "cloudtrail.s3_data_events",
        "S3 write data events recorded for the log bucket",
        "medium",
        "bucket",
        "Management events do not say who read or deleted which object; without data events the DeleteObject "
        "detection never sees anything.",
        "Add the bucket to a trail's data events (write events at least), from a trail that does not deliver "
        "into this same bucket: aws cloudtrail put-event-selectors --trail-name OTHER_TRAIL --advanced-event-selectors "
        '\'[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type",'
        '"Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::BUCKET/"]}]}]\'',
        s3_data_events,
    ),
    Check(
        "cloudtrail.no_data_event_loop",
        "No trail logs data events on its own bucket",
        "medium",
        "account",
        "A trail recording data events for the bucket it writes to logs its own deliveries, which are deliveries "
        "again: the bucket floods and the cost explodes.",
        "Select data events per bucket instead of all buckets, and exclude the trail's own bucket (NotStartsWith "
        "arn:aws:s3:::TRAIL_BUCKET/); record that bucket's data events from a second trail delivering elsewhere.",
        no_data_event_loop,
    ),
)
