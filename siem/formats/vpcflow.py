"""AWS VPC Flow Logs delivered to S3 as text: the default v2 format and custom formats.

S3 deliveries start with a header line naming the fields (``version account-id interface-id ...``);
that header, not a guess, decides the layout of the rest of its object, so any custom field set
and order parses right. Header-less lines (copied out of CloudWatch, older tools) fall back to the
layouts Elastic's integration recognises by field count.

Fields: https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.formats._network import TRANSPORT_BY_NUMBER, community_id, epoch_iso, tcp_flag_names
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, head_lines, iter_lines
from siem.normalize import ObjectContext, valid_ip

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def _keys(fields: str) -> tuple[str, ...]:
    """Header-line names → the keys we use (hyphens become underscores, as in Elastic's field names)."""
    return tuple(name.replace("-", "_") for name in fields.split())


# Every field AWS documents (flow log versions 2-10).
_KNOWN_KEYS = frozenset(
    _keys(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
        "action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id "
        "sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path "
        "ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id "
        "ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id reject-reason "
        "resource-id encryption-status"
    )
)
_DEFAULT = _keys(
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)
# Header-less layouts Elastic's pipeline tells apart by field count (only those that carry a time).
_BY_COUNT = {
    14: _DEFAULT,
    21: _keys(
        "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport "
        "pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status"
    ),
    29: _DEFAULT
    + _keys(
        "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
        "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
    ),
}
_LOG_STATUSES = frozenset({"OK", "NODATA", "SKIPDATA"})
_ACTIONS = {"ACCEPT": ("accept", "success", "allowed"), "REJECT": ("reject", "failure", "denied")}
# Fields that become something else than aws.vpcflow.<same name>.
_RENAMED = {"pkt_src_aws_service": "pkt_src_service", "pkt_dst_aws_service": "pkt_dst_service"}
_INT_FIELDS = ("version", "tcp_flags", "traffic_path")


class _HeaderedLine(str):
    """A record line that carries the field names of its object's header line to ``to_ecs``."""

    field_keys: tuple[str, ...]

    def __new__(cls, text: str, field_keys: tuple[str, ...]) -> _HeaderedLine:
        line = super().__new__(cls, text)
        line.field_keys = field_keys
        return line


def _header_keys(text: str) -> tuple[str, ...] | None:
    """The field keys if this line is a header line, else None (cheap for data lines)."""
    if not text[:1].islower():
        return None
    tokens = text.split()
    if len(tokens) < 2 or tokens[0].replace("-", "_") not in _KNOWN_KEYS:
        return None
    if not all(_FIELD_NAME.match(t) for t in tokens):
        return None
    return _keys(text)


def _number(rec: dict[str, str], key: str) -> int | None:
    value = rec.pop(key, None)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise RecordError(f"{key} is not a number: {value[:40]!r} (is the field layout right?)")
    return int(value)


def _time(rec: dict[str, str], key: str) -> str | None:
    seconds = _number(rec, key)
    return None if seconds is None else epoch_iso(seconds)


def _endpoint(address: str | None, port: int | None) -> dict[str, Any] | None:
    if address is None:
        return None
    part: dict[str, Any] = {"address": address}
    ip = valid_ip(address)
    if ip:
        part["ip"] = ip
    if port is not None:
        part["port"] = port
    return part


def _map(keys: tuple[str, ...], tokens: list[str]) -> dict[str, Any]:
    rec = {key: value for key, value in zip(keys, tokens, strict=True) if value != "-"}
    start, end = _time(rec, "start"), _time(rec, "end")
    if end is None and start is None:
        raise RecordError("flow record has no start or end time")
    event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["connection"]}
    if start:
        event["start"] = start
    if end:
        event["end"] = end
    doc: dict[str, Any] = {"@timestamp": end or start, "event": event}
    vpcflow: dict[str, Any] = {}
    network: dict[str, Any] = {}

    source = _endpoint(rec.pop("srcaddr", None), _number(rec, "srcport"))
    destination = _endpoint(rec.pop("dstaddr", None), _number(rec, "dstport"))
    packets, nbytes = _number(rec, "packets"), _number(rec, "bytes")
    if packets is not None or nbytes is not None:
        source = source or {}
        if packets is not None:
            source["packets"] = network["packets"] = packets
        if nbytes is not None:
            source["bytes"] = network["bytes"] = nbytes
    if source:
        doc["source"] = source
    if destination:
        doc["destination"] = destination
    proto = _number(rec, "protocol")
    if proto is not None:
        network["iana_number"] = str(proto)
        transport = TRANSPORT_BY_NUMBER.get(proto)
        if transport:
            network["transport"] = transport
    src, dst = source or {}, destination or {}
    if "ip" in src:
        network["type"] = "ipv6" if ":" in src["ip"] else "ipv4"
        if "ip" in dst and proto is not None:
            cid = community_id(src["ip"], dst["ip"], proto, src.get("port"), dst.get("port"))
            if cid:
                network["community_id"] = cid

    action = rec.pop("action", None)
    if action is not None:
        vpcflow["action"] = action
        verbs = _ACTIONS.get(action)
        if verbs:
            event["action"], event["outcome"], allowed = verbs
            event["type"].append(allowed)
    for key in _INT_FIELDS:
        number = _number(rec, key)
        if number is not None:
            vpcflow[key] = number
    if "tcp_flags" in vpcflow:
        vpcflow["tcp_flags_array"] = tcp_flag_names(vpcflow["tcp_flags"])

    cloud: dict[str, Any] = {}
    account = rec.pop("account_id", None)
    if account is not None:
        vpcflow["account_id"] = account
        if account.isascii() and account.isdigit():  # AWS writes "unknown" for interfaces that AWS services own
            cloud["account"] = {"id": account}
    instance = rec.pop("instance_id", None)
    if instance is not None:
        vpcflow["instance_id"] = instance
        cloud["instance"] = {"id": instance}
    region = rec.pop("region", None)
    if region is not None:
        cloud["region"] = region
    zone = rec.pop("az_id", None)
    if zone is not None:
        cloud["availability_zone"] = zone
    if cloud:
        cloud["provider"] = "aws"
        doc["cloud"] = cloud
    direction = rec.pop("flow_direction", None)
    if direction in ("ingress", "egress"):
        network["direction"] = direction
    elif direction is not None:
        vpcflow["flow_direction"] = direction
    sub_type, sub_id = rec.pop("sublocation_type", None), rec.pop("sublocation_id", None)
    if sub_type or sub_id:
        vpcflow["sublocation"] = {k: v for k, v in (("type", sub_type), ("id", sub_id)) if v}
    for key, value in rec.items():
        vpcflow[_RENAMED.get(key, key)] = value

    # The packet-level addresses differ from srcaddr/dstaddr behind NAT gateways and ENI trunking.
    packet_ips = [valid_ip(vpcflow.get("pkt_srcaddr", "")), valid_ip(vpcflow.get("pkt_dstaddr", ""))]
    if any(packet_ips):
        doc["related"] = {"ip": list(dict.fromkeys(ip for ip in packet_ips if ip))}
    if network:
        doc["network"] = network
    doc["aws"] = {"vpcflow": vpcflow}
    return doc


