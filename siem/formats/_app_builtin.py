"""The app mappings shipped with siem, written as config so they pass the same validation as a team's.

Each has ``detect`` keys: a JSON line carrying all of them is mapped by it even without a configured
route, so the common structured formats work out of the box. ``use: <name>`` in ``apps:`` selects one
explicitly (and ``fields:`` there overrides single fields). ``ecs`` is the ECS pass-through.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from siem.formats._app_mapping import AppMapping, compile_mapping

ECS = "ecs"


def _opt(*paths: str) -> dict[str, Any]:
    return {"path": list(paths), "optional": True}


# Rails lograge (json formatter) with the custom_options most apps add (remote_ip, request_id, user_id...).
LOGRAGE = {
    "detect": ["method", "path", "status", "controller", "action"],
    "fields": {
        "time": _opt("time", "timestamp", "@timestamp"),
        "source_ip": _opt("remote_ip", "ip"),
        "forwarded_for": _opt("x_forwarded_for", "forwarded_for"),
        "user_id": _opt("user_id", "current_user_id"),
        "user_name": _opt("user_name", "username", "user"),
        "method": "method",
        "path": "path",
        "status": "status",
        "request_id": _opt("request_id", "x_request_id"),
        "trace_id": _opt("trace_id", "amzn_trace_id", "x_amzn_trace_id"),
        "user_agent": _opt("user_agent"),
    },
}
# A generic JSON access log, named after nginx's variables (log_format ... escape=json) as most are.
JSON_ACCESS = {
    "detect": ["remote_addr", "request_method", "status"],
    "fields": {
        "time": _opt("time_iso8601", "time", "timestamp", "@timestamp"),
        "source_ip": "remote_addr",
        "forwarded_for": _opt("http_x_forwarded_for", "x_forwarded_for"),
        "user_name": _opt("remote_user", "user"),
        "method": "request_method",
        "path": ["request_uri", "uri", "request_path", "path"],
        "status": "status",
        "request_id": _opt("request_id", "http_x_request_id"),
        "trace_id": _opt("http_x_amzn_trace_id", "trace_id"),
        "user_agent": _opt("http_user_agent", "user_agent"),
    },
}
# Istio/Envoy proxy access log, JSON encoding (meshConfig.accessLogEncoding: JSON; Istio's default keys).
ENVOY = {
    "detect": ["start_time", "response_code", "downstream_remote_address"],
    "fields": {
        "time": "start_time",
        "source_ip": "downstream_remote_address",
        "forwarded_for": _opt("x_forwarded_for"),
        "method": _opt("method"),
        "path": _opt("path"),
        "status": _opt("response_code"),
        "request_id": _opt("request_id"),
        "trace_id": _opt("x_amzn_trace_id", "trace_id"),
        "user_agent": _opt("user_agent"),
    },
}
# Istio Mixer access log entries (istio-proxy / mixer stdout: accesslog and tcpaccesslog instances).
ISTIO_MIXER = {
    "detect": ["sourceIp", "destinationIp", "reporter"],
    "fields": {
        "time": "time",
        "source_ip": "sourceIp",
        "destination_ip": "destinationIp",
        "user_name": _opt("sourcePrincipal", "sourceUser"),
        "method": _opt("method"),
        "path": _opt("url"),
        "status": _opt("responseCode"),
        "request_id": _opt("requestId"),
        "user_agent": _opt("userAgent"),
        "level": _opt("level"),
    },
}
_RAW = {"lograge": LOGRAGE, "json_access": JSON_ACCESS, "envoy": ENVOY, "istio_mixer": ISTIO_MIXER}


@cache
def builtins() -> dict[str, AppMapping]:
    """Every built-in by name (``ecs`` has no fields: the line is ECS already)."""
    found = {name: compile_mapping(raw, f"built-in {name}", name) for name, raw in _RAW.items()}
    found[ECS] = AppMapping(ECS, {})
    return found


def detect(obj: dict[str, Any]) -> AppMapping | None:
    """The built-in whose detect keys a JSON line carries, if any."""
    for mapping in builtins().values():
        if mapping.detect and mapping.detect <= obj.keys():
            return mapping
    return None
