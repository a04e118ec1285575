"""The few values the stores index beside a document, kept apart from it so a document can travel
as the JSON bytes it was serialised to once (issue 9): an OpenSearch index name needs the event's
time, the embedded store's columns its addresses and users."""

from __future__ import annotations

from typing import Any, NamedTuple


class Columns(NamedTuple):
    """What the stores index beside the document: the OpenSearch index name's time, the embedded
    store's columns. A fast path gives them with its bytes, so no sink decodes a document to find them."""

    timestamp: Any
    source_ip: Any
    user_name: Any
    related_ip: Any
    related_user: Any
    ingested: Any


def columns_of(doc: dict[str, Any], ingested: str | None = None) -> Columns:
    """The columns of a document (the reference path's events, and the definition a fast path's
    columns are held to by the differential tests). A fast path whose event member is already
    serialised gives event.ingested, the same for every event of an object, as ``ingested``."""
    related = doc.get("related") or {}
    return Columns(
        doc.get("@timestamp"),
        (doc.get("source") or {}).get("ip"),
        (doc.get("user") or {}).get("name"),
        related.get("ip"),
        related.get("user"),
        ingested if ingested is not None else (doc.get("event") or {}).get("ingested"),
    )
