"""Parsing shared by the nginx and Apache log types: the combined access-log line, request lines,
timestamps, sniffing, multi-line error-log framing and the fields every error entry has, and the
X-Forwarded-For walk that finds the real client.

nginx and Apache write the same NCSA common/combined layout and error logs of the same kind, so
one implementation keeps both producers landing in the same ECS fields; each type's own file keeps
only its layout (regexes) and the fields only that producer writes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, BinaryIO
from urllib.parse import unquote

from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, head_lines, iter_lines
from siem.normalize import valid_ip
from siem.timeparse import resolve_timezone

# A double-quoted log field; Apache escapes `"` and `\` inside it with a backslash.
QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
# NCSA common/combined with the variants both servers produce: a virtual-host prefix, nginx
# address lists (`$proxy_add_x_forwarded_for`), a response time after the byte count and
# anything after the user agent (nginx's "$http_x_forwarded_for", Apache's X-Forwarded-For="…").
ACCESS_LINE = re.compile(
    r"(?P<pre>[^\[]+?) (?P<ident>\S+) (?P<auth>\S+) "
    r"\[(?P<time>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    rf'"(?P<request>{QUOTED})" (?P<status>\d{{3}}|-) (?P<bytes>\d+|-)'
    r"(?: (?P<rtime>\d+(?:\.\d+)?))?"
    rf'(?: "(?P<referrer>{QUOTED})")?(?: "(?P<agent>{QUOTED})")?(?P<rest>.*)'
)
_REQUEST = re.compile(r"(?P<method>[A-Za-z][A-Za-z0-9_.-]*) (?P<target>.*?)(?: HTTP/(?P<version>\d+(?:\.\d+)?))?")
_URL = re.compile(
    r"(?:(?P<scheme>[A-Za-z][\w+.-]*)://(?P<host>\[[^\]]*\]|[^/:?#]*)(?::(?P<port>\d+))?)?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)")
_HOSTNAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?")
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d\d))?", re.IGNORECASE)

_MAX_ADDRESS = 64  # longer than any IP with scope, brackets and port

# Used when ParseOptions.trusted_proxies is empty: loopback, RFC 1918, link-local and unique-local
# addresses (the list Rails uses). A peer from these ranges is our own load balancer or proxy; a
# public peer is the client itself and its X-Forwarded-For is not believed.
DEFAULT_TRUSTED_PROXIES = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
)


def none_if_dash(value: str | None) -> str | None:
    return None if value is None or value in ("-", "") else value


def unescape(value: str) -> str:
    """Undo the log's backslash escaping of quotes and backslashes; \\xHH stays as logged (bytes)."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: m[1] if m[1] in '"\\' else m[0], value)


def month_number(name: str) -> int:
    month = _MONTHS.get(name) or _MONTHS.get(name.title())
    if month is None:
        raise RecordError(f"bad month {name!r}")
    return month


@lru_cache(maxsize=4096)
def access_timestamp(value: str) -> str:
    """`10/Oct/2000:13:55:36 -0700` → ISO UTC; cached because a busy log repeats each second."""
    try:
        local = datetime(
            int(value[7:11]),
            month_number(value[3:6]),
            int(value[0:2]),
            int(value[12:14]),
            int(value[15:17]),
            int(value[18:20]),
        )
    except ValueError as exc:
        raise RecordError(f"bad timestamp {value!r}: {exc}") from None
    minutes = int(value[22:24]) * 60 + int(value[24:26])
    utc = local - timedelta(minutes=minutes if value[21] == "+" else -minutes)
    return utc.isoformat() + "Z"


def local_timestamp(local: datetime, tz_name: str) -> str:
    """A zone-less log time read in the configured timezone → ISO UTC with the log's precision."""
    utc = local.replace(tzinfo=resolve_timezone(tz_name)).astimezone(UTC)
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def first_line(head: bytes) -> str | None:
    """The first complete line of a sniffing buffer as text: every web-server sniffer judges only that."""
    lines = head_lines(head, 1)
    return lines[0].decode("utf-8", errors="replace") if lines else None


def outcome(status: int | None) -> str | None:
    if status is None:
        return None
    return "success" if status < 400 else "failure"


# --- addresses and the X-Forwarded-For walk -------------------------------------------------


