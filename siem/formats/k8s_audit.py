"""Kubernetes API server audit events (``audit.k8s.io/v1`` and ``v1beta1`` ``Event`` objects).

kube-apiserver's log backend writes one Event per line; tools and tests often keep one
pretty-printed Event (or an ``EventList``) per file, and EKS ships the same objects through
CloudWatch Logs (cloudwatch_logs.py delegates those messages here). Every audit field stays
searchable under ``kubernetes.audit.*``; the pivot fields (user, source IP, verb, target object)
are lifted to ECS so a ``kubectl exec`` is found with the same queries as any other action.

Field reference: https://kubernetes.io/docs/reference/config-api/apiserver-audit.v1/
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

import orjson

from siem.formats._json_payload import as_object, nonempty_str, strings
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, iter_lines
from siem.formats.cloudwatch_logs import iter_json_documents
from siem.normalize import iso_utc, valid_ip

_RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$")
# How kube-apiserver's log backend starts every line.
_APISERVER_LINE = re.compile(rb'\{"kind":"Event(?:List)?","apiVersion":"audit\.k8s\.io/')
# What kube-apiserver writes first in an Event line: where a broken document may end and the next begin.
_EVENT_START = re.compile(rb'\{"(?:kind|apiVersion|annotations|auditID|level)":')
_VERB_TYPES: dict[str, list[str]] = {
    "create": ["creation"],
    "update": ["change"],
    "patch": ["change"],
    "delete": ["deletion"],
    "deletecollection": ["deletion"],
    "get": ["access"],
    "list": ["access"],
    "watch": ["access"],
}
_DECISION_TYPES = {"allow": "allowed", "forbid": "denied"}


def _same_names(*keys: str) -> tuple[tuple[str, str], ...]:
    """(key, target) pairs for strings(): audit fields keep their Kubernetes names under kubernetes.audit."""
    return tuple(zip(keys, keys, strict=True))


_STRING_FIELDS = _same_names("apiVersion", "kind", "level", "auditID", "stage", "requestURI", "verb", "userAgent")
_OBJECT_REF_FIELDS = _same_names(
    "resource", "subresource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion"
)
_STATUS_FIELDS = _same_names("status", "reason", "message")
_USER_FIELDS = _same_names("username", "uid")
_SHELL_SUBRESOURCES = frozenset({"exec", "attach"})


def is_audit_event(obj: Any) -> bool:
    """An audit Event, not a core/v1 Event: those carry no auditID and another apiVersion."""
    if not isinstance(obj, dict) or obj.get("kind") != "Event":
        return False
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str):
        return api_version.startswith("audit.k8s.io/")
    return "auditID" in obj and ("verb" in obj or "stage" in obj)


def _is_event_list(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "EventList" and isinstance(obj.get("items"), list)


def _time(value: Any) -> str | None:
    """RFC 3339 as kube-apiserver writes it (UTC, micro- or nanoseconds kept), or None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if _RFC3339_Z.match(value):
        return value
    if dt.tzinfo is None:
        return None
    return iso_utc(dt)


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str) and v]


def _dedot(mapping: Any) -> dict[str, Any]:
    """Keys such as 'authorization.k8s.io/decision' with '.' → '_' (as Elastic does), so that one
    annotation or user.extra key can never be mapped both as a value and as a parent object."""
    if not isinstance(mapping, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, list):
            value = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]
        elif not isinstance(value, str):
            value = orjson.dumps(value).decode()
        out[str(key).replace(".", "_")] = value
    return out


