"""nginx error log: `YYYY/MM/DD HH:MM:SS [level] pid#tid: *connection message, client: …, server: …,
request: "…", upstream: "…", host: "…", referrer: "…"`.

Continuation lines (FastCGI stderr, multi-line upstream messages) are joined to their entry. The
time has no zone: it is read in ParseOptions.syslog_timezone.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from siem.formats._http_common import (
    JoinedEntryFormat,
    endpoint,
    endpoint_part,
    error_doc,
    local_timestamp,
    put_request,
)
from siem.formats.base import ParseOptions, RecordError

_LEVELS = "debug|info|notice|warn|error|crit|alert|emerg"
_ENTRY = re.compile(
    rf"(?P<time>\d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>{_LEVELS})\] (?P<pid>\d+)#(?P<tid>\d+): "
    r"(?:\*(?P<cid>\d+) )?(?P<message>.*)",
    re.DOTALL,
)
_START = re.compile(rb"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
# What ngx_http_log_error (and the stream/mail equivalents) append, in their fixed order. The
# request URI cannot hold a space and only the referrer is free text (it is last); nginx escapes
# none of it, see _trailers.
_TRAILER = re.compile(
    r", client: (?P<client>[^,\s]+)"
    r"(?:, server: (?P<server>[^,\"]*))?"
    r'(?:, login: "(?P<login>[^"]*)")?'
    r'(?:, request: "(?P<request>[^\s"]+ \S*?(?: HTTP/\d(?:\.\d)?)?|[^"]*)")?'
    r'(?:, subrequest: "(?P<subrequest>[^"]*)")?'
    r'(?:, upstream: "(?P<upstream>[^"]*)")?'
    r"(?:, bytes from/to client:\S+, bytes from/to upstream:\S+)?"
    r'(?:, host: "(?P<host>[^"]*)")?'
    r'(?:, referrer: "(?P<referrer>.*)")?',
    re.DOTALL,
)


_MAX_CANDIDATES = 16  # bounds the work a line stuffed with `, client: ` can cause


@lru_cache(maxsize=4096)
def _timestamp(value: str, tz_name: str) -> str:
    try:
        local = datetime(
            int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]), int(value[14:16]), int(value[17:19])
        )
    except ValueError as exc:
        raise RecordError(f"bad timestamp {value!r}: {exc}") from None
    return local_timestamp(local, tz_name)


def _trailers(message: str) -> list[re.Match[str]]:
    """Every `, client: ` whose remainder is a well-formed trailer (see _TRAILER).

    nginx does not escape what it copies into the message (a decoded file path, the Referer), so a
    crafted request can plant a second trailer before or inside the real one. Benign lines have
    exactly one; more than one is ambiguous and the caller trusts none of them.
    """
    found = []
    pos = message.find(", client: ")
    for _ in range(_MAX_CANDIDATES):
        if pos < 0:
            break
        match = _TRAILER.fullmatch(message, pos)
        if match:
            found.append(match)
        pos = message.find(", client: ", pos + 1)
    return found


def _put_trailer(doc: dict[str, Any], match: re.Match[str]) -> None:
    source = endpoint_part(match["client"])
    if source:
        doc["source"] = source
    error: dict[str, Any] = doc["nginx"]["error"]
    if match["server"]:
        error["server"] = match["server"]
    if match["login"]:
        doc["user"] = {"name": match["login"]}
    if match["request"] and not put_request(doc, match["request"]):
        error["request_line"] = match["request"]
    if match["subrequest"]:
        error["subrequest"] = match["subrequest"]
    if match["upstream"]:
        error["upstream"] = match["upstream"]
    if match["host"]:
        host = endpoint_part(match["host"])
        if host and ("domain" in host or "ip" in host):
            url = doc.setdefault("url", {})
            url.setdefault("domain", host.get("domain") or host["ip"])
            if "port" in host:
                url.setdefault("port", host["port"])
    if match["referrer"]:
        doc.setdefault("http", {}).setdefault("request", {})["referrer"] = match["referrer"]


class NginxErrorLogType(JoinedEntryFormat):
    dataset = "nginx.error"
    description = "nginx error log (multi-line entries joined)"
    # /var/log/nginx/error.log, error.log.1, error.log.2.gz, site.error.log
    key_pattern = re.compile(r"(?:^|/)nginx/[^/]*error[^/]*$")
    entry = _ENTRY
    start = _START

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        match = _ENTRY.fullmatch(raw)
        if match is None:
            raise RecordError("not an nginx error log entry (YYYY/MM/DD HH:MM:SS [level] pid#tid: …)")
        message = match["message"]
        error: dict[str, Any] = {}
        if match["cid"]:
            error["connection_id"] = int(match["cid"])
        doc = error_doc(_timestamp(match["time"], options.syslog_timezone), match["level"], message, options)
        doc["process"] = {"pid": int(match["pid"]), "thread": {"id": int(match["tid"])}}
        doc["nginx"] = {"error": error}
        trailers = _trailers(message)
        if len(trailers) == 1:
            _put_trailer(doc, trailers[0])
        elif trailers:
            candidates = [t["client"] for t in trailers]
            error["client_candidates"] = candidates
            ips = [ip for ip in dict.fromkeys(endpoint(c)[0] for c in candidates) if ip]
            if ips:
                doc["related"] = {"ip": ips}
        if not error:
            del doc["nginx"]
        return doc


LOG_TYPE = NginxErrorLogType()
