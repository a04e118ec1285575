"""One YAML file, validated at start-up, every setting overridable from the environment.

Environment names follow the YAML path: ``SIEM_<SECTION>_<KEY>`` (``SIEM_OPENSEARCH_URL``,
``SIEM_PARSE_TIMEZONE``) and ``SIEM_<KEY>`` for top-level keys (``SIEM_DATA_DIR``). Secrets are
accepted from the environment only (``SIEM_OPENSEARCH_PASSWORD``): a config file is reviewed in
git and copied around, so a secret in it is a leak waiting to happen. AWS credentials are never
configured here at all; boto3's default chain finds them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from siem import limits
from siem.formats.base import ParseOptions
from siem.formats.routing import Route, compile_routes


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


# section -> key -> (type, default). A type of list means a list of strings.
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "opensearch": {
        "url": (str, None),
        "index_prefix": (str, "siem"),
        "verify_certs": (bool, True),
        "ca_certs": (str, None),
        "username": (str, None),
        "aws_region": (str, None),
        "aws_service": (str, "es"),
        "bulk_batch": (int, 2000),
        "max_retries": (int, 5),
        "timeout": (int, 60),
        "index_period": (str, "year"),  # year | month: the period of every family's indices (index_layout.py)
        "monthly_families": (list, []),  # families that get monthly indices whatever index_period says
    },
    "s3": {"endpoint_url": (str, None)},
    "load": {"workers": (int, None)},  # parse processes of `siem load` / `siem worker` (None: the machine's cores)
    "embedded": {
        "memory_limit": (str, limits.EMBEDDED_MEMORY_LIMIT),
        "detect_memory_limit": (str, limits.DETECT_MEMORY_LIMIT),
    },  # DuckDB buffer pool (sinks/embedded.py)
    "dashboards": {"url": (str, None), "username": (str, None)},  # siem dashboards install|export
    "sqs": {"queue_url": (str, None), "wait_seconds": (int, 20), "endpoint_url": (str, None)},
    "parse": {
        "syslog_year": (int, None),
        "timezone": (str, "UTC"),
        "trusted_proxies": (list, []),
    },
    "detect": {
        "rules": (list, ["detections"]),  # rule files or folders
        "overlap_seconds": (int, 120),  # each scheduled window starts this long before the checkpoint
        "settle_seconds": (int, 30),  # and ends this long before now (events still being indexed)
        "lookback_seconds": (int, 86400),  # first run of a rule (no checkpoint): how far back it looks
        "max_event_ids": (int, 100),  # covered document ids kept on an alert
    },
    "enrich": {  # siem/enrich/geoip.py: MaxMind-format databases (none bundled: licence)
        "geoip_city": (str, None),  # GeoIP2/GeoLite2 City or Country .mmdb -> source/destination.geo.*
        "geoip_asn": (str, None),  # GeoLite2 ASN .mmdb -> source/destination.as.*
        "geoip_cache": (int, 65536),  # IPs whose lookup is kept (LRU)
    },
}
TOP_LEVEL: dict[str, tuple[type, Any]] = {"data_dir": (str, "./siem-data")}
# (section, key) -> (minimum, maximum or None): a value outside would silently discard data or crash later
# (max_retries -1 writes nothing, timeout 0 is a traceback, SQS refuses a long poll over 20 seconds).
RANGES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("opensearch", "bulk_batch"): (1, None),
    ("opensearch", "max_retries"): (0, None),
    ("opensearch", "timeout"): (1, None),
    ("sqs", "wait_seconds"): (0, 20),
    ("load", "workers"): (1, None),
    ("parse", "syslog_year"): (1, 9999),
    ("detect", "overlap_seconds"): (0, None),
    ("detect", "settle_seconds"): (0, None),
    ("detect", "lookback_seconds"): (1, None),
    ("detect", "max_event_ids"): (0, None),
    ("enrich", "geoip_cache"): (1, None),
}
SECRETS = {
    ("opensearch", "password"): "SIEM_OPENSEARCH_PASSWORD",
    ("dashboards", "password"): "SIEM_DASHBOARDS_PASSWORD",
}


@dataclass(frozen=True)
class Settings:
    opensearch: dict[str, Any]
    s3: dict[str, Any]
    sqs: dict[str, Any]
    parse: dict[str, Any]
    data_dir: Path
    routes: list[Route] = field(default_factory=list)
    notifications: list[Any] = field(default_factory=list)  # siem.detect.notify.routes.NotifyRoute
    detect: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in SCHEMA["detect"].items()})
    dashboards: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in SCHEMA["dashboards"].items()})
    apps: tuple[Any, ...] = ()  # siem.formats._app_mapping.AppRoute: app field mappings (`apps:`)
    enrich: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in SCHEMA["enrich"].items()})
    embedded: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in SCHEMA["embedded"].items()})
    load: dict[str, Any] = field(default_factory=lambda: {k: d for k, (_, d) in SCHEMA["load"].items()})

    @cached_property
    def enricher(self) -> Any:
        """The load-time enricher (siem.enrich.geoip), opened once; None when none is configured or usable."""
        from siem.enrich.geoip import from_settings

        return from_settings(self.enrich)

    @property
    def opensearch_password(self) -> str | None:
        return os.environ.get("SIEM_OPENSEARCH_PASSWORD") or None

    def parse_options(self) -> ParseOptions:
        return ParseOptions(
            syslog_year=self.parse["syslog_year"],
            syslog_timezone=self.parse["timezone"],
            trusted_proxies=tuple(self.parse["trusted_proxies"]),
            extra={"apps": self.apps},
            enrich=self.enricher,
        )


def _coerce(value: Any, kind: type, where: str, from_env: bool) -> Any:
    if value is None:
        return None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_env and str(value).lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return str(value).lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_env and str(value).strip().lstrip("-").isdigit():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if kind is list:
        if from_env and isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read (optional) YAML, validate it, apply environment overrides."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("SIEM_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: invalid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: the top level must be a mapping")
        raw = loaded or {}

    allowed = set(SCHEMA) | set(TOP_LEVEL) | {"routes", "notifications", "apps"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; allowed top-level keys: {sorted(allowed)}")

    sections: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{section}: expected a mapping")
        for key in given:
            if (section, key) in SECRETS:
                raise ConfigError(
                    f"{section}.{key}: secrets are not read from config files; set {SECRETS[section, key]}"
                )
            if key not in keys:
                raise ConfigError(f"{section}.{key}: unknown key; allowed: {sorted(keys)}")
        values = {}
        for key, (kind, default) in keys.items():
            env_name = f"SIEM_{section}_{key}".upper()
            if env_name in env and env[env_name] != "":
                values[key] = _coerce(env[env_name], kind, env_name, from_env=True)
            else:
                values[key] = _coerce(given.get(key, default), kind, f"{section}.{key}", from_env=False)
            _check_range(section, key, values[key], env_name if env_name in env and env[env_name] != "" else None)
        sections[section] = values

    top: dict[str, Any] = {}
    for key, (kind, default) in TOP_LEVEL.items():
        env_name = f"SIEM_{key}".upper()
        if env.get(env_name):
            top[key] = _coerce(env[env_name], kind, env_name, from_env=True)
        else:
            top[key] = _coerce(raw.get(key, default), kind, key, from_env=False)

    for service in ("s3", "sqs"):
        if sections[service]["endpoint_url"] is None:
            specific = env.get(f"AWS_ENDPOINT_URL_{service.upper()}")
            sections[service]["endpoint_url"] = specific or env.get("AWS_ENDPOINT_URL") or None

    _check_timezone(sections["parse"]["timezone"])
    _check_index_layout(sections["opensearch"])
    for key in ("memory_limit", "detect_memory_limit"):
        _check_memory_limit(f"embedded.{key}", sections["embedded"][key])
    _check_proxies(sections["parse"]["trusted_proxies"])
    url = sections["opensearch"]["url"]
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"opensearch.url: expected an http:// or https:// URL, got {url!r}")

    routes_raw = raw.get("routes") or []
    if not isinstance(routes_raw, list):
        raise ConfigError("routes: expected a list of {match, type} mappings")
    try:
        routes = compile_routes(routes_raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from siem.formats._app_builtin import builtins
    from siem.formats._app_mapping import MappingError, compile_apps

    try:
        apps = compile_apps(raw.get("apps"), builtins())
    except MappingError as exc:
        raise ConfigError(str(exc)) from None
    from siem.detect.notify.routes import compile_notifications

    try:
        notifications = compile_notifications(raw.get("notifications"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Settings(
        sections["opensearch"],
        sections["s3"],
        sections["sqs"],
        sections["parse"],
        Path(top["data_dir"]),
        routes,
        notifications=notifications,
        detect=sections["detect"],
        dashboards=sections["dashboards"],
        apps=apps,
        enrich=sections["enrich"],
        embedded=sections["embedded"],
        load=sections["load"],
    )


def _check_range(section: str, key: str, value: Any, env_name: str | None) -> None:
    bounds = RANGES.get((section, key))
    if bounds is None or value is None:
        return
    low, high = bounds
    if value < low or (high is not None and value > high):
        allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
        where = env_name or f"{section}.{key}"
        raise ConfigError(f"{where}: must be {allowed}, got {value}")


def _check_memory_limit(key: str, value: str) -> None:
    """A memory limit is handed to DuckDB as a size: refuse what DuckDB would misread or cannot work in."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt])(i?)b\s*", value, re.IGNORECASE)
    if not match:
        raise ConfigError(f"{key}: expected a size such as 128MB or 1GiB, got {value!r}")
    number, unit, binary = match.groups()
    if float(number) * (1024 if binary else 1000) ** ("kmgt".index(unit.lower()) + 1) < 64 << 20:
        raise ConfigError(f"{key}: must be at least 64MiB (loads need 32MiB at once), got {value!r}")


def _check_index_layout(opensearch: dict[str, Any]) -> None:
    from siem.sinks.index_layout import IndexLayout

    try:
        IndexLayout(opensearch["index_prefix"], opensearch["index_period"], opensearch["monthly_families"])
    except ValueError as exc:
        raise ConfigError(f"opensearch.index_period / monthly_families: {exc}") from None


def _check_timezone(name: str) -> None:
    from siem.timeparse import resolve_timezone

    try:
        resolve_timezone(name)
    except ValueError as exc:
        raise ConfigError(f"parse.timezone: {exc}") from None


def _check_proxies(cidrs: list[str]) -> None:
    import ipaddress

    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"parse.trusted_proxies: {cidr!r} is not an IP network") from None
