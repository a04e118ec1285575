"""The VPC flow fast path: records of any flow log layout mapped straight to finished JSON bytes.

Exactness rule: a line is mapped here only when its object's layout is known — named by the object's
header line (any custom field list: v3-v10 fields included), or one of the header-less layouts
`vpcflow.to_ecs` tells apart by field count — and it holds exactly that many single-space-separated
printable-ASCII fields, its numbers plain (no leading zero, at most 18 digits, times within
epoch_iso's range, a start or an end present) and its srcaddr/dstaddr "-" or canonical IPv4. The
document is built from the same helpers and tables the reference uses (epoch_iso, community_id,
valid_ip, the transport, action and renaming tables) with the envelope `finalize` adds; every other
line — header lines, IPv6, anything odd — goes through `VpcFlowLogType.records`' own logic and then
`to_ecs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, BinaryIO

import orjson

from siem import limits
from siem.columns import columns_of
from siem.fast.chunks import STATS, Chunk, chunks, framed_line, line_at, numbered_lines
from siem.formats import vpcflow as reference
from siem.formats._network import _MAX_EPOCH, TRANSPORT_BY_NUMBER, community_id, epoch_iso, tcp_flag_names
from siem.formats.base import BadRecord, ParseOptions, Record, Skipped
from siem.normalize import ObjectContext, valid_ip

DATASET = "aws.vpcflow"
_NUMBER = r"(-|0|[1-9][0-9]{0,17})"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_ADDRESS = r"(-|(?:" + _OCTET + r"\.){3}" + _OCTET + ")"
_TEXT = r"([^ ]+)"
# The fields the reference reads as numbers (its _number), and the endpoints it reads as addresses
_NUMBERS = frozenset(
    ("version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp_flags", "traffic_path")
)
_ADDRESSES = frozenset(("srcaddr", "dstaddr"))
_PLAIN = bytes(c if 32 <= c < 127 or c == 10 else 1 for c in range(256))


# The fields the mapper interprets, in the order map_fields unpacks them; every other field is copied
_READ = (
    "start", "end", "srcaddr", "dstaddr", "srcport", "dstport", "packets", "bytes", "protocol", "action",
    "version", "tcp_flags", "traffic_path", "account_id", "instance_id", "region", "az_id", "flow_direction",
    "sublocation_type", "sublocation_id",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Layout:
    """A field list compiled for the fast path."""

    pattern: re.Pattern[str]  # what a plain record matches, one group per field
    read: Callable[[tuple[str, ...]], tuple[str, ...]]  # the _READ fields' values ("-" when absent)
    rest: tuple[tuple[str, int], ...]  # (aws.vpcflow name, group) of every other field, in layout order
    packet_addresses: bool  # pkt-srcaddr or pkt-dstaddr is in the layout (related.ip reads them)


@lru_cache(maxsize=64)
def layout(keys: tuple[str, ...]) -> Layout | None:
    """The compiled layout, or None for one that names a field twice (left to the reference)."""
    if len(set(keys)) != len(keys):
        return None
    parts = [_NUMBER if key in _NUMBERS else _ADDRESS if key in _ADDRESSES else _TEXT for key in keys]
    read = itemgetter(*(keys.index(key) if key in keys else -1 for key in _READ))  # -1: the "-" after the groups
    rest = tuple((reference._RENAMED.get(key, key), i) for i, key in enumerate(keys) if key not in _READ)
    packets = "pkt_srcaddr" in keys or "pkt_dstaddr" in keys
    return Layout(re.compile(" ".join(parts)), read, rest, packets)


def map_fields(values: tuple[str, ...], fields: Layout, ctx: ObjectContext) -> dict[str, Any] | None:
    """The finalized document of one plain record (log.offset still to add), or None. ``values`` are
    the record's fields followed by one "-"."""
    (
        start, end, src_ip, dst_ip, sport, dport, npackets, nbytes, proto, action,
        version, flags, path, account, instance, region, zone, direction, sub_type, sub_id,
    ) = fields.read(values)  # fmt: skip
    start_s = None if start == "-" else int(start)
    end_s = None if end == "-" else int(end)
    if start_s is None and end_s is None:
        return None
    if (start_s is not None and start_s > _MAX_EPOCH) or (end_s is not None and end_s > _MAX_EPOCH):
        return None
    event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["connection"]}
    if start_s is not None:
        event["start"] = epoch_iso(start_s)
    if end_s is not None:
        event["end"] = epoch_iso(end_s)
    doc: dict[str, Any] = {"@timestamp": event.get("end") or event["start"], "event": event}
    network: dict[str, Any] = {}
    vpcflow: dict[str, Any] = {}
    src_port = None if sport == "-" else int(sport)
    dst_port = None if dport == "-" else int(dport)
    source: dict[str, Any] = {} if src_ip == "-" else {"address": src_ip, "ip": src_ip}
    if source and src_port is not None:
        source["port"] = src_port
    if npackets != "-":
        source["packets"] = network["packets"] = int(npackets)
    if nbytes != "-":
        source["bytes"] = network["bytes"] = int(nbytes)
    if source:
        doc["source"] = source
    if dst_ip != "-":
        doc["destination"] = {"address": dst_ip, "ip": dst_ip}
        if dst_port is not None:
            doc["destination"]["port"] = dst_port
    protocol = None if proto == "-" else int(proto)
    if protocol is not None:
        network["iana_number"] = proto
        transport = TRANSPORT_BY_NUMBER.get(protocol)
        if transport:
            network["transport"] = transport
    if src_ip != "-":
        network["type"] = "ipv4"
        if dst_ip != "-" and protocol is not None:
            cid = community_id(src_ip, dst_ip, protocol, src_port, dst_port)
            if cid:
                network["community_id"] = cid
    if action != "-":
        vpcflow["action"] = action
        verbs = reference._ACTIONS.get(action)
        if verbs:
            event["action"], event["outcome"], allowed = verbs
            event["type"].append(allowed)
    if version != "-":
        vpcflow["version"] = int(version)
    if flags != "-":
        vpcflow["tcp_flags"] = int(flags)
        vpcflow["tcp_flags_array"] = tcp_flag_names(vpcflow["tcp_flags"])
    if path != "-":
        vpcflow["traffic_path"] = int(path)
    cloud = _cloud(account, instance, region, zone, vpcflow, ctx)
    if cloud:
        doc["cloud"] = cloud
    if direction in ("ingress", "egress"):
        network["direction"] = direction
    elif direction != "-":
        vpcflow["flow_direction"] = direction
    if sub_type != "-" or sub_id != "-":
        vpcflow["sublocation"] = {k: v for k, v in (("type", sub_type), ("id", sub_id)) if v != "-"}
    for name, i in fields.rest:
        if values[i] != "-":
            vpcflow[name] = values[i]
    ips = []
    if fields.packet_addresses:
        ips = [ip for ip in (valid_ip(vpcflow.get("pkt_srcaddr", "")), valid_ip(vpcflow.get("pkt_dstaddr", ""))) if ip]
    for ip in (src_ip, dst_ip):  # what finalize's related.ip adds: the endpoints after the packet addresses
        if ip != "-":
            ips.append(ip)
    if network:
        doc["network"] = network
    doc["aws"] = {"vpcflow": vpcflow}
    event["dataset"] = DATASET
    event["ingested"] = ctx.ingested
    doc["data_stream"] = {"dataset": DATASET}
    if ips:
        doc["related"] = {"ip": list(dict.fromkeys(ips))}
    return doc


