"""Apache HTTP Server access logs: common, combined, vhost_combined (`%v %h …` and `%v:%p %h …`),
a trailing `X-Forwarded-For="%{X-Forwarded-For}i"`, and mod_ssl's ssl_request_log.

The real client behind proxies is found with ParseOptions.trusted_proxies (see
_http_common.client_index).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.fast import http_access as fast_http_access
from siem.formats._http_common import (
    ACCESS_LINE,
    QUOTED,
    access_doc,
    access_line,
    access_timestamp,
    first_line,
    none_if_dash,
    put_clients,
    put_request_line,
)
from siem.formats.base import BadRecord, LineFormat, ParseOptions, Record, RecordError
from siem.normalize import ObjectContext

# mod_ssl's default SSLRequestLog: `[%t] %h %{SSL_PROTOCOL}x %{SSL_CIPHER}x "%r" %b`
_SSL_REQUEST = re.compile(
    r"\[(?P<time>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] (?P<client>\S+) (?P<protocol>\S+) "
    rf'(?P<cipher>\S+) "(?P<request>{QUOTED})" (?P<bytes>\d+|-)'
)


def _ssl_request(match: re.Match[str], options: ParseOptions) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": access_timestamp(match["time"]),
        "event": {"kind": "event", "category": ["web"], "type": ["access"]},
    }
    put_clients(doc, [match["client"]], options)
    access: dict[str, Any] = {"remote_addresses": [match["client"]]}
    put_request_line(doc, access, match["request"])
    if match["bytes"] != "-":
        doc.setdefault("http", {})["response"] = {"body": {"bytes": int(match["bytes"])}}
    ssl: dict[str, Any] = {}
    protocol, cipher = none_if_dash(match["protocol"]), none_if_dash(match["cipher"])
    if cipher:
        ssl["cipher"] = cipher
        doc["tls"] = {"cipher": cipher}
    if protocol:
        ssl["protocol"] = protocol
        name, sep, version = protocol.lower().partition("v")  # TLSv1.2 → tls 1.2, SSLv3 → ssl 3.0
        if sep and version:
            tls = doc.setdefault("tls", {})
            tls["version_protocol"] = name
            tls["version"] = version if "." in version else version + ".0"
    if ssl:
        access["ssl"] = ssl
    doc["apache"] = {"access": access}
    return doc


def _apache_prefix(pre: str) -> bool:
    """Apache's `%h` is one address (`%v %h` with a vhost): lists and quotes are nginx's."""
    return "," not in pre and '"' not in pre and len(pre.split()) <= 2


class ApacheAccessLogType(LineFormat):
    dataset = "apache.access"
    description = "Apache HTTP Server access log (common/combined/vhost_combined, ssl_request_log)"
    # /var/log/httpd/access_log, ssl_access_log, ssl_request_log, /var/log/apache2/access.log(.1)(.gz),
    # other_vhosts_access.log
    key_pattern = re.compile(r"(?:^|/)(?:httpd|apache2?)/[^/]*(?:access|request)[^/]*$")

    def sniff(self, head: bytes) -> bool:
        line = first_line(head)
        if line is None:
            return False
        if _SSL_REQUEST.fullmatch(line):
            return True
        match = access_line(line)
        # A bare quoted field after the user agent is nginx's default `main` format.
        return match is not None and _apache_prefix(match["pre"]) and not match["rest"].lstrip().startswith('"')

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        match = ACCESS_LINE.fullmatch(raw)
        if match is not None:
            return access_doc(match, "apache", options, trailing_xff=False)
        ssl = _SSL_REQUEST.fullmatch(raw)
        if ssl is not None:
            return _ssl_request(ssl, options)
        raise RecordError("not an Apache access log line (common/combined/vhost/ssl_request layout)")

    def batch_mapper(self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
        """Records with the plain combined-format lines already mapped by the fast path
        (siem/fast/http_access.py); the pipeline maps the rest with to_ecs, so every document and
        dead letter is this module's."""
        if not fast.enabled():
            return self.records(stream, options)
        return fast_http_access.map_stream(stream, options, ctx, self.dataset)


LOG_TYPE = ApacheAccessLogType()