def _user_info(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    info: dict[str, Any] = strings(value, _USER_FIELDS)
    groups = _str_list(value.get("groups"))
    if groups:
        info["groups"] = groups
    extra = _dedot(value.get("extra"))
    if extra:
        info["extra"] = extra
    return info


def _url(uri: str) -> dict[str, Any]:
    path, sep, query = uri.partition("?")
    url: dict[str, Any] = {"original": uri, "path": path}
    if sep:
        url["query"] = query
    return url


def _shell_command(doc: dict[str, Any], query: str) -> None:
    """The command of a `kubectl exec`: one `command=` parameter per argv element."""
    args: list[str] = []
    container = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "command":
            args.append(value)
        elif key == "container" and value:
            container = value
    if args:
        doc["process"] = {"args": args, "command_line": " ".join(args), "name": args[0].rsplit("/", 1)[-1]}
    if container:
        doc["container"] = {"name": container}


class K8sAuditLogType:
    dataset = "kubernetes.audit"
    description = "Kubernetes API server audit events (audit.k8s.io Event / EventList JSON)"
    # kube-apiserver --audit-log-path as kubeadm, minikube, kops and k3s set it up, rotated files included.
    key_pattern = re.compile(
        r"(?:^|/)(?:kube-apiserver|kubernetes)/(?:[^/]+/)*(?:kube-apiserver-)?audit(?:-[\w.:-]+)?\.log(?:\.gz)?$"
        r"|(?:^|/)k3s/server/logs/audit(?:-[\w.:-]+)?\.log(?:\.gz)?$"
    )

    def accepts(self, obj: Any) -> bool:
        """Whether a parsed JSON value is something this type maps (used by container formats)."""
        return is_audit_event(obj)

    def sniff(self, head: bytes) -> bool:
        stripped = head.lstrip()
        if _APISERVER_LINE.match(stripped):  # also when the first line is longer than the head
            return True
        if not stripped.startswith(b"{"):
            return False
        first = stripped.split(b"\n", 1)[0]
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            obj = None
        if obj is not None:
            if _is_event_list(obj):
                api_version = obj.get("apiVersion")
                if isinstance(api_version, str):
                    return api_version.startswith("audit.k8s.io/")
                return bool(obj["items"]) and is_audit_event(obj["items"][0])
            return is_audit_event(obj)
        # One pretty-printed document: judge its top-level keys, those at the first key's indentation.
        indent = re.match(rb"\{[ \t]*\r?\n([ \t]*)\"", stripped)
        if indent is None:
            return False
        top_key = rb"^" + re.escape(indent.group(1)) + rb'"(kind|apiVersion|auditID|stage|verb)"\s*:\s*"([^"]*)"'
        top = dict(re.findall(top_key, stripped, re.M))
        if top.get(b"kind") not in (b"Event", b"EventList"):
            return False
        if b"apiVersion" in top:
            return top[b"apiVersion"].startswith(b"audit.k8s.io/")
        return b"auditID" in top and (b"verb" in top or b"stage" in top)

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        """NDJSON line by line; a pretty-printed document (first line not JSON) as a document stream."""
        lines = iter_lines(stream)
        first = next(lines, None)
        if first is None:
            return
        offset, line = first
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            # Not one-event-per-line: re-join what was read and split on document boundaries.
            chunks = itertools.chain([line, b"\n"], iter(partial(stream.read, 1 << 20), b""))
            for item in iter_json_documents(chunks, _EVENT_START, base=offset, limit=options.max_document_bytes):
                if isinstance(item, BadRecord):
                    yield item
                else:
                    yield from self._expand(*item)
            return
        for offset, line in itertools.chain([first], lines):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield BadRecord(offset, f"invalid JSON: {exc}", line)
                continue
            yield from self._expand(offset, obj)

    def _expand(self, offset: int, obj: Any) -> Iterator[Record | BadRecord]:
        """One Event, or every item of an EventList/array at offset + index (unique: a
        document is always longer than its number of items)."""
        if _is_event_list(obj):
            items = obj["items"]
        elif isinstance(obj, list):
            items = obj
        else:
            yield offset, obj
            return
        for i, item in enumerate(items):
            yield offset + i, item

    def to_ecs(self, raw: Any, options: ParseOptions) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise RecordError(f"audit record is a JSON {type(raw).__name__}, not an object")
        kind = raw.get("kind")
        if kind is not None and kind != "Event":
            raise RecordError(f"not an audit Event: kind {str(kind)[:40]!r}")
        received = _time(raw.get("requestReceivedTimestamp"))
        staged = _time(raw.get("stageTimestamp"))
        timestamp = received or staged or _time(raw.get("timestamp"))
        if timestamp is None:
            raise RecordError("audit event has no valid requestReceivedTimestamp, stageTimestamp or timestamp")

        audit: dict[str, Any] = strings(raw, _STRING_FIELDS)
        if received:
            audit["requestReceivedTimestamp"] = received
        if staged:
            audit["stageTimestamp"] = staged
        source_ips = _str_list(raw.get("sourceIPs"))
        if source_ips:
            audit["sourceIPs"] = source_ips
        user = _user_info(raw.get("user"))
        if user:
            audit["user"] = user
        impersonated = _user_info(raw.get("impersonatedUser"))
        if impersonated:
            audit["impersonatedUser"] = impersonated
        object_ref = raw.get("objectRef")
        ref = strings(object_ref, _OBJECT_REF_FIELDS) if isinstance(object_ref, dict) else {}
        if ref:
            audit["objectRef"] = ref
        status = raw.get("responseStatus")
        code = None
        if isinstance(status, dict):
            response: dict[str, Any] = {}
            value = status.get("code")
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1000:
                code = response["code"] = value
            response.update(strings(status, _STATUS_FIELDS))
            if isinstance(status.get("details"), dict):
                response["details"] = status["details"]
            if response:
                audit["responseStatus"] = response
        annotations = _dedot(raw.get("annotations"))
        if annotations:
            audit["annotations"] = annotations
        for key in ("requestObject", "responseObject"):  # mapped flat_object
            if raw.get(key) is not None:
                audit[key] = as_object(raw[key])

        verb = audit.get("verb")
        decision = annotations.get("authorization_k8s_io/decision")
        event: dict[str, Any] = {"kind": "event", "category": ["api"]}
        types = list(_VERB_TYPES.get(verb, ["info"])) if verb else ["info"]
        if decision in _DECISION_TYPES:
            types.append(_DECISION_TYPES[decision])
        event["type"] = types
        if verb:
            event["action"] = verb
        if "auditID" in audit:
            event["id"] = audit["auditID"]
        if code is not None:
            event["outcome"] = "success" if code < 400 else "failure"
        elif decision == "forbid":
            event["outcome"] = "failure"
        reason = nonempty_str(annotations.get("authorization_k8s_io/reason"))
        if reason:
            event["reason"] = reason
        if received:
            event["start"] = received
        if staged:
            event["end"] = staged

        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event}
        ecs_user: dict[str, Any] = {}
        if "username" in user:
            ecs_user["name"] = user["username"]
        if "uid" in user:
            ecs_user["id"] = user["uid"]
        effective = {k2: impersonated[k1] for k1, k2 in (("username", "name"), ("uid", "id")) if k1 in impersonated}
        if effective:
            ecs_user["effective"] = effective
        if ecs_user:
            doc["user"] = ecs_user
        ips: list[str] = []
        for text in source_ips:
            ip = valid_ip(text)
            if ip and ip not in ips:
                ips.append(ip)
        if ips:
            doc["source"] = {"ip": ips[0], "address": ips[0]}
            doc["related"] = {"ip": ips}
        if "userAgent" in audit:
            doc["user_agent"] = {"original": audit["userAgent"]}
        if "requestURI" in audit:
            doc["url"] = _url(audit["requestURI"])
        if code is not None:
            doc["http"] = {"response": {"status_code": code}}
        orchestrator: dict[str, Any] = {"type": "kubernetes"}
        if "namespace" in ref:
            orchestrator["namespace"] = ref["namespace"]
        resource = {k2: ref[k1] for k1, k2 in (("resource", "type"), ("name", "name"), ("uid", "id")) if k1 in ref}
        if resource:
            orchestrator["resource"] = resource
        if "apiVersion" in ref:
            group = ref.get("apiGroup")
            orchestrator["api_version"] = f"{group}/{ref['apiVersion']}" if group else ref["apiVersion"]
        doc["orchestrator"] = orchestrator
        if ref.get("subresource") in _SHELL_SUBRESOURCES and "url" in doc and "query" in doc["url"]:
            _shell_command(doc, doc["url"]["query"])
        doc["kubernetes"] = {"audit": audit}
        return doc


LOG_TYPE = K8sAuditLogType()
