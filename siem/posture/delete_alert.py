"""Is a DeleteObject on the log bucket alerted on? Asked of the shipped rules, not assumed.

The question is answered by behaviour: a CloudTrail DeleteObject record for the bucket is written in
CloudTrail's own format, run through the real parser and normaliser (as ``siem load`` would), and
every rule in the rules path in use is evaluated on it. A rule counts when it fires, can run here
and is not ``deprecated`` or ``unsupported`` — so renaming the bucket away from the rule's name
pattern, or disabling the rule, fails this check.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from siem import formats
from siem.posture.context import Context
from siem.posture.model import Check, Outcome, failed, passed

_RETIRED = frozenset({"deprecated", "unsupported"})


def _deletion_record(bucket: str, region: str, account_id: str) -> bytes:
    key = f"AWSLogs/{account_id}/CloudTrail/{region}/siem-posture-probe.json.gz"
    record = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account_id}:assumed-role/siem-posture-probe/probe",
            "accountId": account_id,
        },
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "DeleteObject",
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "siem-posture",
        "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key},
        "responseElements": None,
        "requestID": "SIEMPOSTUREPROBE",
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
            {"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": account_id},
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": account_id,
        "eventCategory": "Data",
    }
    return json.dumps({"Records": [record]}).encode()


def _event(bucket: str, region: str, account_id: str) -> dict[str, Any]:
    from siem.formats.base import ParseOptions
    from siem.formats.routing import Router
    from siem.pipeline import Event, parse_object
    from siem.sources import SourceObject

    data = _deletion_record(bucket, region, account_id)
    obj = SourceObject(
        path="siem-posture/deletion-probe.json", identity="siem-posture", opener=partial(io.BytesIO, data)
    )
    items = list(parse_object(obj, Router(), ParseOptions(), formats.get("aws.cloudtrail")))
    events = [item.doc for item in items if isinstance(item, Event)]
    if len(events) != 1:
        raise RuntimeError(f"the CloudTrail parser made {len(events)} events of the deletion probe: {items!r}")
    return events[0]


def delete_alert(ctx: Context, bucket: str) -> Iterator[Outcome]:
    from siem.detect.evaluate import matches
    from siem.detect.rules import load_paths

    rules = ctx.shared("rules", lambda: load_paths(list(ctx.rules_paths)))
    doc = _event(bucket, ctx.bucket_region(bucket), ctx.account_id)
    firing = [r for r in rules if r.correlation is None and matches(r.condition, doc)]
    enabled = [r for r in firing if r.runnable and r.status not in _RETIRED]
    where = ", ".join(str(p) for p in ctx.rules_paths)
    if enabled:
        rule = enabled[0]
        yield passed(bucket, f"{rule.path}: {rule.title!r} (status {rule.status}, level {rule.level}) fires")
        return
    retired = "; ".join(f"{r.path} fires but is {r.status if r.runnable else 'not runnable'}" for r in firing)
    yield failed(
        bucket,
        f"no enabled rule in {where} fires on DeleteObject in this bucket" + (f" ({retired})" if retired else ""),
    )


CHECKS = (
    Check(
        "s3.delete_alert",
        "A shipped detection alerts on DeleteObject in the log bucket",
        "medium",
        "bucket",
        "Only a handful of people should ever delete logs; when it happens, someone must hear about it the same "
        "day, not at the next incident.",
        "Keep detections/aws/s3/aws_s3_log_bucket_object_deletion.yml enabled (status not deprecated) and add the "
        "bucket name to its log_bucket selection; enable S3 write data events for the bucket in a trail.",
        delete_alert,
    ),
)