def _cloud(
    account: str, instance: str, region: str, zone: str, vpcflow: dict[str, Any], ctx: ObjectContext
) -> dict[str, Any]:
    """cloud.* as the reference maps it from the record, then as finalize completes it from the S3 key."""
    cloud: dict[str, Any] = {}
    if account != "-":
        vpcflow["account_id"] = account
        if account.isdigit():  # AWS writes "unknown" for interfaces that AWS services own
            cloud["account"] = {"id": account}
    if instance != "-":
        vpcflow["instance_id"] = instance
        cloud["instance"] = {"id": instance}
    if region != "-":
        cloud["region"] = region
    if zone != "-":
        cloud["availability_zone"] = zone
    if cloud or ctx.account_id or ctx.region:
        cloud["provider"] = "aws"
        if ctx.account_id:
            cloud.setdefault("account", {"id": ctx.account_id})
        if ctx.region:
            cloud.setdefault("region", ctx.region)
    return cloud


def _by_count(count: int) -> Layout | None:
    """The header-less layout `to_ecs` picks by field count, compiled."""
    keys = reference._BY_COUNT.get(count)
    return layout(keys) if keys else None


def map_stream(stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord | Skipped]:
    """Records as `VpcFlowLogType.records` gives them, except that the plain lines of a known layout
    mapped here come as (position, Event): finished, finalized documents as JSON bytes."""
    from siem.pipeline import Event  # the pipeline imports the formats, which offer this path

    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    keys: tuple[str, ...] | None = None  # per object: set by this object's header line
    named: Layout | None = None  # those keys compiled (None with keys: the reference maps the records)
    log = b',"log":{"file":{"path":' + orjson.dumps(ctx.path) + b'},"offset":'
    prefix = ctx.id_prefix + "-"
    fast = slow = 0
    for chunk in chunks(stream, limit):
        if isinstance(chunk, BadRecord):
            yield chunk
            continue
        for line, off in numbered_lines(chunk, _PLAIN):
            if not line:
                continue
            doc = None
            if len(line) <= limit and b"\x01" not in line:
                text = line.decode("ascii")
                if not ("a" <= text[0] <= "z" and reference._header_keys(text) is not None):
                    fields = named if keys else _by_count(text.count(" ") + 1)
                    match = fields.pattern.fullmatch(text) if fields else None
                    if match is not None:
                        doc = map_fields((*match.groups(), "-"), fields, ctx)
            if doc is not None:
                fast += 1
                raw = orjson.dumps(doc)[:-1] + log + str(off).encode() + b"}}"
                yield off, Event(prefix + str(off), DATASET, None, raw, columns_of(doc))
                continue
            item = _reference_record(chunk, off, limit, keys)
            if isinstance(item, Skipped):
                keys = reference._header_keys(decoded_text(chunk, off))
                named = layout(keys) if keys else None
            elif item is not None and not isinstance(item, BadRecord):
                slow += 1
            if item is not None:
                yield item
        STATS[DATASET + ".fast"] += fast
        STATS[DATASET + ".reference"] += slow
        fast = slow = 0


def decoded_text(chunk: Chunk, offset: int) -> str:
    return line_at(chunk, offset)[0].rstrip(b"\r").decode("utf-8", errors="replace")


def _reference_record(
    chunk: Chunk, offset: int, limit: int, keys: tuple[str, ...] | None
) -> Record | BadRecord | Skipped | None:
    """The line at `offset` as VpcFlowLogType.records gives it (None for a blank line)."""
    line = framed_line(chunk, offset, limit)
    if not isinstance(line, bytes):
        return line
    text = line.decode("utf-8", errors="replace")
    if reference._header_keys(text) is not None:
        return Skipped(offset, "flow log header line")
    return offset, text if keys is None else reference._HeaderedLine(text, keys)
