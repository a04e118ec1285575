"""nginx access logs: the `combined` and default `main` formats and their usual variants.

Variants: a virtual-host prefix (`$host` or `$host:$server_port`), an address list instead of
`$remote_addr` (`$proxy_add_x_forwarded_for`, or `"$http_x_forwarded_for" $remote_addr`), a
`$request_time` after the byte count and `main`'s trailing `"$http_x_forwarded_for"`. The real
client behind proxies is found with ParseOptions.trusted_proxies (see _http_common.client_index).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem import fast
from siem.fast import http_access as fast_http_access
from siem.formats._http_common import ACCESS_LINE, access_doc, access_line, first_line
from siem.formats.base import BadRecord, LineFormat, ParseOptions, Record, RecordError
from siem.normalize import ObjectContext


class NginxAccessLogType(LineFormat):
    dataset = "nginx.access"
    description = "nginx access log (combined/main, vhost prefix, X-Forwarded-For lists)"
    # /var/log/nginx/access.log, access.log.1, access.log.2.gz, site.access.log-20240101.gz
    key_pattern = re.compile(r"(?:^|/)nginx/[^/]*access[^/]*$")

    def sniff(self, head: bytes) -> bool:
        line = first_line(head)
        return line is not None and access_line(line) is not None

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        match = ACCESS_LINE.fullmatch(raw)
        if match is None:
            raise RecordError("not an nginx access log line (combined/main layout)")
        return access_doc(match, "nginx", options, trailing_xff=True)

    def batch_mapper(self, stream: BinaryIO, options: ParseOptions, ctx: ObjectContext) -> Iterator[Record | BadRecord]:
        """Records with the plain combined-format lines already mapped by the fast path
        (siem/fast/http_access.py); the pipeline maps the rest with to_ecs, so every document and
        dead letter is this module's."""
        if not fast.enabled():
            return self.records(stream, options)
        return fast_http_access.map_stream(stream, options, ctx, self.dataset)


LOG_TYPE = NginxAccessLogType()
