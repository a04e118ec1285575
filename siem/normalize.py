"""The envelope every event carries, whatever its log type.

Log types map their own fields; this module adds what is common (dataset, ingest time, file
position, cloud context from the S3 key, related.ip / related.user, a deterministic ID) so the
analyst can pivot one IP or one user across every source with the same field names.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from siem import limits

_IP_FIELDS = ("source", "destination", "client", "server", "host")
_ECS_TEMPLATE = Path(__file__).resolve().parent.parent / "index_templates" / "component-ecs.json"
# Used when the template file cannot be read (an installed wheel without index_templates/).
_FALLBACK_FLAT_ROOTS = (
    "aws.cloudtrail.request_parameters",
    "aws.cloudtrail.response_elements",
    "aws.cloudtrail.additional_eventdata",
    "aws.cloudtrail.service_event_details",
    "kubernetes.audit.requestObject",
    "kubernetes.audit.responseObject",
    "kubernetes.audit.annotations",
    "kubernetes.audit.user.extra",
    "kubernetes.audit.impersonatedUser.extra",
    "fluentd.fields",
)
_OVERFLOW_TEXT = 256  # characters of an out-of-range number kept in siem.overflow


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


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A dotted quad already in the form ipaddress would print (no leading zeros, ASCII digits only)
_CANONICAL_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


@lru_cache(maxsize=65536)
def valid_ip(value: str) -> str | None:
    """The canonical form of an IP address, or None for anything else (a hostname, '-').

    A canonical IPv4 address is its own answer: one regex match instead of ipaddress's parser,
    which cost about a fifth of mapping a flow record whose addresses vary (cache misses)."""
    if _CANONICAL_IPV4.fullmatch(value):
        return value
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
    """Add the common envelope to a mapped document; returns (document ID, document)."""
    doc_id, doc, _ = finalized(doc, dataset, ctx, position)
    return doc_id, doc


def finalized(
    doc: dict[str, Any], dataset: str, ctx: ObjectContext, position: int
) -> tuple[str, dict[str, Any], bytes | None]:
    """`finalize`, and the document's JSON when checking its values produced it (almost always):
    the sinks then write those bytes instead of serialising the document a second time.

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
    return document_id(ctx, position), doc, _bound_values(doc)


@lru_cache(maxsize=1)
def template_fields() -> tuple[tuple[tuple[str, ...], ...], frozenset[str]]:
    """(paths the ECS template maps as long, roots it maps as flat_object), from the template itself."""
    longs: list[tuple[str, ...]] = []
    flats: set[str] = set()

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = f"{prefix}{name}"
            kind = spec.get("type")
            if kind == "long":
                longs.append(tuple(path.split(".")))
            elif kind == "flat_object":
                flats.add(path)
            if "properties" in spec:
                walk(spec["properties"], path + ".")

    try:
        template = json.loads(_ECS_TEMPLATE.read_text())
        walk(template["template"]["mappings"]["properties"], "")
    except (OSError, ValueError, KeyError):
        return (), frozenset(_FALLBACK_FLAT_ROOTS)
    return tuple(longs), frozenset(flats | {"fluentd.fields"})


def _number_text(value: Any) -> str:
    try:
        return str(value)[:_OVERFLOW_TEXT]
    except ValueError:  # an int of more digits than str() converts
        return f"<integer of about {value.bit_length() * 30103 // 100000} digits>"


