"""Apache HTTP Server error log, 2.2 (`[time] [level] [client ip] msg`) and 2.4's default
ErrorLogFormat (`[time] [module:level] [pid N:tid M] file(line): (errno)text: [client ip:port] msg`).

Continuation lines (anything not starting with a `[Day Mon` timestamp) are joined to their entry.
The time has no zone: it is read in ParseOptions.syslog_timezone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from siem.formats._http_common import (
    JoinedEntryFormat,
    endpoint,
    endpoint_part,
    error_doc,
    local_timestamp,
    month_number,
)
from siem.formats.base import ParseOptions, RecordError

_ENTRY = re.compile(
    r"\[(?P<wday>[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2}) (?P<day>[ \d]\d) "
    r"(?P<hms>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,6}))? (?P<year>\d{4})\] "
    r"\[(?:(?P<module>[^\]:\s]*):)?(?P<level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"
    r"(?: (?P<file>[^\s\[\]():]+)\((?P<line>\d+)\):)?"
    r"(?: \((?P<errno>-?\d+)\)(?P<errtext>[^:\n\[]*):)?"
    r"(?: \[client (?P<client>[^\]\s]+)\])?"
    r" ?(?P<message>.*)",
    re.DOTALL,
)
_START = re.compile(rb"\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
_NOT_FOUND = "File does not exist: "
_REFERER = ", referer: "


def _timestamp(match: re.Match[str], tz_name: str) -> str:
    hms = match["hms"]
    frac = match["frac"] or ""
    try:
        local = datetime(
            int(match["year"]),
            month_number(match["mon"]),
            int(match["day"]),
            int(hms[0:2]),
            int(hms[3:5]),
            int(hms[6:8]),
            int(frac.ljust(6, "0")) if frac else 0,
        )
    except ValueError as exc:
        raise RecordError(f"bad timestamp: {exc}") from None
    return local_timestamp(local, tz_name)


def _put_client(doc: dict[str, Any], client: str, with_port: bool) -> None:
    """2.4 always appends the port (`[client ::1:54321]`, so `2001:db8::1:8080` is ip+port); 2.2 never."""
    if with_port and endpoint(client)[1] is None:
        host, sep, port = client.rpartition(":")
        if sep and port.isdigit():
            part = endpoint_part(host.strip("[]"))
            if part:
                part["port"] = int(port)
                doc["source"] = part
                return
    part = endpoint_part(client)
    if part:
        doc["source"] = part


class ApacheErrorLogType(JoinedEntryFormat):
    dataset = "apache.error"
    description = "Apache HTTP Server error log (2.2 and 2.4 formats, multi-line entries joined)"
    # /var/log/httpd/error_log, ssl_error_log, /var/log/apache2/error.log(.1)(.gz)
    key_pattern = re.compile(r"(?:^|/)(?:httpd|apache2?)/[^/]*error[^/]*$")
    entry = _ENTRY
    start = _START

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        match = _ENTRY.fullmatch(raw)
        if match is None:
            raise RecordError("not an Apache error log entry ([Day Mon DD HH:MM:SS YYYY] [level] …)")
        message = match["message"]
        doc = error_doc(_timestamp(match, options.syslog_timezone), match["level"], message, options)
        module = match["module"]
        if module:
            doc["apache"] = {"error": {"module": module}}
        if match["pid"]:
            process: dict[str, Any] = {"pid": int(match["pid"])}
            if match["tid"]:
                process["thread"] = {"id": int(match["tid"])}
            doc["process"] = process
        if match["file"]:
            doc["log"]["origin"] = {"file": {"name": match["file"], "line": int(match["line"])}}
        if match["errno"]:
            doc["error"] = {"code": match["errno"], "message": match["errtext"].strip()}
        if match["client"]:
            _put_client(doc, match["client"], with_port=module is not None or match["pid"] is not None)
        referer_at = message.find(_REFERER)
        if referer_at >= 0:
            referrer = message[referer_at + len(_REFERER) :].strip()
            if referrer:
                doc["http"] = {"request": {"referrer": referrer}}
        at = message.find(_NOT_FOUND)
        if at >= 0:
            path = message[at + len(_NOT_FOUND) : referer_at if referer_at > at else None].strip()
            if path:
                doc["file"] = {"path": path}
        return doc


LOG_TYPE = ApacheErrorLogType()
