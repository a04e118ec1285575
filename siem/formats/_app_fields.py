"""Apply an AppMapping to one parsed app line: each mapped value checked, placed, or listed as missed.

A value that is absent (and not optional) or malformed is not guessed at: the field is left out,
``<field>:absent`` / ``<field>:malformed`` goes to ``siem.unmapped`` (the pipeline counts such
events), and a malformed value stays in ``app.fields`` where the analyst can still see it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from siem.formats._app_mapping import AppMapping, FieldSpec
from siem.formats._http_common import access_timestamp, endpoint, put_clients, put_url, xff_hops
from siem.formats.base import ParseOptions, RecordError
from siem.normalize import iso_utc
from siem.timeparse import resolve_timezone

_METHOD = re.compile(r"[A-Za-z][A-Za-z_-]{0,19}")
_ID_MAX = 256
_MISSING = object()
_EPOCH_MAX = 253402300800  # 9999-12-31


def lookup(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at a JSON path; a dotted top-level key (`"log.level"`, as ecs-logging writes) counts too."""
    if len(path) == 1 and isinstance(obj, dict):  # the usual case: a top-level key
        return obj.get(path[0], _MISSING)
    node = obj
    for i, key in enumerate(path):
        if isinstance(node, dict):
            if key in node:
                node = node[key]
                continue
            dotted = ".".join(path[i:])
            return node.get(dotted, _MISSING)
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
            continue
        return _MISSING
    return node


def _remove(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    """Drop a consumed value from the leftover copy (and the objects it leaves empty)."""
    if len(path) == 1 or ".".join(path) in obj:
        obj.pop(path[0] if len(path) == 1 else ".".join(path), None)
        return
    child = obj.get(path[0])
    if isinstance(child, dict):
        _remove(child, path[1:])
        if not child:
            obj.pop(path[0], None)


def parse_time(value: Any, spec: FieldSpec) -> str | None:
    """A mapped time value in the configured format → ISO UTC, or None when it does not fit."""
    try:
        fmt = spec.time_format
        if fmt in ("epoch", "epoch_millis"):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return None
            seconds = float(value) / (1000 if fmt == "epoch_millis" else 1)
            if not 0 <= seconds < _EPOCH_MAX:
                return None
            return iso_utc(datetime.fromtimestamp(seconds, UTC))
        if not isinstance(value, str) or not value:
            return None
        if fmt == "clf":
            return access_timestamp(value)
        dt = datetime.fromisoformat(value) if fmt == "iso8601" else datetime.strptime(value, fmt)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=resolve_timezone(spec.timezone))
        return iso_utc(dt)
    except (ValueError, OverflowError, RecordError):
        return None


def _text(value: Any, limit: int = _ID_MAX) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if text and text != "-" and len(text) <= limit else None


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 100 <= value <= 599 else None


def _outcome(value: Any) -> str | None:
    if isinstance(value, bool):
        return "success" if value else "failure"
    if isinstance(value, str) and value.lower() in ("success", "failure", "unknown"):
        return value.lower()
    return None


def _put(
    doc: dict[str, Any], name: str, value: Any, spec: FieldSpec, forwarded: list[str] | None, options: ParseOptions
) -> bool:
    """Place one mapped value; False when it is malformed for its field."""
    if name == "time":
        timestamp = parse_time(value, spec)
        if timestamp is None:
            return False
        doc["@timestamp"] = timestamp
    elif name in ("source_ip", "destination_ip"):
        ip = endpoint(value)[0] if isinstance(value, str) else None
        if ip is None:
            return False
        if name == "source_ip":
            put_clients(doc, [*(forwarded or ()), value], options)
        else:
            doc["destination"] = {"ip": ip, "address": ip}
    elif name in ("user_name", "user_id"):
        text = _text(value)
        if text is None:
            return False
        doc.setdefault("user", {})["name" if name == "user_name" else "id"] = text
    elif name == "method":
        if not isinstance(value, str) or not _METHOD.fullmatch(value):
            return False
        doc.setdefault("http", {}).setdefault("request", {})["method"] = value.upper()
    elif name == "path":
        if not isinstance(value, str) or not value or len(value) > 8191:
            return False
        put_url(doc, value)
    elif name == "status":
        status = _status(value)
        if status is None:
            return False
        doc.setdefault("http", {}).setdefault("response", {})["status_code"] = status
    elif name in ("request_id", "trace_id"):
        text = _text(value)
        if text is None:
            return False
        if name == "request_id":
            doc.setdefault("http", {}).setdefault("request", {})["id"] = text
        else:
            doc["trace"] = {"id": text}
    elif name == "outcome":
        outcome = _outcome(value)
        if outcome is None:
            return False
        doc.setdefault("event", {})["outcome"] = outcome
    elif name in ("user_agent", "message", "level"):
        text = _text(value, 1 << 20) if name == "message" else _text(value, 8191)
        if text is None:
            return False
        if name == "user_agent":
            doc["user_agent"] = {"original": text}
        elif name == "level":
            doc["log"] = {"level": text.lower()}
        else:
            doc["message"] = text
    return True


def apply_mapping(mapping: AppMapping, source: dict[str, Any] | re.Match[str], options: ParseOptions) -> dict[str, Any]:
    """The ECS fields of one app line: mapped values placed, misses listed, the rest in app.fields."""
    is_json = isinstance(source, dict)
    leftover: dict[str, Any] = dict(source) if is_json else {}

    def get(spec: FieldSpec) -> tuple[Any, tuple[str, ...] | None]:
        for path in spec.paths:
            value = lookup(source, path) if is_json else source.group(path[0])  # type: ignore[union-attr]
            if value is not _MISSING and value is not None and value != "":
                return value, path
        return _MISSING, None

    doc: dict[str, Any] = {}
    missed: list[str] = []
    forwarded: list[str] | None = None
    xff = mapping.fields.get("forwarded_for")
    if xff is not None:
        value, path = get(xff)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ", ".join(value)
        hops = xff_hops(value) if isinstance(value, str) else None
        if hops is not None:
            forwarded = [h for h in hops if h.lower() != "unknown"]
            if is_json and path:
                _remove_copy(leftover, path)
        elif value is not _MISSING:
            missed.append("forwarded_for:malformed")
        elif not xff.optional:
            missed.append("forwarded_for:absent")
    for name, spec in mapping.fields.items():
        if name == "forwarded_for":
            continue
        value, path = get(spec)
        if value is _MISSING:
            if not spec.optional:
                missed.append(f"{name}:absent")
            continue
        if name == "source_ip" and not isinstance(value, str):
            value = None
        if _put(doc, name, value, spec, forwarded, options):
            if is_json and path:
                _remove_copy(leftover, path)
        else:
            missed.append(f"{name}:malformed")
    if forwarded and "source" not in doc and "source_ip:malformed" not in missed:
        # no peer logged: the chain alone, walked from its right end (a malformed peer is not guessed past)
        put_clients(doc, forwarded, options)
    status = doc.get("http", {}).get("response", {}).get("status_code")
    if status is not None:
        doc.setdefault("event", {}).setdefault("outcome", "success" if status < 400 else "failure")
    if leftover:
        doc["app"] = {"fields": leftover}
    if missed:
        doc["siem"] = {"unmapped": missed}
    return doc


def _remove_copy(leftover: dict[str, Any], path: tuple[str, ...]) -> None:
    """_remove on the leftover, copying nested objects first so the parsed record is left as it was."""
    if len(path) == 1:
        leftover.pop(path[0], None)
        return
    node = leftover
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            break
        node[key] = child = dict(child)
        node = child
    _remove(leftover, path)
