"""Where events go: OpenSearch when a URL is configured, otherwise the embedded DuckDB store.

Both implement the same Store interface, which is the seam the loader and the detection runner
share: write batches (returning rejects as dead letters), keep dead letters, search by time range,
dataset, IP and user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from siem.pipeline import DeadLetter, Event


@dataclass(frozen=True, slots=True)
class EventQuery:
    start: str | None = None  # ISO 8601, inclusive
    end: str | None = None  # ISO 8601, exclusive
    datasets: tuple[str, ...] = ()
    ip: str | None = None  # matches related.ip (any IP in the event)
    user: str | None = None  # matches related.user
    size: int = 100


class Store(Protocol):
    name: str
    batch_size: int  # events per write() that suits this store

    def write(self, events: list[Event]) -> list[DeadLetter]: ...

    def write_dead_letters(self, letters: list[DeadLetter]) -> None: ...

    def search(self, query: EventQuery) -> list[dict[str, Any]]:
        """Matching documents, oldest first, each with its ``_id``."""
        ...

    def count(self, query: EventQuery) -> int: ...

    def dead_letters(self, size: int = 100) -> list[dict[str, Any]]: ...

    def refresh(self) -> None:
        """Make everything written so far searchable (a no-op where writes are immediate)."""
        ...

    def close(self) -> None: ...


def open_store(settings: Any) -> Store:
    """The OpenSearch store if a URL is configured, else the embedded one under data_dir."""
    if settings.opensearch["url"]:
        from siem.sinks.opensearch import OpenSearchStore, make_client

        return OpenSearchStore(
            make_client(settings),
            prefix=settings.opensearch["index_prefix"],
            max_retries=settings.opensearch["max_retries"],
            batch_size=settings.opensearch["bulk_batch"],
            index_period=settings.opensearch["index_period"],
            monthly_families=settings.opensearch["monthly_families"],
        )
    from siem.sinks.embedded import EmbeddedStore

    return EmbeddedStore(
        settings.data_dir,
        memory_limit=settings.embedded["memory_limit"],
        detect_memory_limit=settings.embedded["detect_memory_limit"],
    )