def endpoint(token: str) -> tuple[str | None, int | None]:
    """An address as logged → (canonical IP, port): `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`."""
    if len(token) > _MAX_ADDRESS:  # never an IP; and a huge token must not sit in the caches
        return None, None
    return _endpoint(token)


@lru_cache(maxsize=65536)
def _endpoint(token: str) -> tuple[str | None, int | None]:
    ip = valid_ip(token)
    if ip is not None:
        return ip, None
    if token.startswith("["):
        host, sep, port = token[1:].partition("]:")
        if sep and port.isdigit():
            return valid_ip(host), int(port)
        return None, None
    host, sep, port = token.rpartition(":")
    if sep and port.isdigit() and host.count(".") == 3:
        return valid_ip(host), int(port)
    return None, None


def endpoint_part(token: str) -> dict[str, Any] | None:
    """The ECS source/client/destination object for one logged address (an IP or a host name)."""
    if token in ("-", ""):
        return None
    ip, port = endpoint(token)
    if ip is not None:
        part: dict[str, Any] = {"ip": ip, "address": ip}
    else:
        host, sep, port_text = token.rpartition(":")
        if sep and port_text.isdigit() and _is_hostname(host):
            token, port = host, int(port_text)
        part = {"address": token}
        if _is_hostname(token):
            part["domain"] = token.rstrip(".")
    if port is not None:
        part["port"] = port
    return part


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for cidr in cidrs or DEFAULT_TRUSTED_PROXIES:
        try:
            nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise RecordError(f"invalid CIDR {cidr!r} in ParseOptions.trusted_proxies") from None
    return tuple(nets)


