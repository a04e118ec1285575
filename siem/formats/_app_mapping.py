"""App field mappings: how a team maps its own JSON (or regex-matched) log lines onto ECS, by config.

An application log has no fixed layout, so the config names, per route, where the time, the client
IP, the user, the request and the correlation ids are. Everything is checked when the config is
loaded (a JSON path with an empty segment or a time format that cannot round-trip is a start-up
error naming the key); at run time a record whose mapped value is absent or malformed is indexed
without that field, the miss listed in ``siem.unmapped`` (and counted by the pipeline), its value
left in ``app.fields`` so nothing is lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from siem.timeparse import resolve_timezone

FIELDS = (
    "time",
    "source_ip",
    "forwarded_for",
    "destination_ip",
    "user_name",
    "user_id",
    "method",
    "path",
    "status",
    "request_id",
    "trace_id",
    "outcome",
    "user_agent",
    "level",
    "message",
)
MATCH_KEYS = ("key", "namespace", "pod", "container", "labels", "tag")
TIME_FORMATS = ("iso8601", "epoch", "epoch_millis", "clf")
_SEGMENT = re.compile(r"[^.\[\]\s]+")


class MappingError(ValueError):
    """A config problem in ``apps:``; the message starts with the offending key."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    paths: tuple[tuple[str, ...], ...]  # JSON paths tried in order (a regex group is a 1-key path)
    optional: bool = False  # absent is normal (not counted); malformed still is
    time_format: str = "iso8601"
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class AppMapping:
    name: str
    fields: dict[str, FieldSpec]
    pattern: re.Pattern[str] | None = None  # format: regex; None for JSON
    detect: frozenset[str] = frozenset()  # built-ins: top-level keys that identify the format


@dataclass(frozen=True, slots=True)
class AppRoute:
    """``match`` (all given conditions hold) → ``mapping``; ``service`` names the app in service.name."""

    match: dict[str, Any]
    mapping: AppMapping
    service: str | None


# --- compiling the config ---------------------------------------------------------------------


def parse_path(text: Any, where: str) -> tuple[str, ...]:
    """`a.b`, `$.a.b`, `a["x.y"].c`, `a[0]` → path segments; anything else is a MappingError."""
    if not isinstance(text, str) or not text.strip():
        raise MappingError(f"{where}: expected a JSON path such as 'request.remote_ip', got {text!r}")
    rest = text[2:] if text.startswith("$.") else text
    segments: list[str] = []
    i = 0
    while i < len(rest):
        if rest.startswith('["', i):
            end = rest.find('"]', i + 2)
            if end < 0 or end == i + 2:
                raise MappingError(f'{where}: invalid JSON path {text!r}: unclosed or empty ["..."]')
            segments.append(rest[i + 2 : end])
            i = end + 2
        elif rest[i] == "[":
            end = rest.find("]", i)
            if end < 0 or not rest[i + 1 : end].isdigit():
                raise MappingError(f"{where}: invalid JSON path {text!r}: an index must be [<number>]")
            segments.append(rest[i + 1 : end])
            i = end + 1
        else:
            match = _SEGMENT.match(rest, i)
            if match is None:
                raise MappingError(f"{where}: invalid JSON path {text!r}: empty segment at character {i + 1}")
            segments.append(match[0])
            i = match.end()
        if i < len(rest):
            if rest[i] == ".":
                i += 1
                if i == len(rest):
                    raise MappingError(f"{where}: invalid JSON path {text!r}: ends with '.'")
            elif rest[i] != "[":
                raise MappingError(f"{where}: invalid JSON path {text!r} at character {i + 1}")
    return tuple(segments)