def _bound_values(doc: dict[str, Any]) -> bytes | None:
    """No event can crash serialisation or be refused for one value, whatever its log type; returns
    the document's JSON when the check serialised it and nothing had to change:

    * an integer beyond the 64-bit range (orjson refuses it; a long field refuses it), or a
      value of a long-mapped field out of that range, moves to ``siem.overflow`` as
      "<field>=<text>" (keyword) — inside a flat_object payload it becomes its text in place;
    * a leaf string of a flat_object payload longer than limits.FLAT_LEAF_MAX_BYTES (Lucene
      refuses terms over 32766 bytes, and the event with it) is cut, its path in ``siem.truncated``.

    Cheap on ordinary events: only the flat_object roots present in the event are visited, and the
    whole event is walked only when orjson (strict 53-bit integers) refuses it. A long-mapped field
    holding an out-of-range string or float is left to OpenSearch: that one document is refused and
    dead-lettered with the reason, the rest of the batch is indexed.
    """
    flats = _flat_roots()
    overflow: list[str] = []
    truncated: list[str] = []
    for root, paths in flats.items():
        if root not in doc:
            continue
        for path in paths:
            parent: Any = doc
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
                if parent is None:
                    break
            if isinstance(parent, dict) and path[-1] in parent and not _plainly_bounded(parent[path[-1]]):
                parent[path[-1]] = _flat(parent[path[-1]], ".".join(path), truncated)
    try:  # C speed; refuses any integer beyond 2**53, and only then is the event walked for exact bounds
        serialised: bytes | None = orjson.dumps(doc, option=orjson.OPT_STRICT_INTEGER)
    except TypeError:
        serialised = None
        _walk(doc, "", overflow)
    if overflow or truncated:
        siem = doc.setdefault("siem", {})
        if overflow:
            siem.setdefault("overflow", []).extend(overflow)
        if truncated:
            siem.setdefault("truncated", []).extend(truncated)
        return None
    return serialised


@lru_cache(maxsize=1)
def _flat_roots() -> dict[str, list[tuple[str, ...]]]:
    """The template's flat_object fields, split into keys and grouped by their top-level key."""
    by_root: dict[str, list[tuple[str, ...]]] = {}
    for dotted in template_fields()[1]:
        path = tuple(dotted.split("."))
        by_root.setdefault(path[0], []).append(path)
    return by_root


def _walk(node: dict[str, Any], prefix: str, overflow: list[str]) -> None:
    """Move every integer beyond 64 bits under node (flat_object payloads are already text) to overflow."""
    for key in list(node):
        value = node[key]
        if type(value) is int:
            if not limits.LONG_MIN <= value <= limits.LONG_MAX:
                overflow.append(f"{prefix}{key}={_number_text(node.pop(key))}")
        elif isinstance(value, dict):
            _walk(value, f"{prefix}{key}.", overflow)
        elif isinstance(value, list):
            path = f"{prefix}{key}"
            kept = []
            for item in value:
                if type(item) is int and not limits.LONG_MIN <= item <= limits.LONG_MAX:
                    overflow.append(f"{path}={_number_text(item)}")
                    continue
                if isinstance(item, dict):
                    _walk(item, path + ".", overflow)
                kept.append(item)
            if len(kept) != len(value):
                node[key] = kept


def _plainly_bounded(payload: Any) -> bool:
    """True when no leaf of the payload can need `_flat`, proven at C speed: its strict serialisation
    (which refuses any integer beyond 2**53) is no longer than one leaf may be, so no string leaf is
    either. Most API payloads are a few hundred bytes; walking them in Python cost CloudTrail about a
    sixth of its mapping time."""
    try:
        return len(orjson.dumps(payload, option=orjson.OPT_STRICT_INTEGER)) <= limits.FLAT_LEAF_MAX_BYTES
    except TypeError:
        return False


def _flat(value: Any, path: str, truncated: list[str]) -> Any:
    """A flat_object payload with every leaf indexable: big integers as text, long strings cut.
    Containers are fixed in place; the (possibly replaced) value is returned."""
    if isinstance(value, str):
        if len(value) > limits.FLAT_LEAF_MAX_BYTES // 4 and len(value.encode()) > limits.FLAT_LEAF_MAX_BYTES:
            truncated.append(path)
            return value.encode()[: limits.FLAT_LEAF_MAX_BYTES].decode("utf-8", errors="ignore")
        return value
    if type(value) is int:
        return value if limits.LONG_MIN <= value <= limits.LONG_MAX else _number_text(value)
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (str, int, dict, list)):
                new = _flat(v, f"{path}.{k}", truncated)
                if new is not v:
                    value[k] = new
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (str, int, dict, list)):
                new = _flat(v, path, truncated)
                if new is not v:
                    value[i] = new
    return value


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
