"""Notification routes: the ``notifications`` section of the config, validated at start-up.

A route names a target (``webhook``, ``slack``, ``pagerduty``, ``apprise``) and where its secret lives. Secrets
(HMAC keys, Slack webhook URLs, PagerDuty routing keys) are read ONLY from environment variables
named in the config, at send time: a config file is reviewed in git and copied around. A key that
would hold a secret value is rejected, and no error message ever echoes a value that might be one.

A rule reaches a route through its ``notify: [names]`` list, or by level when the route lists
``levels``. This module is stdlib-only so that loading the config stays cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TYPES = ("webhook", "slack", "pagerduty", "apprise")
LEVELS = ("informational", "low", "medium", "high", "critical")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_TIMEOUT = 10

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Keys that would put a secret value in the file; each maps to the *_env key to use instead.
_SECRET_KEYS = {
    "secret": "secret_env",
    "hmac_key": "secret_env",
    "signing_secret": "secret_env",
    "routing_key": "routing_key_env",
    "integration_key": "routing_key_env",
    "token": "secret_env",
    "password": "secret_env",
    "api_key": "secret_env",
}
_COMMON = {"name", "type", "levels", "timeout"}
_ALLOWED = {
    "webhook": _COMMON | {"url", "url_env", "secret_env"},
    "slack": _COMMON | {"url_env"},
    "pagerduty": _COMMON | {"routing_key_env", "url"},
    "apprise": _COMMON | {"url_env"},
}


class MissingSecret(RuntimeError):
    """A route's environment variable is not set (the message names the variable, never a value)."""


