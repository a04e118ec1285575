"""Generic Linux/macOS syslog files (/var/log/messages, /var/log/syslog): header fields only.

Authentication content (sshd, sudo, su, PAM, useradd) has its own type, linux.auth, which reads
the same headers and also maps the message; this one keeps the message as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from siem.formats._syslog_common import header_fields, parse_header, sniff_headers, syslog_records
from siem.formats.base import BadRecord, ParseOptions, Record, Skipped


class SyslogLogType:
    dataset = "linux.syslog"
    description = "Linux/macOS syslog (RFC 3164, RFC 5424, rsyslog ISO 8601 timestamps; indented lines continue)"
    # /var/log/messages, /var/log/syslog and their rotations (.1, .2.gz, -20240101, -20240101.gz).
    key_pattern = re.compile(r"(?:^|/)(?:messages|syslog)(?:\.\d+|-\d{8})?(?:\.gz)?$")

    def sniff(self, head: bytes) -> bool:
        return sniff_headers(head) is not None

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return syslog_records(stream)

    def to_ecs(self, raw: str, options: ParseOptions) -> dict[str, Any]:
        doc = header_fields(parse_header(raw, options))
        doc["event"] = {"kind": "event"}
        return doc


LOG_TYPE = SyslogLogType()
