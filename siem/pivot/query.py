"""What a pivot asks, in store-neutral terms, and which store module answers it.

The entity is an IP (or CIDR network), a user name (matched case-insensitively, as analysts type
names however they remember them) or a trace / request id. Its *roles* are the fields that say how
the entity took part in an event (the source of a flow, the answer of a DNS query, the actor of an
API call); ``related.*`` finds the events, the roles explain them. Both stores answer the same
questions from these definitions, so a pivot gives the same rows on either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, Literal

from siem.sinks import EventQuery

Kind = Literal["ip", "user", "trace"]

# role -> field; a role is shown for a dataset when at least one of its events has the entity there
ROLES: dict[Kind, tuple[tuple[str, str], ...]] = {
    "ip": (
        ("source", "source.ip"),
        ("destination", "destination.ip"),
        ("client", "client.ip"),
        ("DNS answer", "dns.resolved_ip"),
    ),
    "user": (("actor", "user.name"), ("target user", "user.target.name")),
    "trace": (("trace", "trace.id"), ("request", "http.request.id")),
}
# the fields that find the events at all (every IP / user of an event is in related.*)
MATCH_FIELDS: dict[Kind, tuple[str, ...]] = {
    "ip": ("related.ip",),
    "user": ("related.user",),
    "trace": ("trace.id", "http.request.id"),
}
MAX_DATASETS = 200  # per-dataset header rows; there are ~20 log types
EXPAND_SIZE = 50  # co-occurring users / IPs listed by --expand
ALERTS_SIZE = 200
BINS = 48  # bars of the --html chart


@dataclass(frozen=True, slots=True)
class Bins:
    """Equal time bins covering first..last seen: bin i is [start + i*width, start + (i+1)*width) ms."""

    start_ms: int
    width_ms: int
    count: int = BINS

    @classmethod
    def spanning(cls, first: str, last: str) -> Bins:
        low, high = epoch_ms(first), epoch_ms(last)
        return cls(low, max(1, -(-(high - low + 1) // BINS)))


def epoch_ms(iso: str) -> int:
    parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Entity:
    kind: Kind
    value: str  # canonical IP or CIDR, the user name as typed, or the id
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # for kind "ip"

    @property
    def is_cidr(self) -> bool:
        return self.network is not None and self.network.num_addresses > 1

    def label(self) -> str:
        return {"ip": "IP", "user": "user", "trace": "trace id"}[self.kind] + f" {self.value}"


def ip_entity(text: str) -> Entity:
    """An IP or a CIDR network (host bits must be zero), canonicalised. ValueError names the problem."""
    text = text.strip()
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or CIDR network ({exc})") from None
        if network.num_addresses == 1:
            return Entity("ip", str(network.network_address), network)
        return Entity("ip", str(network), network)
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR network") from None
    return Entity("ip", str(address), ipaddress.ip_network(address))


@dataclass(frozen=True, slots=True)
class PivotQuery:
    entity: Entity
    start: str | None = None
    end: str | None = None
    datasets: tuple[str, ...] = ()
    newest: bool = False  # newest first instead of oldest first
    page: int = 1  # 1-based
    limit: int = 200  # rows per page

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def window(self) -> EventQuery:
        """The time and dataset part, in the shape the stores already understand."""
        return EventQuery(start=self.start, end=self.end, datasets=self.datasets)


@dataclass(slots=True)
class DatasetStats:
    dataset: str
    count: int
    first: str | None
    last: str | None
    roles: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PivotResult:
    query: PivotQuery
    store: str
    total: int
    datasets: list[DatasetStats]
    rows: list[dict[str, Any]]  # the page of documents, each with its _id
    expand: dict[str, list[tuple[str, int]]] | None = None  # "users" / "ips" -> [(value, count)]
    alerts: list[dict[str, Any]] | None = None
    bins: Bins | None = None
    histogram: list[dict[str, int]] | None = None  # per bin: dataset -> events (every match, not the page)


def backend(store: Any) -> ModuleType:
    """The store-side half of the pivot for this store."""
    if store.name == "opensearch":
        from siem.sinks import opensearch_pivot

        return opensearch_pivot
    from siem.sinks import embedded_pivot

    return embedded_pivot


def run_pivot(
    store: Any, query: PivotQuery, expand: bool = False, alerts: bool = False, histogram: bool = False
) -> PivotResult:
    """Everything one pivot shows: totals and per-dataset stats, one page of rows, and optionally the
    co-occurring entities, the alerts that name the entity and the events over time."""
    side = backend(store)
    stats = side.dataset_stats(store, query)
    total = sum(s.count for s in stats)
    rows = side.timeline(store, query) if total and query.limit else []
    bins = None
    if histogram and total:
        bins = Bins.spanning(min(s.first for s in stats if s.first), max(s.last for s in stats if s.last))
    return PivotResult(
        query=query,
        store=store.name,
        total=total,
        datasets=stats,
        rows=rows,
        expand=side.expand(store, query) if expand else None,
        alerts=side.alerts(store, query) if alerts else None,
        bins=bins,
        histogram=side.histogram(store, query, bins) if bins else None,
    )


def expand_kinds(kind: Kind) -> tuple[str, ...]:
    """Which co-occurring entities --expand lists: an IP leads to users, a user to IPs, a trace to both."""
    return {"ip": ("users",), "user": ("ips",), "trace": ("users", "ips")}[kind]


def is_self(entity: Entity, kind: str, value: str) -> bool:
    """The entity itself is not a co-occurrence of itself."""
    if kind == "users" and entity.kind == "user":
        return value.lower() == entity.value.lower()
    if kind == "ips" and entity.network is not None:
        try:
            return ipaddress.ip_address(value) in entity.network
        except ValueError:
            return False
    return False
