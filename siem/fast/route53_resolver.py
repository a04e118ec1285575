"""The Route 53 Resolver query log fast path: each JSON line parsed once and mapped straight to its
finalized document.

Exactness rule: a record is mapped here when `Route53ResolverLogType.to_ecs` maps it at all (its
query_timestamp one that `iso_timestamp` reads, its query_name present); every value it then reads
is read by the same code or the same tests: the reference's own helpers where a value can take odd
forms (`iso_timestamp`, `present_str`, `as_port`, `valid_ip`, `_ptr_ip`, `_answers`) and, for the
envelope `finalize` adds, the same rules (the record's account and region first, then the S3 key's;
related.ip: the PTR target and the resolved addresses, then source.ip). A record `to_ecs` refuses,
or on which the mapper fails, is handed back as `JsonLinesFormat.records` yields it and the
reference makes its dead letter; lines that are not JSON objects keep the reference's framing
(siem/fast/json_lines.py). What repeats (timestamps, the cloud and aws members of an account,
region, VPC and source, the network member of a transport and address family, the event member of
an rcode and firewall action) is built once per object, serialised once and copied into each document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from siem.fast.json_lines import cached_event, shared
from siem.fast.json_lines import map_stream as map_json_lines
from siem.formats import route53_resolver as reference
from siem.formats._network import NUMBER_BY_TRANSPORT, as_port, iso_timestamp, present_str
from siem.formats.base import BadRecord, Record
from siem.normalize import ObjectContext, finalize, valid_ip

DATASET = "aws.route53_resolver"
_DATA_STREAM = shared({"dataset": DATASET})
# The string fields to_ecs reads with present_str, in the order __call__ unpacks them
_TEXTS = ("query_name", "query_type", "query_class", "rcode", "firewall_rule_action", "transport", "srcaddr")
_CACHE_MAX = 65536  # entries per cache: timestamps repeat within a second, attackers vary them
_stamps: dict[str, str] = {}


def _timestamp(value: Any) -> str | None:
    """@timestamp as `iso_timestamp` gives it, or None where it raises (the reference dead-letters)."""
    if type(value) is not str:
        return None
    found = _stamps.get(value)
    if found is None:
        try:
            found = iso_timestamp(value, "query_timestamp")
        except Exception:  # RecordError, and whatever datetime raises: the reference reports it
            return None
        if len(_stamps) < _CACHE_MAX:
            _stamps[value] = found
    return found


def _network(transport: str | None, ip: str | None) -> dict[str, str]:
    """network.* of a record: DNS over its transport, and the querying address's family."""
    network = {"protocol": "dns"}
    if transport:
        network["transport"] = transport.lower()
        number = NUMBER_BY_TRANSPORT.get(network["transport"])
        if number is not None:
            network["iana_number"] = str(number)
    if ip:
        network["type"] = "ipv6" if ":" in ip else "ipv4"
    return network


def _port(value: Any) -> int | None:
    """source.port as `as_port` reads it; a port of up to 5 ASCII digits, as AWS writes it, read here."""
    if type(value) is str and len(value) <= 5 and value.isascii() and value.isdigit():
        port = int(value)
        return port if port <= 65535 else None
    return as_port(value)


