"""Amazon Route 53 Resolver query logs (one JSON object per line), DNS Firewall fields included.

Besides the querying host (source.ip), the IPs the answer resolved to and the IP a PTR query asked
about go into related.ip: "which instance looked up this C2 address?" is a one-field pivot.

Fields: https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resolver-query-logs-format.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.formats._network import NUMBER_BY_TRANSPORT, as_port, iso_timestamp, present_str
from siem.formats.base import BadRecord, JsonLinesFormat, ParseOptions, Record, RecordError, first_json_object
from siem.normalize import ObjectContext, valid_ip

# DNS Firewall rule actions → ECS event.type (ALERT lets the query through and only logs it).
_FIREWALL_TYPES = {"BLOCK": "denied", "ALLOW": "allowed", "ALERT": "allowed"}
_V4_PTR = re.compile(r"^((?:\d{1,3}\.){3}\d{1,3})\.in-addr\.arpa$", re.IGNORECASE)
_V6_PTR = re.compile(r"^((?:[0-9a-f]\.){32})ip6\.arpa$", re.IGNORECASE)


def _ptr_ip(name: str) -> str | None:
    """The address a reverse-lookup name asks about (``4.3.2.1.in-addr.arpa`` → ``1.2.3.4``)."""
    match = _V4_PTR.match(name)
    if match:
        return valid_ip(".".join(reversed(match[1].split("."))))
    match = _V6_PTR.match(name)
    if match:
        nibbles = "".join(reversed(match[1].split(".")))
        return valid_ip(":".join(nibbles[i : i + 4] for i in range(0, 32, 4)))
    return None


def _answers(raw: Any, hosts: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    """ECS dns.answers and the A/AAAA addresses among them; CNAME/PTR targets are added to hosts."""
    answers: list[dict[str, str]] = []
    resolved: list[str] = []
    if not isinstance(raw, list):
        return answers, resolved
    for item in raw:
        if not isinstance(item, dict):
            continue
        answer: dict[str, str] = {}
        rtype, rclass, data = (
            present_str(item.get("Type")),
            present_str(item.get("Class")),
            present_str(item.get("Rdata")),
        )
        if rclass:
            answer["class"] = rclass
        if rtype:
            answer["type"] = rtype
        if data:
            data = data.removesuffix(".")
            answer["data"] = data
            if rtype in ("A", "AAAA"):
                ip = valid_ip(data)
                if ip:
                    resolved.append(ip)
            elif rtype in ("CNAME", "PTR"):
                hosts.append(data)
        if answer:
            answers.append(answer)
    return answers, resolved


class Route53ResolverLogType(JsonLinesFormat):
    dataset = "aws.route53_resolver"
    description = "Amazon Route 53 Resolver query logs (incl. DNS Firewall actions)"
    key_pattern = re.compile(r"AWSLogs/\d{12}/vpcdnsquerylogs/")

    def sniff(self, head: bytes) -> bool:
        obj = first_json_object(head)
        return obj is not None and "query_name" in obj and "query_timestamp" in obj

    def to_ecs(self, raw: dict[str, Any], options: ParseOptions) -> dict[str, Any]:
        ts = iso_timestamp(raw.get("query_timestamp"), "query_timestamp")
        name = present_str(raw.get("query_name"))
        if name is None:
            raise RecordError("query_name is missing")
        name = name.removesuffix(".")
        qtype = present_str(raw.get("query_type"))
        question: dict[str, Any] = {"name": name}
        if qtype:
            question["type"] = qtype
        qclass = present_str(raw.get("query_class"))
        if qclass:
            question["class"] = qclass
        dns: dict[str, Any] = {"question": question}
        ips: list[str] = []
        hosts: list[str] = []
        if qtype == "PTR":
            target = _ptr_ip(name)
            if target:
                ips.append(target)
        else:
            hosts.append(name)
        answers, resolved = _answers(raw.get("answers"), hosts)
        if answers:
            dns["answers"] = answers
        if resolved:
            dns["resolved_ip"] = resolved
            ips.extend(resolved)
        rcode = present_str(raw.get("rcode"))
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["protocol"]}
        if rcode:
            dns["response_code"] = rcode
            event["outcome"] = "success" if rcode == "NOERROR" else "failure"
        doc: dict[str, Any] = {"@timestamp": ts, "event": event, "dns": dns}

        network: dict[str, Any] = {"protocol": "dns"}
        transport = present_str(raw.get("transport"))
        if transport:
            network["transport"] = transport.lower()
            number = NUMBER_BY_TRANSPORT.get(network["transport"])
            if number is not None:
                network["iana_number"] = str(number)
        address = present_str(raw.get("srcaddr"))
        if address:
            source: dict[str, Any] = {"address": address}
            ip = valid_ip(address)
            if ip:
                source["ip"] = ip
                network["type"] = "ipv6" if ":" in ip else "ipv4"
            port = as_port(raw.get("srcport"))
            if port is not None:
                source["port"] = port
            doc["source"] = source
        doc["network"] = network

        cloud: dict[str, Any] = {"provider": "aws"}
        account = present_str(raw.get("account_id"))
        if account:
            cloud["account"] = {"id": account}
        region = present_str(raw.get("region"))
        if region:
            cloud["region"] = region
        aws: dict[str, Any] = {}
        route53: dict[str, Any] = {}
        vpc = present_str(raw.get("vpc_id"))
        if vpc:
            aws["vpc_id"] = vpc
        srcids = raw.get("srcids")
        if isinstance(srcids, dict):
            instance = present_str(srcids.get("instance"))
            if instance:
                aws["instance_id"] = instance
                cloud["instance"] = {"id": instance}
            others = {k: v for k, v in srcids.items() if k != "instance" and present_str(v)}
            if others:
                route53["srcids"] = others
        doc["cloud"] = cloud
        version = present_str(raw.get("version"))
        if version:
            route53["version"] = version

        firewall: dict[str, Any] = {}
        action = present_str(raw.get("firewall_rule_action"))
        if action:
            firewall["action"] = action
            event["action"] = action.lower()
            allowed = _FIREWALL_TYPES.get(action)
            if allowed:
                event["type"].append(allowed)
        for key, target in (("firewall_rule_group_id", "rule_group"), ("firewall_domain_list_id", "domain_list")):
            value = present_str(raw.get(key))
            if value:
                firewall[target] = {"id": value}
        protection = present_str(raw.get("firewall_protection"))
        if protection:
            firewall["protection"] = protection
        if firewall:
            route53["firewall"] = firewall
        if route53:
            aws["route53"] = route53
        if aws:
            doc["aws"] = aws

        related: dict[str, Any] = {}
        if ips:
            related["ip"] = list(dict.fromkeys(ips))
        if hosts:
            related["hosts"] = list(dict.fromkeys(hosts))
        if related:
            doc["related"] = related
        return doc

    def batch_mapper(self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
        """Records with the plain ones already mapped by the fast path (siem/fast/route53_resolver.py);
        the pipeline maps the rest with to_ecs, so every document and dead letter is this module's. No
        ParseOptions field changes this mapping (the record limit comes with the stream)."""
        if not fast.enabled():
            return self.records(stream, options)
        from siem.fast import route53_resolver as fast_route53  # it reads this module's tables

        return fast_route53.map_stream(stream, ctx)


LOG_TYPE = Route53ResolverLogType()
