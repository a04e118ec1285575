"""S3 objects by listing a prefix, streamed with boto3 (any endpoint: AWS, MinIO, a local server).

Credentials come from boto3's default chain only; the endpoint from ``AWS_ENDPOINT_URL(_S3)`` or
the config. Object bodies are streamed, never read whole, so memory is flat in object size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from siem.sources import SourceObject


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client(endpoint_url: str | None = None) -> Any:
    return boto3.client("s3", endpoint_url=endpoint_url) if endpoint_url else boto3.client("s3")


# Answers that will not change on retry: the object failed (dead-lettered), the run goes on. Anything
# else (throttling, 5xx, network) propagates, so a queue message is retried rather than lost.
_FINAL_ERRORS = frozenset({"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidObjectState", "404", "403"})


class ObjectUnavailable(OSError):
    """S3 will not give us the object (gone, forbidden, archived); the message names it."""


def s3_object(client: Any, bucket: str, key: str, size: int | None = None) -> SourceObject:
    uri = f"s3://{bucket}/{key}"

    def opener() -> BinaryIO:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _FINAL_ERRORS:
                raise ObjectUnavailable(f"{uri}: {code}: {exc.response['Error'].get('Message', '')}") from None
            raise

    return SourceObject(path=uri, identity=uri, opener=opener, size=size)


def first_key(uri: str, client: Any) -> str | None:
    """The first object key under s3://bucket/prefix, or None when the prefix holds no object (a
    listing error, no credentials or an unreachable endpoint raise botocore's exception)."""
    bucket, prefix = parse_s3_uri(uri)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 100}):
        for item in page.get("Contents", ()):
            if not item["Key"].endswith("/"):
                return str(item["Key"])
    return None


def s3_objects(uri: str, client: Any) -> Iterator[SourceObject]:
    """Objects under s3://bucket/prefix in key order (AWS layouts sort by date)."""
    bucket, prefix = parse_s3_uri(uri)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            if item["Key"].endswith("/"):
                continue
            yield s3_object(client, bucket, item["Key"], item.get("Size"))
