"""Timezone names from configuration, resolved once: IANA names or fixed offsets like +09:00."""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"^(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?$")


@cache
def resolve_timezone(name: str) -> tzinfo:
    """A tzinfo for 'UTC', 'Asia/Tokyo', '+09:00', '-0200' or 'GMT+2'; ValueError otherwise.

    'GMT+2' means two hours east, as in Elastic's event.timezone (Java), unlike POSIX 'Etc/GMT+2'.
    """
    name = name.strip()
    if name.upper() in {"", "UTC", "Z", "GMT"}:
        return UTC
    match = _OFFSET.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= timedelta(hours=24):
            raise ValueError(f"timezone offset {name!r} is out of range")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name such as Asia/Tokyo or an offset like +09:00)"
        ) from None
