"""S3 objects by listing a prefix, streamed with boto3 (any endpoint: AWS, MinIO, a local server).

Credentials come from boto3's default chain only; the endpoint from ``AWS_ENDPOINT_URL(_S3)`` or
the config. Object bodies are streamed, never read whole, so memory is flat in object size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from siem.sources import SourceObject
from siem.sources.selection import Selection, key_date, window

log = logging.getLogger(__name__)


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


def s3_object(client: Any, bucket: str, key: str, size: int | None = None, etag: str | None = None) -> SourceObject:
    uri = f"s3://{bucket}/{key}"

    def opener() -> BinaryIO:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _FINAL_ERRORS:
                raise ObjectUnavailable(f"{uri}: {code}: {exc.response['Error'].get('Message', '')}") from None
            raise

    return SourceObject(path=uri, identity=uri, opener=opener, size=size, version=etag.strip('"') if etag else None)


def s3_objects(uri: str, client: Any, selection: Selection | None = None) -> Iterator[SourceObject]:
    """Objects under s3://bucket/prefix in key order (AWS layouts sort by date), paged 1,000 at a time.

    With --since/--until the listing walks folders (Delimiter '/') and does not descend into a year,
    month, day or hour folder outside the range, so a one-day backfill of a bucket holding years lists
    about one day of keys; a folder wholly inside the range is listed flat."""
    bucket, prefix = parse_s3_uri(uri)
    selection = selection or Selection()
    if selection.dated:
        yield from _walk(client, bucket, prefix, prefix, selection)
        return
    yield from _only_objects(_listed(client, bucket, prefix, prefix, selection, delimiter=False))


def _relative(key: str, base: str) -> str:
    """The key relative to the prefix the user gave (what --include/--exclude match)."""
    return key[len(base) :].lstrip("/") or key.rsplit("/", 1)[-1]


def _listed(
    client: Any, bucket: str, prefix: str, base: str, selection: Selection, delimiter: bool
) -> Iterator[SourceObject | str]:
    """The selected objects directly under prefix (every one below it when not delimiter); with a
    delimiter, the sub-folders too, as their prefix strings, after each page's objects."""
    paginator = client.get_paginator("list_objects_v2")
    extra = {"Delimiter": "/"} if delimiter else {}
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
        for item in page.get("Contents", ()):
            key = item["Key"]
            if key.endswith("/") or not selection.admits(_relative(key, base), key.rpartition("/")[0]):
                continue
            yield s3_object(client, bucket, key, item.get("Size"), item.get("ETag"))
        for common in page.get("CommonPrefixes", ()):
            yield common["Prefix"]


def _only_objects(found: Iterator[SourceObject | str]) -> Iterator[SourceObject]:
    """A flat listing's objects (it has no sub-folders; this only narrows the type)."""
    return (obj for obj in found if isinstance(obj, SourceObject))


def _walk(client: Any, bucket: str, prefix: str, base: str, selection: Selection) -> Iterator[SourceObject]:
    date = key_date(prefix.rpartition("/")[0])
    span = window(date)
    if span is not None and (selection.covers(span) or len(date) == 4):
        yield from _only_objects(_listed(client, bucket, prefix, base, selection, delimiter=False))
        return  # nothing finer to prune by
    for found in _listed(client, bucket, prefix, base, selection, delimiter=True):
        if isinstance(found, SourceObject):
            yield found
        elif selection.overlaps(window(key_date(found))):
            yield from _walk(client, bucket, found, base, selection)
        else:
            log.debug("pruned s3://%s/%s: its date is outside --since/--until", bucket, found)