def _check_time_format(fmt: Any, where: str) -> str:
    if not isinstance(fmt, str) or not fmt:
        raise MappingError(f"{where}: expected one of {', '.join(TIME_FORMATS)} or a strptime format")
    if fmt in TIME_FORMATS:
        return fmt
    if not all(d in fmt for d in ("%d", "%H", "%M")) or not any(d in fmt for d in ("%Y", "%y")):
        raise MappingError(f"{where}: time format {fmt!r} needs at least a year, %d, %H and %M")
    sample = datetime(2024, 3, 1, 19, 5, 6, 123456, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise MappingError(f"{where}: time format {fmt!r} cannot be parsed back: {exc}") from None
    return fmt


def _field(name: str, spec: Any, where: str, pattern: re.Pattern[str] | None) -> FieldSpec:
    if not isinstance(spec, dict):
        spec = {"path": spec}
    allowed = {"path", "optional"} | ({"format", "timezone"} if name == "time" else set())
    unknown = set(spec) - allowed
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    raw_paths = spec.get("path")
    listed = raw_paths if isinstance(raw_paths, list) and raw_paths else [raw_paths]
    if pattern is not None:
        for group in listed:
            if not isinstance(group, str) or group not in pattern.groupindex:
                raise MappingError(f"{where}: {group!r} is not a named group of the pattern")
        paths = tuple((group,) for group in listed)
    else:
        paths = tuple(parse_path(p, where) for p in listed)
    optional = spec.get("optional", False)
    if not isinstance(optional, bool):
        raise MappingError(f"{where}.optional: expected true or false")
    fmt = _check_time_format(spec.get("format", "iso8601"), f"{where}.format") if name == "time" else "iso8601"
    tz = spec.get("timezone", "UTC")
    try:
        resolve_timezone(str(tz))
    except ValueError as exc:
        raise MappingError(f"{where}.timezone: {exc}") from None
    return FieldSpec(paths, optional, fmt, str(tz))


def compile_mapping(raw: Any, where: str, name: str) -> AppMapping:
    """``{format: json|regex, pattern, fields: {...}, detect: [...]}`` → AppMapping."""
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a mapping")
    unknown = set(raw) - {"format", "pattern", "fields", "detect"}
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: detect, fields, format, pattern")
    kind = raw.get("format", "json")
    pattern = None
    if kind == "regex":
        try:
            pattern = re.compile(str(raw.get("pattern") or ""))
        except re.error as exc:
            raise MappingError(f"{where}.pattern: invalid regular expression: {exc}") from None
        if not pattern.groupindex:
            raise MappingError(f"{where}.pattern: needs named groups (?P<name>...) for the fields to refer to")
    elif kind != "json":
        raise MappingError(f"{where}.format: expected json or regex, got {kind!r}")
    given = raw.get("fields") or {}
    if not isinstance(given, dict):
        raise MappingError(f"{where}.fields: expected a mapping of field → JSON path")
    fields = {}
    for key, spec in given.items():
        if key not in FIELDS:
            raise MappingError(f"{where}.fields.{key}: unknown field; allowed: {', '.join(FIELDS)}")
        fields[key] = _field(key, spec, f"{where}.fields.{key}", pattern)
    detect = raw.get("detect") or []
    return AppMapping(name, fields, pattern, frozenset(detect))


def compile_apps(raw: Any, builtins: dict[str, AppMapping]) -> tuple[AppRoute, ...]:
    """The ``apps:`` config section; every error names ``apps[i].<key>``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MappingError("apps: expected a list of {match, use | fields} mappings")
    routes = []
    for i, item in enumerate(raw):
        where = f"apps[{i}]"
        if not isinstance(item, dict):
            raise MappingError(f"{where}: expected a mapping with match and use or fields")
        unknown = set(item) - {"name", "match", "use", "format", "pattern", "fields"}
        if unknown:
            allowed = "fields, format, match, name, pattern, use"
            raise MappingError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {allowed}")
        match = _compile_match(item.get("match"), f"{where}.match")
        own = {k: item[k] for k in ("format", "pattern", "fields") if k in item}
        use = item.get("use")
        if use is not None:
            if use not in builtins:
                raise MappingError(f"{where}.use: unknown built-in mapping {use!r}; known: {', '.join(builtins)}")
            base = builtins[use]
            mapping = compile_mapping(own, where, use) if own else base
            if own and mapping.pattern is None and base.pattern is None:
                mapping = AppMapping(use, {**base.fields, **mapping.fields})
        elif own:
            mapping = compile_mapping(own, where, str(item.get("name") or where))
        else:
            raise MappingError(f"{where}: give use: <built-in> or fields:")
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise MappingError(f"{where}.name: expected a string")
        routes.append(AppRoute(match, mapping, name))
    return tuple(routes)


def _compile_match(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{where}: expected at least one of {', '.join(MATCH_KEYS)}")
    for key, value in raw.items():
        if key not in MATCH_KEYS:
            raise MappingError(f"{where}.{key}: unknown condition; allowed: {', '.join(MATCH_KEYS)}")
        if key == "labels":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise MappingError(f"{where}.labels: expected a mapping of label → value")
        elif not isinstance(value, str) or not value:
            raise MappingError(f"{where}.{key}: expected a non-empty string (a glob: * and ? allowed)")
    return dict(raw)


def route_for(routes: tuple[AppRoute, ...], context: dict[str, Any]) -> AppRoute | None:
    """The first route whose every condition holds for this record's key, pod and tag."""
    for route in routes:
        if all(_holds(key, want, context.get(key)) for key, want in route.match.items()):
            return route
    return None


def _holds(key: str, want: Any, have: Any) -> bool:
    if key == "labels":
        return isinstance(have, dict) and all(have.get(k) == v for k, v in want.items())
    return isinstance(have, str) and fnmatchcase(have, want)