@dataclass(frozen=True, slots=True)
class NotifyRoute:
    """One configured notification target. Holds environment variable NAMES, never secret values."""

    name: str
    type: str  # webhook | slack | pagerduty | apprise
    url: str | None = None  # a non-secret URL from the file (webhook, PagerDuty override)
    url_env: str | None = None  # the URL is itself the secret (Slack incoming webhooks)
    secret_env: str | None = None  # webhook HMAC key
    routing_key_env: str | None = None  # PagerDuty Events v2 routing key
    levels: tuple[str, ...] = ()  # alerts of these levels go here even without `notify:`
    timeout: float = DEFAULT_TIMEOUT  # seconds, connect and read

    def resolve_url(self, env: Mapping[str, str] | None = None) -> str:
        if self.url_env:
            return _env_value(self.url_env, env)
        if self.url:
            return self.url
        if self.type == "pagerduty":
            return PAGERDUTY_URL
        raise MissingSecret(f"route {self.name!r} has no URL")

    def secret(self, env: Mapping[str, str] | None = None) -> str:
        """The HMAC key (webhook) or routing key (PagerDuty), from the environment."""
        name = self.secret_env if self.type == "webhook" else self.routing_key_env
        if not name:
            raise MissingSecret(f"route {self.name!r} has no secret configured")
        return _env_value(name, env)

    def secret_values(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Every secret value this route uses (for scrubbing messages); missing ones are skipped."""
        values = []
        for name in (self.url_env, self.secret_env, self.routing_key_env):
            value = (os.environ if env is None else env).get(name or "")
            if value:
                values.append(value)
        return values

    def describe(self) -> str:
        """A safe description for messages: the URL only when it is not a secret."""
        if self.url_env:
            return f"{self.type} route {self.name!r} (URL from ${self.url_env})"
        return f"{self.type} route {self.name!r} ({self.resolve_url({})})"


def _env_value(name: str, env: Mapping[str, str] | None) -> str:
    value = (os.environ if env is None else env).get(name)
    if not value:
        raise MissingSecret(f"environment variable {name} is not set")
    return value


def compile_notifications(raw: object) -> list[NotifyRoute]:
    """Validate the ``notifications`` section; errors name the key (``notifications[1].url: ...``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("notifications: expected a list of route mappings ({name, type, ...})")
    routes: list[NotifyRoute] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"notifications[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping with at least 'name' and 'type'")
        for key in item:
            if key in _SECRET_KEYS:
                raise ValueError(
                    f"{where}.{key}: secrets are not read from config files; put the value in an environment "
                    f"variable and name it in {_SECRET_KEYS[key]}"
                )
        kind = item.get("type")
        if kind not in TYPES:
            raise ValueError(f"{where}.type: expected one of {', '.join(TYPES)}, got {kind!r}")
        if kind in ("slack", "apprise") and "url" in item:
            what = "a Slack incoming-webhook URL" if kind == "slack" else "an Apprise URL"
            raise ValueError(
                f"{where}.url: {what} is a secret; put it in an environment variable and name it in url_env"
            )
        unknown = sorted(set(item) - _ALLOWED[kind])
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed for {kind}: {sorted(_ALLOWED[kind])}")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}.name: expected a name of letters, digits, '_', '.', '-', got {name!r}")
        if name in seen:
            raise ValueError(f"{where}.name: duplicate route name {name!r}")
        seen.add(name)
        env_keys = {key: item.get(key) for key in ("url_env", "secret_env", "routing_key_env")}
        for key, value in env_keys.items():
            # Never echo the value: someone may have pasted the secret itself here.
            if value is not None and (not isinstance(value, str) or not _ENV_NAME.match(value)):
                raise ValueError(f"{where}.{key}: expected the NAME of an environment variable (like SIEM_X_SECRET)")
        url = item.get("url")
        if url is not None:
            _check_url(url, f"{where}.url")
        if kind == "webhook":
            if (url is None) == (env_keys["url_env"] is None):
                raise ValueError(f"{where}.url: a webhook needs exactly one of url or url_env")
            if env_keys["secret_env"] is None:
                raise ValueError(f"{where}.secret_env: a webhook is signed; name the variable holding the key")
        if kind in ("slack", "apprise") and env_keys["url_env"] is None:
            raise ValueError(f"{where}.url_env: name the environment variable holding the {kind} URL")
        if kind == "pagerduty" and env_keys["routing_key_env"] is None:
            raise ValueError(f"{where}.routing_key_env: name the environment variable holding the routing key")
        levels = item.get("levels", [])
        if not isinstance(levels, list) or not all(level in LEVELS for level in levels):
            raise ValueError(f"{where}.levels: expected a list of {', '.join(LEVELS)}, got {levels!r}")
        timeout = item.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
            raise ValueError(f"{where}.timeout: expected seconds between 0 and 300, got {timeout!r}")
        routes.append(
            NotifyRoute(
                name=name,
                type=kind,
                url=url,
                url_env=env_keys["url_env"],
                secret_env=env_keys["secret_env"],
                routing_key_env=env_keys["routing_key_env"],
                levels=tuple(levels),
                timeout=float(timeout),
            )
        )
    return routes


def _check_url(url: Any, where: str) -> None:
    if not isinstance(url, str):
        raise ValueError(f"{where}: expected an http:// or https:// URL")
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment:
        # Credentials and tokens hide in userinfo and query strings: such a URL belongs in url_env.
        raise ValueError(f"{where}: a URL with credentials, a query or a fragment may hold a secret; use url_env")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: expected an http:// or https:// URL, got {url!r}")


class UnknownRoute(ValueError):
    """A rule names a route that the config does not define."""


def unknown_routes(notify: Iterable[str], routes: Iterable[NotifyRoute]) -> list[str]:
    """Route names a rule's ``notify:`` lists that the config lacks (for rule linting at load)."""
    known = {route.name for route in routes}
    return [name for name in notify if name not in known]


def select_routes(
    routes: Iterable[NotifyRoute], notify: Iterable[str] = (), level: str | None = None
) -> list[NotifyRoute]:
    """Routes an alert goes to: those the rule names in ``notify:`` plus those listing its level.

    An unknown name raises UnknownRoute rather than dropping the notification silently.
    """
    routes = list(routes)
    notify = list(notify)
    missing = unknown_routes(notify, routes)
    if missing:
        raise UnknownRoute(f"notify: unknown route(s) {missing}; configured: {[r.name for r in routes]}")
    return [route for route in routes if route.name in notify or (level is not None and level in route.levels)]
