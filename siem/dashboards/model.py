"""The vocabulary of the dashboards spec: index patterns, filters, aggregations, panels, dashboards.

Small frozen dataclasses instead of raw saved-object JSON so that a panel is one readable line
("WAF blocks: table of rule x client IP, where aws.waf.action is BLOCK") and every field a panel
touches is a plain attribute the tests can collect and check against the index templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# Index-pattern saved-object ids (stable: `install` overwrites them in place).
EVENTS = "siem-events"
ALERTS = "siem-alerts"
DEADLETTER = "siem-deadletter"


@dataclass(frozen=True)
class IndexPattern:
    id: str
    title: str  # with the default prefix "siem"; `install` rewrites it for another prefix
    time_field: str
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> Dashboards field format


@dataclass(frozen=True)
class Filter:
    """A filter pill. ``kind`` is Dashboards' filter type: phrase, phrases, exists, range or custom."""

    kind: str
    field: str
    value: Any = None
    negate: bool = False
    alias: str | None = None
    query: dict[str, Any] | None = None  # custom filters only: the Query DSL itself


def is_(name: str, value: Any) -> Filter:
    return Filter("phrase", name, value)


def one_of(name: str, *values: Any) -> Filter:
    return Filter("phrases", name, tuple(values))


def exists(name: str) -> Filter:
    return Filter("exists", name)


def between(name: str, gte: Any, lt: Any) -> Filter:
    return Filter("range", name, {"gte": gte, "lt": lt})


def starts_with(name: str, prefix: str, alias: str) -> Filter:
    return Filter("custom", name, prefix, alias=alias, query={"prefix": {name: prefix}})


def any_case(name: str, value: str, alias: str) -> Filter:
    """Case-insensitive equality: SIEM users type names in any case (`alice` finds `Alice`)."""
    return Filter(
        "custom", name, value, alias=alias, query={"term": {name: {"value": value, "case_insensitive": True}}}
    )


def not_(f: Filter) -> Filter:
    return replace(f, negate=not f.negate)


@dataclass(frozen=True)
class Agg:
    """One Dashboards aggregation: a bucket (date_histogram, terms, range, geohash_grid) or a metric."""

    type: str
    field: str | None = None
    size: int = 10
    ranges: tuple[tuple[int, int, str], ...] = ()
    label: str | None = None


COUNT = Agg("count")


def over_time() -> Agg:
    return Agg("date_histogram", "@timestamp")


def top(name: str, size: int = 10, label: str | None = None) -> Agg:
    return Agg("terms", name, size=size, label=label)


def ranges(name: str, *bounds: tuple[int, int, str], label: str | None = None) -> Agg:
    return Agg("range", name, ranges=tuple(bounds), label=label)


def grid(name: str) -> Agg:
    return Agg("geohash_grid", name)


def total(name: str, label: str) -> Agg:
    return Agg("sum", name, label=label)


def distinct(name: str, label: str) -> Agg:
    return Agg("cardinality", name, label=label)


CHARTS = ("bars", "pie", "table", "metric", "tagcloud", "map")


@dataclass(frozen=True)
class Vis:
    """A visualization: ``chart`` is one of CHARTS; buckets nest in order (time first for charts)."""

    id: str
    title: str
    chart: str
    buckets: tuple[Agg, ...] = ()
    metric: Agg = COUNT
    filters: tuple[Filter, ...] = ()
    pattern: str = EVENTS
    description: str = ""

    def __post_init__(self) -> None:
        if self.chart not in CHARTS:
            raise ValueError(f"{self.id}: unknown chart {self.chart!r}")


@dataclass(frozen=True)
class Search:
    """A saved search (Discover): columns, filters, newest first."""

    id: str
    title: str
    columns: tuple[str, ...]
    filters: tuple[Filter, ...] = ()
    pattern: str = EVENTS
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    id: str
    title: str
    description: str
    panels: tuple[str, ...]  # Vis or Search ids, laid out left to right, top to bottom
    time_from: str = "now-7d"