@lru_cache(maxsize=65536)
def is_trusted(ip: str, cidrs: tuple[str, ...]) -> bool:
    """Whether a canonical IP is one of our proxies (ParseOptions.trusted_proxies, or the defaults)."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in _networks(cidrs))


def client_index(chain: list[str], trusted: tuple[str, ...]) -> int:
    """Index of the real client in [X-Forwarded-For hops…, connecting peer].

    Walk from the right: while the current hop is a trusted proxy, the hop it forwarded for is the
    next candidate. The first untrusted address is the client; anything left of it was written by
    the client (or an attacker) and is not believed. A hop that is not an IP stops the walk at the
    last trusted proxy, as nginx's realip module does.
    """
    i = len(chain) - 1
    while i > 0:
        ip = endpoint(chain[i])[0]
        if ip is None or not is_trusted(ip, trusted) or endpoint(chain[i - 1])[0] is None:
            break
        i -= 1
    return i


def put_clients(doc: dict[str, Any], chain: list[str], options: ParseOptions) -> None:
    """source.* = the real client, client.* = the peer that connected, every hop IP in related.ip."""
    if not chain:
        return
    peer = endpoint_part(chain[-1])
    if len(chain) == 1:
        if peer:
            doc["source"] = peer
            doc["client"] = dict(peer)
        return
    idx = client_index(chain, tuple(options.trusted_proxies))
    source = endpoint_part(chain[idx])
    if source:
        doc["source"] = source
    if peer:
        doc["client"] = peer
    related: list[str] = []
    for hop in chain:
        ip = endpoint(hop)[0]
        if ip is not None and ip not in related:
            related.append(ip)
    if related:
        doc["related"] = {"ip": related}


def _is_hostname(token: str) -> bool:
    return len(token) <= 253 and _HOSTNAME.fullmatch(token) is not None


def _is_address(token: str) -> bool:
    if endpoint(token)[0] is not None or token in ("unix:", "-", "unknown"):
        return True
    host, sep, port = token.rpartition(":")
    return _is_hostname(host if sep and port.isdigit() else token)


def split_prefix(pre: str) -> tuple[str | None, list[str]]:
    """What precedes ident/authuser → (virtual host or None, [addresses…]).

    `example.com:80 10.0.0.2, 10.0.0.1 1.2.3.4` → ("example.com:80", [10.0.0.2, 10.0.0.1, 1.2.3.4]).
    The first word is a virtual host when more words follow and it does not end with a comma
    (Elastic's NGINX_HOST rule). Addresses are comma-separated, except the connecting address,
    which may follow the X-Forwarded-For list after a space. Anything else raises RecordError, so
    a line wrapped in another format (a syslog header) is a dead letter, not a wrong event.
    """
    words = pre.split()
    host = None
    if len(words) > 1 and not words[0].endswith(",") and not words[0].startswith('"'):
        host = words[0]
        words = words[1:]
        if not _is_address(host):
            raise RecordError(f"bad virtual host {host[:80]!r}")
    chain: list[str] = []
    space_only = 0
    for i, word in enumerate(words):
        bare = word.strip('"')
        if i and not words[i - 1].strip('"').endswith(",") and not bare.startswith(","):
            space_only += 1
        chain.extend(e for e in (part.strip('"') for part in bare.split(",")) if e)
    if not chain:
        raise RecordError("no client address")
    if space_only > 1:
        raise RecordError(f"client address field {pre[:120]!r} is not an address list")
    for entry in chain:
        if not _is_address(entry):
            raise RecordError(f"bad client address {entry[:80]!r}")
    return host, chain


def xff_hops(value: str) -> list[str] | None:
    """An X-Forwarded-For value → its hops, or None when it is not an address list at all."""
    hops = [h.strip() for h in value.split(",")]
    hops = [h for h in hops if h]
    if not hops or any(endpoint(h)[0] is None and h.lower() != "unknown" for h in hops):
        return None
    return hops


def put_destination(doc: dict[str, Any], host: str) -> None:
    part = endpoint_part(host)
    if not part:
        return
    doc["destination"] = part
    if "domain" in part:
        doc.setdefault("url", {})["domain"] = part["domain"]


# --- request line and URL --------------------------------------------------------------------


def put_request(doc: dict[str, Any], request: str) -> bool:
    """`GET /p?q HTTP/1.1` → http.request.method, http.version, url.*; False when not a request line."""
    match = _REQUEST.fullmatch(request)
    if not match:
        return False
    method, target, version = match.groups()
    http = doc.setdefault("http", {})
    http.setdefault("request", {})["method"] = method
    if version:
        http["version"] = version
    if target:
        put_url(doc, target, connect=method.upper() == "CONNECT")
    return True


def put_request_line(doc: dict[str, Any], vendor: dict[str, Any], logged: str) -> None:
    """A quoted `%r` / `$request` as logged → put_request; what is no request line (a scanner's TLS
    hello, garbage) goes to vendor["request_line"] unchanged, because it is evidence."""
    request = unescape(logged)
    if request not in ("", "-") and not put_request(doc, request):
        vendor["request_line"] = request


def put_url(doc: dict[str, Any], original: str, connect: bool = False) -> None:
    """url.original as logged; url.path and url.query percent-decoded, as Elastic's uri_parts does."""
    url = doc.setdefault("url", {})
    url["original"] = original
    if connect:  # CONNECT host:port carries an authority, not a path
        part = endpoint_part(original)
        if part:
            if "domain" in part or "ip" in part:
                url["domain"] = part.get("domain") or part["ip"]
            if "port" in part:
                url["port"] = part["port"]
        return
    match = _URL.fullmatch(original)
    assert match is not None  # every group is optional
    if match["scheme"]:
        url["scheme"] = match["scheme"].lower()
    if match["host"]:
        url["domain"] = match["host"].strip("[]")
    if match["port"]:
        url["port"] = int(match["port"])
    path = match["path"]
    if path:
        path = unquote(path)
        url["path"] = path
        name = path.rpartition("/")[2]
        ext = name.rpartition(".")[2] if "." in name else ""
        if ext:
            url["extension"] = ext
    if match["query"]:
        url["query"] = unquote(match["query"])
    if match["fragment"]:
        url["fragment"] = match["fragment"]


# --- multi-line error logs -------------------------------------------------------------------

MAX_EVENT_BYTES = 256 * 1024


def joined_records(
    stream: BinaryIO, starts: re.Pattern[bytes], limit: int = MAX_EVENT_BYTES
) -> Iterator[Record | BadRecord]:
    """Lines that do not start a new entry (stack traces, FastCGI stderr) join the previous one.

    An event stops growing at `limit` bytes: it is emitted as it is and its further continuation
    lines become dead letters (never dropped, memory stays bounded). Continuation lines at the very
    start of a stream form their own record, which then fails mapping with a clear reason.
    """
    start = -1
    parts: list[bytes] = []
    size = 0
    overflowing = False
    for offset, line in iter_lines(stream):
        if (parts or overflowing) and not starts.match(line):
            if parts and size + 1 + len(line) <= limit:
                parts.append(line)
                size += 1 + len(line)
                continue
            if parts:
                yield start, b"\n".join(parts).decode("utf-8", errors="replace")
                parts, overflowing = [], True
            yield BadRecord(offset, f"continuation line beyond the {limit}-byte event limit", line)
            continue
        if parts:
            yield start, b"\n".join(parts).decode("utf-8", errors="replace")
        start, parts, size, overflowing = offset, [line], len(line), False
    if parts:
        yield start, b"\n".join(parts).decode("utf-8", errors="replace")


class JoinedEntryFormat:
    """Base for the error logs: an entry starts with a timestamp (`start`, on bytes) and lines that do
    not start one continue it (joined_records); `entry` matches a whole entry and is what sniffs."""

    entry: re.Pattern[str]
    start: re.Pattern[bytes]

    def sniff(self, head: bytes) -> bool:
        line = first_line(head)
        return line is not None and self.entry.match(line) is not None

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return joined_records(stream, self.start)


def error_doc(timestamp: str, level: str, message: str, options: ParseOptions) -> dict[str, Any]:
    """What every nginx and Apache error entry maps to; event.timezone records the zone the
    zone-less time was read in, so a wrong ParseOptions.syslog_timezone can be found and fixed."""
    return {
        "@timestamp": timestamp,
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["error"] if level in ("emerg", "alert", "crit", "error", "warn") else ["info"],
            "timezone": options.syslog_timezone,
        },
        "log": {"level": level},
        "message": message,
    }


