"""What every check shares in one run: boto3 clients, the log buckets, and lookups made once.

Checks run in a thread pool; boto3 clients are thread-safe but creating them from one session is
not, so client creation is locked. Lookups several checks need (the trails, a bucket's region, the
loaded rules) are computed once under a per-key lock; an error is remembered and raised to every
check that needs the value, so each of them reports it instead of half-answering.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=10,
    read_timeout=30,
    user_agent_extra="siem-posture",
)


@dataclass(frozen=True)
class Trail:
    name: str
    arn: str
    home_region: str
    bucket: str | None
    multi_region: bool
    validation: bool
    logging: bool
    event_selectors: list[dict[str, Any]]
    advanced_selectors: list[dict[str, Any]]


@dataclass
class Context:
    session: boto3.Session
    account_id: str
    regions: list[str]
    buckets_given: list[str]  # --bucket; empty means: the buckets the trails deliver to
    rules_paths: list[Path]
    min_retention_days: int = 365
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memo: dict[str, tuple[bool, Any]] = field(default_factory=dict, repr=False)
    _memo_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    @property
    def home_region(self) -> str:
        return self.regions[0]

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.home_region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.session.client(service, region_name=key[1], config=_CONFIG)
            return self._clients[key]

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (True, compute())
                except Exception as exc:
                    self._memo[key] = (False, exc)
            ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def trails(self) -> list[Trail]:
        return self.shared("trails", self._load_trails)

    def log_buckets(self) -> list[str]:
        """The buckets named with --bucket, else every bucket a trail delivers to."""
        if self.buckets_given:
            return list(self.buckets_given)
        return sorted({t.bucket for t in self.trails() if t.bucket})

    def bucket_region(self, bucket: str) -> str:
        def locate() -> str:
            where = self.client("s3").get_bucket_location(Bucket=bucket).get("LocationConstraint")
            return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(where, where)

        return self.shared(f"bucket-region:{bucket}", locate)

    def s3_for(self, bucket: str) -> Any:
        return self.client("s3", self.bucket_region(bucket))

    def _given_bucket_regions(self) -> list[str]:
        """The regions of the --bucket buckets: a single-region trail there records their data events."""
        regions = []
        for bucket in self.buckets_given:
            try:
                regions.append(self.bucket_region(bucket))
            except Exception:  # reported by each bucket check; the trails are still worth listing
                continue
        return regions

    def _load_trails(self) -> list[Trail]:
        # describe_trails in a region lists that region's trails plus multi-region ones (shadow trails):
        # the union over the scanned regions (and the log buckets' regions) is every trail covering them.
        seen: dict[str, dict[str, Any]] = {}
        for region in dict.fromkeys([*self.regions, *self._given_bucket_regions()]):
            for trail in self.client("cloudtrail", region).describe_trails(includeShadowTrails=True)["trailList"]:
                seen.setdefault(trail["TrailARN"], trail)
        trails = []
        for arn, raw in sorted(seen.items()):
            home = self.client("cloudtrail", raw.get("HomeRegion") or self.home_region)
            status = home.get_trail_status(Name=arn)
            selectors = home.get_event_selectors(TrailName=arn)
            trails.append(
                Trail(
                    name=raw["Name"],
                    arn=arn,
                    home_region=raw.get("HomeRegion") or self.home_region,
                    bucket=raw.get("S3BucketName"),
                    multi_region=bool(raw.get("IsMultiRegionTrail")),
                    validation=bool(raw.get("LogFileValidationEnabled")),
                    logging=bool(status.get("IsLogging")),
                    event_selectors=selectors.get("EventSelectors") or [],
                    advanced_selectors=selectors.get("AdvancedEventSelectors") or [],
                )
            )
        return trails


def pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated listing (``key`` is the list in each page)."""
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
