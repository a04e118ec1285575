"""Decoding OpenSearch's answers with orjson, exactly as the standard library would.

A detection cycle reads megabytes of hits and aggregations; ``json.loads`` spends most of the
client's time there. orjson decodes the same text faster but reads an integer beyond 64 bits as a
float (``18446744073709551616`` → ``1.8446744073709552e19``) where ``json`` keeps it whole, and
refuses ``NaN``/``Infinity``. An answer holding a run of 19 or more digits anywhere (possibly such an
integer) or that orjson refuses is decoded by ``json`` instead, so every answer decodes to the very
objects ``json.loads`` returns.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from opensearchpy.serializer import JSONSerializer

_LONG_DIGITS = re.compile(r"[0-9]{19}")


def loads_exactly(text: str) -> Any:
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return JSONSerializer().loads(text)


class ExactSerializer(JSONSerializer):
    """opensearch-py's serializer (requests are encoded as before) with answers decoded by
    ``loads_exactly``."""

    def loads(self, s: str) -> Any:
        return loads_exactly(s)
