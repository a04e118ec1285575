"""AWS Network Firewall logs: alert, flow (Suricata EVE ``alert``/``netflow``) and TLS inspection logs.

Every line is ``{firewall_name, availability_zone, event_timestamp, event: {...}}``; ``event`` is a
Suricata EVE record (or, for TLS logs, AWS's own tls_error / revocation_check record). Alerts become
``event.kind: alert`` with the rule in ``rule.*``; the firewall's verdict is ``event.type``
allowed/denied so it can be queried the same way as VPC flow ACCEPT/REJECT.

Format: https://docs.aws.amazon.com/network-firewall/latest/developerguide/firewall-logging-contents.html
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from siem.formats._network import (
    NUMBER_BY_TRANSPORT,
    as_int,
    as_port,
    community_id,
    epoch_iso,
    iso_timestamp,
    present_str,
    tcp_flag_names,
)
from siem.formats.base import JsonLinesFormat, ParseOptions, RecordError, first_json_object
from siem.normalize import valid_ip

_ZONE = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]+$")  # us-east-2a → us-east-2
_HTTP_VERSION = re.compile(r"^HTTP/(\d(?:\.\d)?)$")
_TLS_VERSION = re.compile(r"^(TLS|SSL)\s*v?(\d(?:\.\d)?)$", re.IGNORECASE)
# Suricata alert actions and TLS-inspection revocation actions → ECS event.type.
_VERDICTS = {"blocked": "denied", "allowed": "allowed", "drop": "denied", "reject": "denied", "pass": "allowed"}
_NETFLOW_KEYS = ("pkts", "bytes", "start", "end", "age", "min_ttl", "max_ttl")
_FLOW_KEYS = ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "start", "end", "age", "state")
_FLOW_SIDES = (
    ("source", "packets", "pkts_toserver"),
    ("source", "bytes", "bytes_toserver"),
    ("destination", "packets", "pkts_toclient"),
    ("destination", "bytes", "bytes_toclient"),
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _endpoint(ev: dict[str, Any], ip_key: str, port_key: str) -> dict[str, Any]:
    part: dict[str, Any] = {}
    address = present_str(ev.get(ip_key))
    if address:
        part["address"] = address
        ip = valid_ip(address)
        if ip:
            part["ip"] = ip
    port = as_port(ev.get(port_key))
    if port is not None:
        part["port"] = port
    return part


def _counters(flow: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The flow counters we keep, with their EVE names, dropping values of the wrong type."""
    kept: dict[str, Any] = {}
    for key in keys:
        value = flow.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value):
            kept[key] = value
    return kept


def _add_verdict(event: dict[str, Any], verdict: str | None) -> None:
    if verdict and verdict not in event["type"]:
        event["type"].append(verdict)


def _timestamp(raw: dict[str, Any], ev: dict[str, Any]) -> str:
    """EVE's precise timestamp; the envelope's epoch seconds when EVE has none (TLS logs may omit it)."""
    if isinstance(ev.get("timestamp"), str):
        return iso_timestamp(ev["timestamp"], "event.timestamp")
    seconds = as_int(raw.get("event_timestamp"))
    if seconds is None:
        raise RecordError("neither event.timestamp nor a numeric event_timestamp")
    return epoch_iso(seconds)


def _http(doc: dict[str, Any], http: dict[str, Any]) -> None:
    host = present_str(http.get("hostname"))
    if host:
        doc.setdefault("destination", {})["domain"] = host
    target = present_str(http.get("url"))
    if target:
        path, _, query = target.partition("?")
        url: dict[str, Any] = {"original": target, "path": path}
        if query:
            url["query"] = query
        if host:
            url["domain"] = host
        doc["url"] = url
    out: dict[str, Any] = {}
    method = present_str(http.get("http_method"))
    if method:
        out["request"] = {"method": method}
    version = _HTTP_VERSION.match(present_str(http.get("protocol")) or "")
    if version:
        out["version"] = version[1]
    status = as_int(http.get("status"))
    if status is not None:
        out["response"] = {"status_code": status}
    if out:
        doc["http"] = out
    agent = present_str(http.get("http_user_agent"))
    if agent:
        doc["user_agent"] = {"original": agent}


