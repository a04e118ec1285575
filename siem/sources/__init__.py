"""Where objects come from: a local file or folder, an S3 prefix, S3 event notifications on SQS.

Every source yields SourceObjects; the pipeline does not care which source it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

# AWSLogs/<account>/<service>/<region>/... is the layout of ALB, CloudTrail, VPC flow, WAF (Firehose
# aside) and Route 53 Resolver deliveries; Network Firewall adds flow|alert|tls before the region.
_AWS_KEY = re.compile(
    r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/[A-Za-z0-9_-]+/(?:(?:flow|alert|tls)/)?([a-z]{2}(?:-gov)?-[a-z]+-\d)/"
)
_ACCOUNT_ONLY = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/")


@dataclass(frozen=True, slots=True)
class SourceObject:
    path: str  # log.file.path: s3://bucket/key or a local path
    identity: str  # stable across re-loads: the seed of document IDs
    opener: Callable[[], BinaryIO]
    size: int | None = None

    def open(self) -> BinaryIO:
        return self.opener()


def aws_key_context(key: str) -> tuple[str | None, str | None]:
    """(account id, region) from an AWS log-delivery key layout, when it has them."""
    match = _AWS_KEY.search(key)
    if match:
        return match.group(1), match.group(2)
    match = _ACCOUNT_ONLY.search(key)
    return (match.group(1), None) if match else (None, None)