class Mapper:
    """The mapper of one object, with the members its documents share (finalized for its S3 key,
    serialised by `json_lines.shared`)."""

    def __init__(self, ctx: ObjectContext) -> None:
        self.ctx = ctx
        self.contexts: dict[tuple[Any, ...], tuple[Any, dict[str, Any], Any]] = {}
        self.events: dict[tuple[str | None, str | None], Any] = {}
        self.networks: dict[tuple[str | None, bool | None], Any] = {}

    def _context(self, values: tuple[Any, ...], srcids: Any) -> tuple[Any, dict[str, Any], Any]:
        """cloud.* (as finalize completes it from the S3 key, serialised) and aws.* but the firewall
        (as a dict, and serialised) of a record whose account_id, region, vpc_id and version are
        ``values``: what one resolver's records share. Records with equal values and srcids items
        get equal members: a value that is not a string is no value to `present_str`, and no string
        equals a non-string."""
        account, region, vpc, version = (present_str(value) for value in values)
        cloud: dict[str, Any] = {"provider": "aws"}
        if account:
            cloud["account"] = {"id": account}
        if region:
            cloud["region"] = region
        aws: dict[str, Any] = {}
        route53: dict[str, Any] = {}
        if vpc:
            aws["vpc_id"] = vpc
        if type(srcids) is dict:
            instance = present_str(srcids.get("instance"))
            if instance:
                aws["instance_id"] = instance
                cloud["instance"] = {"id": instance}
            others = {k: v for k, v in srcids.items() if k != "instance" and present_str(v)}
            if others:
                route53["srcids"] = others
        if version:
            route53["version"] = version
        if route53:
            aws["route53"] = route53
        return shared(finalize({"cloud": cloud}, DATASET, self.ctx, 0)[1]["cloud"]), aws, shared(aws)

    def _event(self, rcode: str | None, action: str | None) -> Any:
        """event.*, finalized and serialised, of a record with this rcode and DNS Firewall action."""
        key = (rcode, action)
        event = self.events.get(key)
        if event is None:
            event = {"kind": "event", "category": ["network"], "type": ["protocol"]}
            if rcode:
                event["outcome"] = "success" if rcode == "NOERROR" else "failure"
            if action:
                event["action"] = action.lower()
                allowed = reference._FIREWALL_TYPES.get(action)
                if allowed:
                    event["type"].append(allowed)
            return cached_event(event, DATASET, self.ctx, self.events, key)
        return event

    def __call__(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The finalized document of one record (log.* aside), or None to hand it to the reference."""
        get = raw.get
        ts = _timestamp(get("query_timestamp"))
        name, qtype, qclass, rcode, action, transport, address = [
            value if type(value) is str and value and value != "-" else None for value in map(get, _TEXTS)
        ]  # present_str of each
        if ts is None or name is None:
            return None
        name = name.removesuffix(".")
        question: dict[str, Any] = {"name": name}
        if qtype:
            question["type"] = qtype
        if qclass:
            question["class"] = qclass
        dns: dict[str, Any] = {"question": question}
        ips: list[str] = []
        hosts: list[str] = []
        if qtype == "PTR":
            target = reference._ptr_ip(name)
            if target:
                ips.append(target)
        else:
            hosts.append(name)
        answers = get("answers")
        if answers:
            answers, resolved = reference._answers(answers, hosts)
            if answers:
                dns["answers"] = answers
            if resolved:
                dns["resolved_ip"] = resolved
                ips.extend(resolved)
        if rcode:
            dns["response_code"] = rcode
        event = self.events.get((rcode, action)) or self._event(rcode, action)
        doc: dict[str, Any] = {"@timestamp": ts, "event": event, "dns": dns}

        ip = None
        if address:
            source: dict[str, Any] = {"address": address}
            ip = valid_ip(address)
            if ip:
                source["ip"] = ip
            port = _port(get("srcport"))
            if port is not None:
                source["port"] = port
            doc["source"] = source
        key = (transport, ":" in ip if ip else None)
        network = self.networks.get(key)
        if network is None:
            network = shared(_network(transport, ip))
            if len(self.networks) < 1024:
                self.networks[key] = network
        doc["network"] = network

        srcids = get("srcids")
        values = (get("account_id"), get("region"), get("vpc_id"), get("version"))
        key = (*values, *srcids.items()) if type(srcids) is dict else values
        try:
            found = self.contexts.get(key)
        except TypeError:  # a list or an object where a string belongs: computed, not kept
            found = key = None
        if found is None:
            found = self._context(values, srcids)
            if key is not None and len(self.contexts) < 1024:
                self.contexts[key] = found
        doc["cloud"], aws, aws_shared = found
        firewall = None
        if action or get("firewall_rule_group_id") or get("firewall_domain_list_id") or get("firewall_protection"):
            firewall = _firewall(raw, action)
        if firewall:
            doc["aws"] = {**aws, "route53": {**aws.get("route53", {}), "firewall": firewall}}
        elif aws:
            doc["aws"] = aws_shared
        doc["data_stream"] = _DATA_STREAM

        if ip and ip not in ips:  # finalize's related.ip: source.ip after the addresses the query names
            ips.append(ip)
        if ips or hosts:
            related: dict[str, Any] = {}
            if ips:
                related["ip"] = ips if len(ips) == 1 else list(dict.fromkeys(ips))
            if hosts:
                related["hosts"] = hosts if len(hosts) == 1 else list(dict.fromkeys(hosts))
            doc["related"] = related
        return doc


def _firewall(raw: dict[str, Any], action: str | None) -> dict[str, Any]:
    """aws.route53.firewall as `to_ecs` writes it (DNS Firewall fields: a few records in most logs)."""
    firewall: dict[str, Any] = {}
    if action:
        firewall["action"] = action
    for key, target in (("firewall_rule_group_id", "rule_group"), ("firewall_domain_list_id", "domain_list")):
        value = present_str(raw.get(key))
        if value:
            firewall[target] = {"id": value}
    protection = present_str(raw.get("firewall_protection"))
    if protection:
        firewall["protection"] = protection
    return firewall


def map_stream(stream: BinaryIO, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
    """Records as `Route53ResolverLogType.records` gives them, the records mapped here as (offset, Event)."""
    return map_json_lines(stream, ctx, DATASET, Mapper(ctx))