class VpcFlowLogType:
    dataset = "aws.vpcflow"
    description = "AWS VPC Flow Logs (S3 text delivery: default and custom formats, header line honoured)"
    # Plain and Hive-compatible S3 prefixes; Parquet deliveries are not text, so they are left to fail loudly.
    key_pattern = re.compile(r"AWSLogs/(?:aws-account-id=)?\d{12}/(?:aws-service=)?vpcflowlogs/(?!.*\.parquet$)")

    def sniff(self, head: bytes) -> bool:
        lines = head_lines(head, 2)
        if not lines:
            return False
        text = lines[0].decode("utf-8", errors="replace")
        if _header_keys(text) is not None:
            return True
        tokens = text.split()
        keys = _BY_COUNT.get(len(tokens))
        if keys is None:
            return False
        fields = dict(zip(keys, tokens, strict=True))
        return (
            fields["version"].isdigit()
            and fields["log_status"] in _LOG_STATUSES
            and (fields["interface_id"] == "-" or fields["interface_id"].startswith("eni-"))
            and fields["start"].isdigit()
        )

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        keys: tuple[str, ...] | None = None  # per object: set by this object's header line
        for offset, line in iter_lines(stream):
            text = line.decode("utf-8", errors="replace")
            header = _header_keys(text)
            if header is not None:
                keys = header
                yield Skipped(offset, "flow log header line")
                continue
            yield offset, text if keys is None else _HeaderedLine(text, keys)

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        tokens = raw.split()
        keys = getattr(raw, "field_keys", None)
        if keys is None:
            keys = _BY_COUNT.get(len(tokens))
            if keys is None:
                raise RecordError(
                    f"{len(tokens)} fields and no header line: not a flow log layout known without its header"
                )
        elif len(tokens) != len(keys):
            raise RecordError(f"{len(tokens)} fields but the object's header line names {len(keys)}")
        return _map(keys, tokens)

    def batch_mapper(
        self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext
    ) -> Iterator[Record | BadRecord | Skipped]:
        """Records with the default-layout lines already mapped by the fast path (siem/fast/vpcflow.py);
        the pipeline maps the rest with to_ecs, so every document and dead letter is this module's."""
        if not fast.enabled():
            return self.records(stream, options)
        from siem.fast import vpcflow as fast_vpcflow  # it reads this module's tables

        return fast_vpcflow.map_stream(stream, options, ctx)


LOG_TYPE = VpcFlowLogType()
