"""AWS CloudTrail: S3 delivery files ({"Records":[...]}, often one line of tens of MB), NDJSON
(one record per line), JSON arrays of records, Insights events and digest files.

Delivery layout: AWSLogs/[o-<org>/]<account>/CloudTrail{,-Digest,-Insight}/<region>/YYYY/MM/DD/...json.gz
Record fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html

This module is the log type (routing, sniffing); records are framed in _cloudtrail_framing.py
(linear in every JSON layout, memory flat in the object's size) and mapped in _cloudtrail_mapping.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem.formats._cloudtrail_framing import iter_records
from siem.formats._cloudtrail_mapping import cloudtrail_to_ecs
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped

__all__ = ["LOG_TYPE", "CloudTrailLogType", "cloudtrail_to_ecs", "iter_records"]

_SNIFF_START = re.compile(rb'^\s*(?:\{\s*"Records"\s*:\s*)?\[?\s*\{\s*"')
# Keys only CloudTrail writes (S3 event notifications also have Records/eventVersion/eventTime,
# but their eventSource is "aws:s3"); an escaped copy inside a string never matches.
_SNIFF_MARKERS = re.compile(
    rb'"(?:recipientAccountId|eventCategory|insightDetails|digestS3Object)"\s*:'
    rb'|"eventType"\s*:\s*"Aws|"eventSource"\s*:\s*"[\w.-]+\.amazonaws\.com"'
)


class CloudTrailLogType:
    dataset = "aws.cloudtrail"
    description = "AWS CloudTrail records (S3 Records files, NDJSON, arrays, Insights; digests skipped)"
    key_pattern = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?\d{12}/CloudTrail(?:-Digest|-Insight)?/")

    def sniff(self, head: bytes) -> bool:
        return bool(_SNIFF_START.match(head)) and _SNIFF_MARKERS.search(head) is not None

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return iter_records(stream)

    def to_ecs(self, raw: dict[str, Any], options: ParseOptions) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise RecordError(f"expected a CloudTrail record (JSON object), got {type(raw).__name__}")
        return cloudtrail_to_ecs(raw)


LOG_TYPE = CloudTrailLogType()
