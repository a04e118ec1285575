"""The VPC flow fast path: records of the default (v2) layout mapped straight to finished JSON bytes.

Exactness rule: a line is mapped here only when its object's layout is the default one (named by the
object's header line, or 14 fields without a header, as `vpcflow.to_ecs` decides) and it is 14
single-space-separated printable-ASCII fields whose numbers are plain (no leading zero, at most 18
digits, times within epoch_iso's range) and whose addresses are "-" or canonical IPv4. The document
is built from the same helpers the reference uses (epoch_iso, community_id, the transport table)
with the envelope `finalize` adds; every other line — header lines, custom layouts, IPv6,
anything odd — goes through `VpcFlowLogType.records`' own logic and then `to_ecs`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from siem import limits
from siem.fast.chunks import STATS, Chunk, chunks, line_at, numbered_lines
from siem.formats._network import _MAX_EPOCH, TRANSPORT_BY_NUMBER, community_id, epoch_iso
from siem.formats.base import BadRecord, ParseOptions, Record, Skipped, oversized_record
from siem.normalize import ObjectContext

DATASET = "aws.vpcflow"
_NUMBER = rb"(-|0|[1-9]\d{0,17})"
_OCTET = rb"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_ADDRESS = rb"(-|(?:" + _OCTET + rb"\.){3}" + _OCTET + rb")"
# version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
_FIELDS = b" ".join([_NUMBER] * 7)  # srcport, dstport, protocol, packets, bytes, start, end
_LINE = re.compile(_NUMBER + rb" ([^ ]+) ([^ ]+) " + _ADDRESS + b" " + _ADDRESS + b" " + _FIELDS + rb" ([^ ]+) ([^ ]+)")
_VERBS = {b"ACCEPT": ("accept", "success", "allowed"), b"REJECT": ("reject", "failure", "denied")}
_PLAIN = bytes(c if 32 <= c < 127 or c == 10 else 1 for c in range(256))


def _int(value: bytes) -> int | None:
    return None if value == b"-" else int(value)


def _text(value: bytes) -> str | None:
    return None if value == b"-" else value.decode("ascii")


def map_fields(match: re.Match[bytes], ctx: ObjectContext) -> dict[str, Any] | None:
    """The finalized document of one default-layout record (log.offset still to add), or None."""
    version, account, interface, srcaddr, dstaddr, sport, dport, proto, packets, nbytes, start, end, action, status = (
        match.groups()
    )
    start_s, end_s = _int(start), _int(end)
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
    src_ip, dst_ip = _text(srcaddr), _text(dstaddr)
    source: dict[str, Any] = {"address": src_ip, "ip": src_ip} if src_ip else {}
    src_port, dst_port = _int(sport), _int(dport)
    if src_ip and src_port is not None:
        source["port"] = src_port
    n_packets, n_bytes = _int(packets), _int(nbytes)
    if n_packets is not None:
        source["packets"] = network["packets"] = n_packets
    if n_bytes is not None:
        source["bytes"] = network["bytes"] = n_bytes
    if source:
        doc["source"] = source
    if dst_ip:
        doc["destination"] = {"address": dst_ip, "ip": dst_ip}
        if dst_port is not None:
            doc["destination"]["port"] = dst_port
    protocol = _int(proto)
    if protocol is not None:
        network["iana_number"] = str(protocol)
        transport = TRANSPORT_BY_NUMBER.get(protocol)
        if transport:
            network["transport"] = transport
    if src_ip:
        network["type"] = "ipv4"
        if dst_ip and protocol is not None:
            cid = community_id(src_ip, dst_ip, protocol, src_port, dst_port)
            if cid:
                network["community_id"] = cid
    if action != b"-":
        vpcflow["action"] = action.decode()
        verbs = _VERBS.get(action)
        if verbs:
            event["action"], event["outcome"], allowed = verbs
            event["type"].append(allowed)
    if version != b"-":
        vpcflow["version"] = int(version)
    cloud: dict[str, Any] = {}
    if account != b"-":
        vpcflow["account_id"] = account.decode()
        if account.isdigit():
            cloud["account"] = {"id": vpcflow["account_id"]}
    if interface != b"-":
        vpcflow["interface_id"] = interface.decode()
    if status != b"-":
        vpcflow["log_status"] = status.decode()
    if cloud or ctx.account_id or ctx.region:  # what finalize adds from the object's key, record values first
        cloud["provider"] = "aws"
        if ctx.account_id:
            cloud.setdefault("account", {"id": ctx.account_id})
        if ctx.region:
            cloud["region"] = ctx.region
        doc["cloud"] = cloud
    if network:
        doc["network"] = network
    doc["aws"] = {"vpcflow": vpcflow}
    event["dataset"] = DATASET
    event["ingested"] = ctx.ingested
    doc["data_stream"] = {"dataset": DATASET}
    ips = [ip for ip in (src_ip, dst_ip) if ip]
    if ips:
        doc["related"] = {"ip": ips if len(ips) == 1 or ips[0] != ips[1] else ips[:1]}
    return doc


def map_stream(stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord | Skipped]:
    """Records as `VpcFlowLogType.records` gives them, except that the default-layout lines mapped
    here come as (position, Event): finished, finalized documents as JSON bytes."""
    from siem.formats import vpcflow as reference  # it imports this module to offer the path
    from siem.pipeline import Event

    limit = getattr(stream, "max_record_bytes", limits.MAX_RECORD_BYTES)
    keys: tuple[str, ...] | None = None  # per object: set by this object's header line
    log = b',"log":{"file":{"path":' + orjson.dumps(ctx.path) + b'},"offset":'
    prefix = ctx.id_prefix + "-"
    fast = slow = 0
    for chunk in chunks(stream, limit):
        if isinstance(chunk, BadRecord):
            yield chunk
            continue
        default = keys is None or keys == reference._DEFAULT
        for line, off in numbered_lines(chunk, _PLAIN):
            if not line:
                continue
            plain = default and line[:1].isdigit() and len(line) <= limit and b"\x01" not in line
            match = _LINE.fullmatch(line) if plain else None
            doc = map_fields(match, ctx) if match is not None else None
            if doc is not None:
                fast += 1
                raw = orjson.dumps(doc)[:-1] + log + str(off).encode() + b"}}"
                yield off, Event(prefix + str(off), DATASET, None, raw)
                continue
            item = _reference_record(chunk, off, limit, keys, reference)
            if isinstance(item, Skipped):
                keys = reference._header_keys(decoded_text(chunk, off))
                default = keys == reference._DEFAULT
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
    chunk: Chunk, offset: int, limit: int, keys: tuple[str, ...] | None, reference: Any
) -> Record | BadRecord | Skipped | None:
    """The line at `offset` as VpcFlowLogType.records gives it (None for a blank line)."""
    line, length = line_at(chunk, offset)
    if len(line) > limit:
        start = offset - chunk.base
        return oversized_record(offset, length, limit, chunk.data[start : start + min(limits.RAW_LIMIT, limit + 1)])
    line = line.rstrip(b"\r")
    if not line.strip():
        return None
    text = line.decode("utf-8", errors="replace")
    if reference._header_keys(text) is not None:
        return Skipped(offset, "flow log header line")
    return offset, text if keys is None else reference._HeaderedLine(text, keys)
