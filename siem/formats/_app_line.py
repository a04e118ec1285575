"""One application line (what a pod wrote to stdout/stderr) → ECS fields, parsed by what it is.

Order: a configured route's regex mapping; a web access line (nginx/Apache combined) through those
log types' own parsers; a JSON line — ECS already (ecs-logging) passed through, else the route's
mapping, else a built-in whose keys it carries, else kept whole in ``app.fields``; anything else
is ``message``. The shipper plays no part here, so a line gets the same fields from any of them.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from siem import formats
from siem.formats import _app_builtin
from siem.formats._app_fields import apply_mapping
from siem.formats._app_mapping import AppMapping, route_for
from siem.formats._http_common import access_line
from siem.formats.base import ParseOptions
from siem.normalize import iso_utc, valid_ip

DATASET = "kubernetes.container"
_TEMPLATE = Path(__file__).resolve().parents[2] / "index_templates" / "component-ecs.json"
# ECS field sets an ecs-logging line may carry; other top-level keys are the app's own (app.fields).
_ECS_ROOTS = frozenset(
    {
        "@timestamp",
        "agent",
        "client",
        "cloud",
        "container",
        "destination",
        "dns",
        "ecs",
        "error",
        "event",
        "file",
        "group",
        "host",
        "http",
        "labels",
        "log",
        "message",
        "network",
        "observer",
        "orchestrator",
        "organization",
        "process",
        "server",
        "service",
        "source",
        "span",
        "tags",
        "threat",
        "tls",
        "trace",
        "transaction",
        "url",
        "user",
        "user_agent",
    }
)
# Ours to set (the envelope finalize adds, the dataset): an app line must not forge them. Top-level keys
# such as data_stream, related, siem or app are no ECS roots above, so they land in app.fields.
_OWNED_SUB = {"event": ("dataset", "ingested"), "log": ("file", "offset")}
_WEB_HINTS = (
    ("nginx", ("nginx.access", "apache.access")),
    ("apache", ("apache.access", "nginx.access")),
    ("httpd", ("apache.access", "nginx.access")),
)


def app_doc(line: str | dict[str, Any], context: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any], str]:
    """(ECS fields of the line, dataset); a JSON object may come already parsed (fluent-bit merge)."""
    route = route_for(options.extra.get("apps", ()), context)
    mapping = route.mapping if route else None
    obj: dict[str, Any] | None = line if isinstance(line, dict) else None
    text = "" if obj is not None else str(line).rstrip("\r\n")
    doc: dict[str, Any] | None = None
    dataset = DATASET
    if obj is None and mapping is not None and mapping.pattern is not None:
        match = mapping.pattern.search(text)
        if match is not None:
            doc = apply_mapping(mapping, match, options)
            doc.setdefault("message", text)
    if doc is None and obj is None:
        obj = _json_object(text)
        if obj is None:
            web = _web_line(text, context, options)
            if web is not None:
                doc, dataset = web
            else:
                doc = {"message": text} if text.strip() else {}
    if doc is None and obj is not None:
        doc = _json_doc(obj, mapping, options)
    assert doc is not None
    if route is not None and route.service:
        doc.setdefault("service", {})["name"] = route.service
    return doc, dataset


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _web_line(text: str, context: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any], str] | None:
    if access_line(text) is None:
        return None
    hints = " ".join(str(context.get(k) or "") for k in ("container", "pod", "key", "tag")).lower()
    order = next((types for word, types in _WEB_HINTS if word in hints), ("nginx.access", "apache.access"))
    head = text.encode("utf-8", errors="replace") + b"\n"
    for dataset in order:
        log_type = formats.registry().get(dataset)
        if log_type is not None and log_type.sniff(head):
            return log_type.to_ecs(text, options), dataset
    return None


def _json_doc(obj: dict[str, Any], mapping: AppMapping | None, options: ParseOptions) -> dict[str, Any]:
    if is_ecs(obj) or (mapping is not None and mapping.name == _app_builtin.ECS):
        return ecs_doc(obj)  # self-describing: an ecs-logging line is ECS whatever the route maps
    if mapping is None or mapping.pattern is not None:  # a regex route does not apply to a JSON line
        mapping = _app_builtin.detect(obj)
    if mapping is not None:
        return apply_mapping(mapping, obj, options)
    fields = dict(obj)
    doc: dict[str, Any] = {}
    for key in ("message", "msg"):
        if isinstance(fields.get(key), str):
            doc["message"] = fields.pop(key)
            break
    if fields:
        doc["app"] = {"fields": fields}
    return doc


def is_ecs(obj: dict[str, Any]) -> bool:
    """An ecs-logging line: `@timestamp` and `ecs.version` (dotted, as the libraries write it, or nested)."""
    ecs = obj.get("ecs")
    return "@timestamp" in obj and ("ecs.version" in obj or (isinstance(ecs, dict) and "version" in ecs))


# --- ECS pass-through ---------------------------------------------------------------------------


def ecs_doc(obj: dict[str, Any]) -> dict[str, Any]:
    """The line's ECS fields as they are, each checked against the index template's type: a value the
    index would refuse (a bad IP, text in a long) moves to app.fields and is listed as malformed."""
    doc: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        root = key.split(".", 1)[0]
        if root in _ECS_ROOTS:
            _set_dotted(doc, key.split("."), value)
        else:
            extra[key] = value
    missed: list[str] = []
    for root, subs in _OWNED_SUB.items():
        for sub in subs:
            if isinstance(doc.get(root), dict):
                doc[root].pop(sub, None)
    _check(doc, "", _template_types(), extra, missed)
    timestamp = doc.pop("@timestamp", None)  # absent or unusable: the runtime's time is used
    if isinstance(timestamp, str):  # checked above: an aware ISO 8601 time
        doc["@timestamp"] = iso_utc(datetime.fromisoformat(timestamp))
    elif timestamp not in (None, []):
        extra["@timestamp"] = timestamp
        missed.append("@timestamp:malformed")
    if extra:
        doc["app"] = {"fields": extra}
    if missed:
        doc["siem"] = {"unmapped": missed}
    return doc


def _set_dotted(doc: dict[str, Any], keys: list[str], value: Any) -> None:
    node = doc
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    last = keys[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for k, v in value.items():
            _set_dotted(node[last], [k], v)
    else:
        node[last] = value


def _check(node: dict[str, Any], prefix: str, types: dict[str, str], extra: dict[str, Any], missed: list[str]) -> None:
    for key in list(node):
        value = node[key]
        path = f"{prefix}{key}"
        kind = types.get(path, "ip" if key == "ip" else None)
        if kind == "object":
            if isinstance(value, dict):
                _check(value, path + ".", types, extra, missed)
                continue
            ok = False
        elif isinstance(value, dict):
            ok = kind is None or kind == "flat_object"
            if ok and kind is None:
                _check(value, path + ".", types, extra, missed)
        else:
            ok = all(_fits(v, kind) for v in (value if isinstance(value, list) else [value]))
        if not ok:
            extra[path] = node.pop(key)
            missed.append(f"{path}:malformed")


def _fits(value: Any, kind: str | None) -> bool:
    if kind is None or value is None:
        return not isinstance(value, dict)
    if kind == "long":
        return type(value) is int
    if kind == "ip":
        return isinstance(value, str) and not value.startswith("[") and valid_ip(value) is not None
    if kind == "date":
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False
    if kind == "flat_object":
        return False
    return isinstance(value, str | int | float | bool)


@cache
def _template_types() -> dict[str, str]:
    """Dotted path → template type ("object" for a mapped object), for the checks above."""
    types: dict[str, str] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "properties" in spec:
                types[path] = "object"
                walk(spec["properties"], path + ".")
            else:
                types[path] = spec.get("type", "keyword")

    try:
        walk(json.loads(_TEMPLATE.read_text())["template"]["mappings"]["properties"], "")
    except (OSError, ValueError, KeyError):
        return {}
    return types
