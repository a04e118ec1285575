"""Network helpers shared by the flow-ish AWS log types (VPC flow, Network Firewall, Route 53 Resolver).

They live in one place so that the same flow seen by VPC flow logs and by Network Firewall gets the
same ``network.transport`` name, the same TCP flag names and the same ``network.community_id`` — the
field an analyst uses to join one connection across sources.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import struct
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from siem.formats.base import RecordError
from siem.normalize import iso_utc

# IANA protocol numbers → ECS network.transport names (the names Elastic's pipelines use).
TRANSPORT_BY_NUMBER = {
    0: "hopopt",
    1: "icmp",
    2: "igmp",
    4: "ipv4",
    6: "tcp",
    8: "egp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    115: "l2tp",
    132: "sctp",
}
NUMBER_BY_TRANSPORT = {name: number for number, name in TRANSPORT_BY_NUMBER.items()}
NUMBER_BY_TRANSPORT["icmpv6"] = 58  # Suricata spells ICMPv6 either way

_TCP_FLAG_NAMES = ((0x01, "fin"), (0x02, "syn"), (0x04, "rst"), (0x08, "psh"), (0x10, "ack"), (0x20, "urg"))

# Community ID v1 (https://github.com/corelight/community-id-spec): ICMP type → the type of the
# reply (or request) that belongs to the same conversation; other types are one-way.
_ICMP4_PAIRS = {0: 8, 8: 0, 9: 10, 10: 9, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136, 136: 135}
_ICMP6_PAIRS |= {139: 140, 140: 139, 144: 145, 145: 144}
_PORTED = frozenset({1, 6, 17, 58, 132})

# Already UTC (Z, +0000 as Suricata writes it, or +00:00): only the suffix needs rewriting.
_ISO_UTC = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?)(?:Z|[+-]00:?00)$")
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: past that the year no longer fits ISO 8601


def tcp_flag_names(flags: int) -> list[str]:
    return [name for bit, name in _TCP_FLAG_NAMES if flags & bit]


@lru_cache(maxsize=65536)
def _packed(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def community_id(src: str, dst: str, proto: int, sport: int | None, dport: int | None) -> str | None:
    """Community ID v1 (seed 0) of a flow; None when the tuple is incomplete or mixes address families.

    For ICMP/ICMPv6 ``sport``/``dport`` are the ICMP type and code, as the spec wants.
    """
    try:
        saddr, daddr = _packed(src), _packed(dst)
    except OSError:
        return None
    if len(saddr) != len(daddr) or not 0 <= proto <= 255:
        return None
    ported = proto in _PORTED
    if ported:
        if sport is None or dport is None or not (0 <= sport <= 65535 and 0 <= dport <= 65535):
            return None
        one_way = False
        if proto in (1, 58):
            pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
            if sport in pairs:
                dport = pairs[sport]
            else:
                one_way = True
        if not one_way and (daddr, dport) < (saddr, sport):
            saddr, daddr, sport, dport = daddr, saddr, dport, sport
    elif daddr < saddr:
        saddr, daddr = daddr, saddr
    data = b"\x00\x00" + saddr + daddr + bytes((proto, 0))
    if ported:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


@lru_cache(maxsize=8192)
def epoch_iso(seconds: int) -> str:
    """Epoch seconds → ISO 8601 UTC; flow logs repeat the same window bounds, hence the cache."""
    if not 0 <= seconds <= _MAX_EPOCH:
        raise RecordError(f"epoch time {seconds} is out of range")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def iso_timestamp(value: Any, what: str) -> str:
    """An ISO 8601 string from the log → UTC with a Z, sub-second digits kept; naive means UTC."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is missing or not a string")
    utc = _ISO_UTC.match(value)
    if utc:
        return utc[1] + "Z"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"bad {what} {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return iso_utc(dt)


def present_str(value: Any) -> str | None:
    """The value if it is a string that says something: AWS writes "" or the "-" placeholder for an
    absent value (where _json_payload.nonempty_str would keep "-")."""
    return value if isinstance(value, str) and value not in ("", "-") else None


def as_port(value: Any) -> int | None:
    """A port number (see as_int) in 0-65535; None for anything else, which no port field accepts."""
    port = as_int(value)
    return port if port is not None and 0 <= port <= 65535 else None


def as_int(value: Any) -> int | None:
    """An int from a JSON number or a decimal string (AWS writes ports both ways); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None
