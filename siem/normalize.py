"""The envelope every event carries, whatever its log type.

Log types map their own fields; this module adds what is common (dataset, ingest time, file
position, cloud context from the S3 key, related.ip / related.user, a deterministic ID) so the
analyst can pivot one IP or one user across every source with the same field names.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

_IP_FIELDS = ("source", "destination", "client", "server", "host")


@dataclass(frozen=True, slots=True)
class ObjectContext:
    """What we know about the object a record came from."""

    path: str  # s3://bucket/key or a local path: log.file.path
    identity: str  # path plus version: the seed of every document ID in the object
    account_id: str | None = None
    region: str | None = None
    ingested: str = ""

    @property
    def id_prefix(self) -> str:
        return object_id_prefix(self.identity)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=4096)
def object_id_prefix(identity: str) -> str:
    return hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()


def document_id(ctx: ObjectContext, position: int) -> str:
    """Object identity + record position: re-loading an object overwrites, identical lines stay two."""
    return f"{ctx.id_prefix}-{position}"


@lru_cache(maxsize=65536)
def valid_ip(value: str) -> str | None:
    """The canonical form of an IP address, or None for anything else (a hostname, '-')."""
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return None


def iso_utc(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z, microseconds kept when present."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: a timezone must be decided before normalizing")
    dt = dt.astimezone(UTC)
    spec = "microseconds" if dt.microsecond else "seconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")


def finalize(doc: dict[str, Any], dataset: str, ctx: ObjectContext, position: int) -> tuple[str, dict[str, Any]]:
    """Add the common envelope to a mapped document; returns (document ID, document).

    A log type may set ``event.dataset`` itself when one container format carries several
    datasets (fluentd JSON, CloudWatch Logs envelopes); otherwise it is the log type's.
    """
    event = doc.setdefault("event", {})
    dataset = event.setdefault("dataset", dataset)
    event.setdefault("kind", "event")
    event["ingested"] = ctx.ingested
    doc["data_stream"] = {"dataset": dataset}
    doc["log"] = {**doc.get("log", {}), "file": {"path": ctx.path}, "offset": position}
    if ctx.account_id or ctx.region:
        cloud = doc.setdefault("cloud", {})
        cloud.setdefault("provider", "aws")
        if ctx.account_id:
            cloud.setdefault("account", {}).setdefault("id", ctx.account_id)
        if ctx.region:
            cloud.setdefault("region", ctx.region)
    _related(doc)
    return document_id(ctx, position), doc


def _related(doc: dict[str, Any]) -> None:
    """related.ip / related.user: every IP and user in the event, the fields a pivot searches."""
    related = doc.get("related")
    ips: list[str] = list(related.get("ip") or ()) if related else []
    for name in _IP_FIELDS:
        part = doc.get(name)
        if part:
            ip = part.get("ip")
            if ip is None:
                continue
            for value in (ip,) if isinstance(ip, str) else ip:
                if value not in ips:
                    ips.append(value)
    users: list[str] = list(related.get("user") or ()) if related else []
    user = doc.get("user")
    if user:
        for node in (user, user.get("effective"), user.get("target")):
            name = node.get("name") if node else None
            if isinstance(name, str) and name and name not in users:
                users.append(name)
    if not (ips or users or related):
        return
    related = related if related is not None else {}
    if ips:
        related["ip"] = ips
    if users:
        related["user"] = users
    doc["related"] = related