# --- the access line as a whole --------------------------------------------------------------


def access_line(line: str) -> re.Match[str] | None:
    """The ACCESS_LINE match of a line whose address prefix split_prefix accepts: what both access
    sniffers require before their own checks (a syslog-wrapped access line is not claimed)."""
    match = ACCESS_LINE.fullmatch(line)
    if match is None:
        return None
    try:
        split_prefix(match["pre"])
    except RecordError:
        return None
    return match


def access_doc(match: re.Match[str], vendor: str, options: ParseOptions, trailing_xff: bool) -> dict[str, Any]:
    """Map one matched ACCESS_LINE; `trailing_xff`: a bare quoted field after the user agent is
    X-Forwarded-For (nginx's default `main` format); otherwise only `X-Forwarded-For="…"` is."""
    host, chain = split_prefix(match["pre"])
    xff = None
    rest = match["rest"].lstrip()
    if rest:
        if rest.startswith("X-Forwarded-For="):
            xff = xff_hops(rest[16:].split('"')[1]) if rest.count('"') >= 2 else None
        elif trailing_xff and rest.startswith('"'):
            end = rest.find('"', 1)
            xff = xff_hops(rest[1:end]) if end > 0 else None
    if xff and len(chain) == 1:
        chain = xff + chain
    status = None if match["status"] == "-" else int(match["status"])
    doc: dict[str, Any] = {"@timestamp": access_timestamp(match["time"])}
    event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
    if status is not None:
        event["outcome"] = outcome(status)
    doc["event"] = event
    put_clients(doc, chain, options)
    if host:
        put_destination(doc, host)
    access: dict[str, Any] = {}
    put_request_line(doc, access, match["request"])
    http = doc.setdefault("http", {})
    response: dict[str, Any] = {}
    if status is not None:
        response["status_code"] = status
    if match["bytes"] != "-":
        response["body"] = {"bytes": int(match["bytes"])}
    if response:
        http["response"] = response
    referrer = none_if_dash(match["referrer"])
    if referrer:
        http.setdefault("request", {})["referrer"] = unescape(referrer)
    agent = none_if_dash(match["agent"])
    if agent:
        doc["user_agent"] = {"original": unescape(agent)}
    user = none_if_dash(match["auth"])
    if user:
        doc["user"] = {"name": unescape(user)}
    ident = none_if_dash(match["ident"])
    if ident:
        access["identity"] = ident
    access["remote_ip_list" if vendor == "nginx" else "remote_addresses"] = chain
    if match["rtime"]:  # nginx logs seconds (Elastic stores ms); Apache %D/%T are whole numbers
        rtime = float(match["rtime"])
        access["response_time"] = round(rtime * 1000) if vendor == "nginx" else int(rtime)
    doc[vendor] = {"access": access}
    return doc