def _tls(doc: dict[str, Any], tls: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    sni = present_str(tls.get("sni"))
    if sni:
        out["client"] = {"server_name": sni}
        doc.setdefault("destination", {})["domain"] = sni
    version = _TLS_VERSION.match(present_str(tls.get("version")) or "")
    if version:
        out["version_protocol"] = version[1].lower()
        out["version"] = version[2]
    ja3 = present_str(_dict(tls.get("ja3")).get("hash"))
    if ja3:
        out.setdefault("client", {})["ja3"] = ja3
    server: dict[str, Any] = {}
    ja3s = present_str(_dict(tls.get("ja3s")).get("hash"))
    if ja3s:
        server["ja3s"] = ja3s
    for key, target in (("subject", "subject"), ("issuerdn", "issuer")):
        value = present_str(tls.get(key))
        if value:
            server[target] = value
    fingerprint = present_str(tls.get("fingerprint"))
    if fingerprint:
        server["hash"] = {"sha1": fingerprint.replace(":", "").upper()}
    serial = present_str(tls.get("serial"))
    if serial:
        server["x509"] = {"serial_number": serial.replace(":", "")}
    for key, target in (("notbefore", "not_before"), ("notafter", "not_after")):
        value = present_str(tls.get(key))
        if value:
            try:
                server[target] = iso_timestamp(value, f"tls.{key}")
            except RecordError:
                continue  # a certificate date we cannot read must not cost the whole event
    if server:
        out["server"] = server
    if out:
        doc["tls"] = out


class NetworkFirewallLogType(JsonLinesFormat):
    dataset = "aws.network_firewall"
    description = "AWS Network Firewall alert, flow and TLS logs"
    key_pattern = re.compile(r"AWSLogs/\d{12}/network-firewall/")

    def sniff(self, head: bytes) -> bool:
        obj = first_json_object(head)
        return obj is not None and "firewall_name" in obj and isinstance(obj.get("event"), dict)

    def to_ecs(self, raw: dict[str, Any], options: ParseOptions) -> dict[str, Any]:
        ev = raw.get("event")
        if not isinstance(ev, dict):
            raise RecordError("no 'event' object")
        event_type = present_str(ev.get("event_type"))
        event: dict[str, Any] = {
            "kind": "alert" if event_type == "alert" else "event",
            "category": ["network"],
            "type": ["connection"],
        }
        doc: dict[str, Any] = {"@timestamp": _timestamp(raw, ev), "event": event}
        firewall: dict[str, Any] = {}
        if event_type:
            firewall["event_type"] = event_type

        observer: dict[str, Any] = {"type": "firewall", "vendor": "AWS", "product": "Network Firewall"}
        name = present_str(raw.get("firewall_name"))
        if name:
            observer["name"] = name
        doc["observer"] = observer
        zone = present_str(raw.get("availability_zone"))
        if zone:
            cloud: dict[str, Any] = {"provider": "aws", "availability_zone": zone}
            region = _ZONE.match(zone)
            if region:
                cloud["region"] = region[1]
            doc["cloud"] = cloud

        source = _endpoint(ev, "src_ip", "src_port")
        destination = _endpoint(ev, "dest_ip", "dest_port")
        if source:
            doc["source"] = source
        if destination:
            doc["destination"] = destination
        network: dict[str, Any] = {}
        proto = present_str(ev.get("proto"))
        number = None
        if proto:
            network["transport"] = proto.lower()
            number = NUMBER_BY_TRANSPORT.get(network["transport"])
            if number is None and proto.isascii() and proto.isdigit() and len(proto) <= 3:
                number = int(proto)
            if number is not None:
                network["iana_number"] = str(number)
        app = present_str(ev.get("app_proto"))
        if app and app != "failed":
            network["protocol"] = app.lower()
        if "ip" in source:
            network["type"] = "ipv6" if ":" in source["ip"] else "ipv4"
            if "ip" in destination and number is not None:
                if number in (1, 58):
                    sport, dport = as_int(ev.get("icmp_type")), as_int(ev.get("icmp_code"))
                else:
                    sport, dport = source.get("port"), destination.get("port")
                cid = community_id(source["ip"], destination["ip"], number, sport, dport)
                if cid:
                    network["community_id"] = cid

        alert = _dict(ev.get("alert"))
        if alert:
            rule: dict[str, Any] = {}
            sid = as_int(alert.get("signature_id"))
            if sid is not None:
                rule["id"] = str(sid)
            signature = present_str(alert.get("signature"))
            if signature:
                rule["name"] = signature
            category = present_str(alert.get("category"))
            if category:
                rule["category"] = category
            rev = as_int(alert.get("rev"))
            if rev is not None:
                rule["version"] = str(rev)
            if rule:
                doc["rule"] = rule
            severity = as_int(alert.get("severity"))
            if severity is not None:
                event["severity"] = severity
            action = present_str(alert.get("action"))
            if action:
                event["action"] = action
                _add_verdict(event, _VERDICTS.get(action))

        flow_id = as_int(ev.get("flow_id"))
        flow: dict[str, Any] = {"id": str(flow_id)} if flow_id is not None else {}
        netflow = _counters(_dict(ev.get("netflow")), _NETFLOW_KEYS)
        if netflow:  # one direction of the flow: source → destination
            flow.update(netflow)
            pkts, nbytes = netflow.get("pkts"), netflow.get("bytes")
            if isinstance(pkts, int):
                doc.setdefault("source", {})["packets"] = network["packets"] = pkts
            if isinstance(nbytes, int):
                doc.setdefault("source", {})["bytes"] = network["bytes"] = nbytes
        both = _counters(_dict(ev.get("flow")), _FLOW_KEYS)
        if both:  # the flow an alert belongs to, both directions so far
            flow.update(both)
            for side, counter, key in _FLOW_SIDES:
                value = both.get(key)
                if isinstance(value, int):
                    doc.setdefault(side, {})[counter] = value
                    network[counter] = network.get(counter, 0) + value
        for key in ("start", "end"):
            if isinstance(flow.get(key), str):
                try:
                    event[key] = iso_timestamp(flow[key], f"flow {key}")
                except RecordError:
                    continue  # keep the event; the raw value stays in aws.firewall.flow
        if flow:
            firewall["flow"] = flow
        if network:
            doc["network"] = network

        tcp_flags = present_str(_dict(ev.get("tcp")).get("tcp_flags"))
        if tcp_flags:
            firewall["tcp_flags"] = tcp_flags
            with contextlib.suppress(ValueError):  # not hex: keep the raw value only
                firewall["tcp_flags_array"] = tcp_flag_names(int(tcp_flags, 16))
        http = _dict(ev.get("http"))
        if http:
            _http(doc, http)
        tls = _dict(ev.get("tls"))
        if "sni" in ev:  # TLS inspection logs carry sni at the top of the event
            tls = {**tls, "sni": ev["sni"]}
        if tls:
            _tls(doc, tls)

        tls_error = present_str(_dict(ev.get("tls_error")).get("error_message"))
        if tls_error:
            firewall["tls_error"] = {"error_message": tls_error}
            doc["error"] = {"message": tls_error}
            event["outcome"] = "failure"
        revocation = _dict(ev.get("revocation_check"))
        if revocation:
            kept = {
                k: v for k, v in revocation.items() if k in ("leaf_cert_fpr", "status", "action") and present_str(v)
            }
            if kept:
                firewall["revocation_check"] = kept
            action = present_str(revocation.get("action"))
            if action:
                event["action"] = action.lower()
                _add_verdict(event, _VERDICTS.get(action.lower()))
        if isinstance(ev.get("tls_inspected"), bool):
            firewall["tls_inspected"] = ev["tls_inspected"]
        categories = raw.get("aws_category")
        if isinstance(categories, list) and all(isinstance(c, str) for c in categories) and categories:
            firewall["aws_category"] = categories

        domain = doc.get("destination", {}).get("domain")
        if domain and not valid_ip(domain):
            doc["related"] = {"hosts": [domain]}
        doc["aws"] = {"firewall": firewall}
        return doc


LOG_TYPE = NetworkFirewallLogType()
