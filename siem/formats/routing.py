"""Choose the log type of an object: configured routes, then AWS key layouts, then content.

Routes come first so an operator can override a layout we guess wrong; content sniffing comes
last so ``siem parse FILE`` works on a file with no meaningful path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from siem import formats
from siem.formats.base import LogType, UnknownFormatError


@dataclass(frozen=True, slots=True)
class Route:
    """A configured route: keys matching ``pattern`` (a regex, searched) are ``dataset``."""

    pattern: re.Pattern[str]
    dataset: str


def compile_routes(raw_routes: list[dict[str, str]]) -> list[Route]:
    """Validate configured routes; errors name the route by position and key."""
    routes = []
    known = formats.registry()
    for i, item in enumerate(raw_routes):
        where = f"routes[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with 'match' and 'type'")
        unknown = set(item) - {"match", "type"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: match, type")
        pattern, dataset = item.get("match"), item.get("type")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{where}.match: a non-empty regular expression is required")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}.match: invalid regular expression {pattern!r}: {exc}") from None
        if dataset not in known:
            raise ValueError(f"{where}.type: unknown log type {dataset!r}; known: {', '.join(known)}")
        routes.append(Route(compiled, dataset))
    return routes


@cache
def _narrow_first() -> tuple[LogType, ...]:
    """Log types, those marked ``sniff_first`` first: they claim a narrower shape inside a broader type's
    key layout or content (kubernetes records in fluentd's out_file lines and S3 keys)."""
    return tuple(sorted(formats.registry().values(), key=lambda t: not getattr(t, "sniff_first", False)))


class Router:
    def __init__(self, routes: list[Route] | None = None) -> None:
        self._routes = routes or []

    def by_path(self, path: str) -> LogType | None:
        for route in self._routes:
            if route.pattern.search(path):
                return formats.get(route.dataset)
        for log_type in _narrow_first():
            if log_type.key_pattern is not None and log_type.key_pattern.search(path):
                return log_type
        return None

    def choose(self, path: str, head: bytes) -> LogType:
        """The log type for an object, or UnknownFormatError naming it."""
        by_path = self.by_path(path)
        if by_path is not None:
            return by_path
        for log_type in _narrow_first():
            try:
                if log_type.sniff(head):
                    return log_type
            except Exception:  # a sniffer must never break routing for the others
                continue
        preview = head[:80].decode("utf-8", errors="replace")
        raise UnknownFormatError(
            f"{path}: unknown log format (no route, key layout or content match); starts {preview!r}"
        )
