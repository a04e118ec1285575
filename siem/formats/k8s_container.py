"""Kubernetes container output as it reaches S3: the node's files and what fluentd / fluent-bit ship.

Pod logs vanish with their pod or node, so teams ship them (a fluentd or fluent-bit DaemonSet or
sidecar). One pod line arrives in any of these shapes, and must land in the same fields whichever:

* Docker json-file: ``{"log": "<line>\\n", "stream": "stdout", "time": "<RFC 3339>"}``;
* CRI (containerd, CRI-O): ``<RFC 3339> <stream> <P|F> <line>`` — ``P`` lines are parts of one
  line, joined here (per stream, bounded by ParseOptions.max_record_bytes);
* either after fluentd's kubernetes_metadata filter or fluent-bit's kubernetes filter: the record
  plus ``kubernetes.{pod_name, namespace_name, container_name, labels, host, ...}`` (and
  ``docker.container_id``); fluent-bit may merge a JSON line into the record (Merge_Log) and drop
  ``log`` (Keep_Log Off); fluentd's ``out_file`` lines (time, tag, record) are read too.

The container context goes to ECS ``container.*``, ``orchestrator.*``, ``host.name`` and
``kubernetes.*``; the line itself is parsed by what it is (siem/formats/_app_line.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson

from siem.formats._app_line import DATASET, app_doc
from siem.formats.base import BadRecord, ParseOptions, Record, RecordError, Skipped, head_lines, iter_lines
from siem.normalize import iso_utc

_CRI = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF])(?: (.*))?$", re.S
)
_OUT_FILE = re.compile(rb"^([^\t{]+)\t([^\t]+)\t(\{.*\})$")
_STREAMS = ("stdout", "stderr")
# Keys a shipper adds around the line. fluent-bit without `log` (Keep_Log Off) leaves the app's merged
# keys beside them; its parser consumed the runtime's `time`, so a `time` (or `path`) there is the app's.
_SHIPPER_KEYS = frozenset({"stream", "date", "_p", "logtag", "kubernetes", "docker", "tag"})
# /var/log/containers/<pod>_<namespace>_<container>-<id>.log, also as a fluentd/fluent-bit tag
# (kubernetes.var.log.containers.<...>.log), and /var/log/pods/<namespace>_<pod>_<uid>/<container>/N.log.
_CONTAINERS_FILE = re.compile(r"containers[/.]([a-z0-9.-]+)_([a-z0-9-]+)_([a-z0-9-]+)-([0-9a-f]{64})\.log")
_PODS_FILE = re.compile(r"pods/([a-z0-9-]+)_([a-z0-9.-]+)_([0-9a-f-]{36})/([a-z0-9-]+)/\d+\.log")


def _time(value: Any) -> str | None:
    """The runtime's / shipper's time: RFC 3339 (ns cut to µs) or epoch seconds (fluent-bit's `date`)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return iso_utc(datetime.fromtimestamp(float(value), UTC)) if 0 <= value < 253402300800 else None
        if isinstance(value, str) and value:
            dt = datetime.fromisoformat(value)
            return iso_utc(dt) if dt.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    return None


def _frame(offset: int, line: bytes) -> Record | BadRecord:
    """One line → its record dict (JSON, fluentd out_file or CRI), or a BadRecord saying why not."""
    if line[:1] == b"{":
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return BadRecord(offset, f"invalid JSON: {exc}", line)
        if not isinstance(obj, dict):
            return BadRecord(offset, "expected a JSON object", line)
        return offset, obj
    cri = _CRI.match(line)
    if cri is not None:
        text = (cri[4] or b"").decode("utf-8", errors="replace")
        return offset, {"time": cri[1].decode(), "stream": cri[2].decode(), "logtag": cri[3].decode(), "log": text}
    out_file = _OUT_FILE.match(line)
    if out_file is not None:
        try:
            obj = orjson.loads(out_file[3])
        except orjson.JSONDecodeError as exc:
            return BadRecord(offset, f"invalid JSON: {exc}", line)
        obj.setdefault("time", out_file[1].decode(errors="replace"))
        obj.setdefault("tag", out_file[2].decode(errors="replace"))
        return offset, obj
    return BadRecord(offset, "not a container log record (Docker JSON, CRI or a shipper's JSON record)", line)


def _partial(obj: dict[str, Any]) -> bool:
    """A piece of a longer line: CRI `P`, fluent-bit's `_p`, or Docker's unterminated `log` (16 KiB parts)."""
    log = obj.get("log")
    if not isinstance(log, str):  # no text to join: the record stands alone
        return False
    if obj.get("logtag") == "P" or obj.get("_p") == "P":
        return True
    return obj.keys() <= {"log", "stream", "time"} and not log.endswith("\n")


def _too_long(start: int, size: int, limit: int, head: bytes) -> BadRecord:
    return BadRecord(start, f"line of {size} bytes (joined partials) exceeds the {limit}-byte record limit", head)


def _joined(stream: BinaryIO, limit: int) -> Iterator[Record | BadRecord]:
    """Records with partial lines joined per stream; a line beyond `limit` bytes is a dead letter
    (its parts are read past, not held), as iter_lines does for one long physical line."""
    pending: dict[str, tuple[int, dict[str, Any], list[str], int]] = {}
    skipping: dict[str, tuple[int, int, bytes]] = {}
    for offset, line in iter_lines(stream):
        item = _frame(offset, line)
        if isinstance(item, BadRecord):
            yield item
            continue
        obj = item[1]
        key = obj.get("stream")
        if key not in _STREAMS:  # only stdout/stderr are joined: a forged stream name must not grow `pending`
            yield item
            continue
        partial = _partial(obj)
        text = obj.get("log") if isinstance(obj.get("log"), str) else ""
        if key in skipping:
            start, size, head = skipping[key]
            size += len(text.encode())
            if partial:
                skipping[key] = (start, size, head)
            else:
                del skipping[key]
                yield _too_long(start, size, limit, head)
            continue
        if key in pending:
            start, first, parts, size = pending.pop(key)
            parts.append(text)
            size += len(text.encode())
            if size > limit:
                if partial:
                    skipping[key] = (start, size, "".join(parts)[:1024].encode())
                else:
                    yield _too_long(start, size, limit, "".join(parts)[:1024].encode())
                continue
            if partial:
                pending[key] = (start, first, parts, size)
                continue
            yield start, {**first, **{k: v for k, v in obj.items() if k != "log"}, "log": "".join(parts)}
            continue
        if partial:
            pending[key] = (offset, obj, [text], len(text.encode()))
            continue
        yield offset, obj
    for start, first, parts, _ in pending.values():  # the stream ended inside a line: keep what there is
        yield start, {**first, "log": "".join(parts)}
    for start, size, head in skipping.values():
        yield _too_long(start, size, limit, head)


def _container_ref(image: Any) -> dict[str, Any]:
    if not isinstance(image, str) or not image:
        return {}
    name, at, digest = image.partition("@")
    repo, colon, tag = name.rpartition(":")
    part: dict[str, Any] = {"name": repo if colon and "/" not in tag else name}
    if colon and "/" not in tag:
        part["tag"] = [tag]
    if at:
        part["hash"] = {"all": [digest]}
    return part


def _context(raw: dict[str, Any], options: ParseOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ECS container fields, route context): from the filter's metadata, else the file name / tag."""
    k8s = raw.get("kubernetes") if isinstance(raw.get("kubernetes"), dict) else {}
    docker = raw.get("docker") if isinstance(raw.get("docker"), dict) else {}
    path = str(options.extra.get("object_path") or "")
    tag = raw.get("tag") if isinstance(raw.get("tag"), str) else ""
    pod, namespace, container, container_id = (
        k8s.get("pod_name"),
        k8s.get("namespace_name"),
        k8s.get("container_name"),
        k8s.get("docker_id") or docker.get("container_id") or k8s.get("container_id"),
    )
    for where in (str(raw.get("file") or raw.get("path") or raw.get("filename") or ""), tag, path):
        named = _CONTAINERS_FILE.search(where)
        pods = _PODS_FILE.search(where) if named is None else None
        if named is not None:
            pod, namespace = pod or named[1], namespace or named[2]
            container, container_id = container or named[3], container_id or named[4]
        elif pods is not None:
            namespace, pod, container = namespace or pods[1], pod or pods[2], container or pods[4]
        if pod:
            break
    doc: dict[str, Any] = {}
    if container or container_id:
        part = {k: v for k, v in (("name", container), ("id", container_id)) if isinstance(v, str) and v}
        image = _container_ref(k8s.get("container_image"))
        if image:
            part["image"] = image
        doc["container"] = part
    if pod or namespace:
        orchestrator: dict[str, Any] = {"type": "kubernetes"}
        if namespace:
            orchestrator["namespace"] = namespace
        if pod:
            orchestrator["resource"] = {"type": "pod", "name": pod}
            if isinstance(k8s.get("pod_id"), str):
                orchestrator["resource"]["id"] = k8s["pod_id"]
        cluster = k8s.get("cluster_name") or raw.get("cluster_name")
        if isinstance(cluster, str) and cluster:
            orchestrator["cluster"] = {"name": cluster}
        doc["orchestrator"] = orchestrator
        kube: dict[str, Any] = {"pod": {"name": pod}} if pod else {}
        if namespace:
            kube["namespace"] = namespace
        if isinstance(k8s.get("labels"), dict) and k8s["labels"]:
            kube["labels"] = k8s["labels"]
        doc["kubernetes"] = kube
    if isinstance(k8s.get("host"), str) and k8s["host"]:
        doc["host"] = {"name": k8s["host"]}
    key = path.split("://", 1)[1].split("/", 1)[-1] if "://" in path else path
    context = {
        "key": key,
        "namespace": namespace,
        "pod": pod,
        "container": container,
        "labels": k8s.get("labels"),
        "tag": tag,
    }
    return doc, context


def _line(raw: dict[str, Any]) -> str | dict[str, Any]:
    """The app's line: `log`; else fluentd's cri-parser `message` when that is all the record holds
    besides the shipper's keys; else the app's JSON keys fluent-bit merged into the record (Keep_Log Off)."""
    log = raw.get("log")
    if isinstance(log, str | dict):
        return log
    rest = {k: v for k, v in raw.items() if k not in _SHIPPER_KEYS}
    if isinstance(rest.get("message"), str) and rest.keys() - {"time"} == {"message"}:
        return rest["message"]
    return rest


class K8sContainerLogType:
    dataset = DATASET
    description = "Kubernetes container logs: Docker json-file, CRI, fluentd/fluent-bit kubernetes records"
    key_pattern = re.compile(
        r"(?:^|/)var/log/(?:containers|pods)/|(?:^|[/.])kube(?:rnetes)?\.var\.log\.(?:containers|pods)\."
    )
    # fluentd's sniffer claims every out_file line; a kubernetes record in one is ours, so sniff first.
    sniff_first = True

    def sniff(self, head: bytes) -> bool:
        lines = head_lines(head, 1)
        if not lines:
            return False
        line = lines[0]
        if _CRI.match(line):
            return True
        out_file = _OUT_FILE.match(line)
        try:
            obj = orjson.loads(out_file[3] if out_file else line)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict):
            return False
        k8s = obj.get("kubernetes")
        if isinstance(k8s, dict) and ("pod_name" in k8s or "namespace_name" in k8s):
            return True
        return isinstance(obj.get("log"), str | dict) and obj.get("stream") in _STREAMS

    def records(self, stream: BinaryIO, options: ParseOptions) -> Iterator[Record | BadRecord | Skipped]:
        return _joined(stream, options.max_record_bytes)

    def to_ecs(self, raw: Any, options: ParseOptions) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            raise RecordError(f"container record is a JSON {type(raw).__name__}, not an object")
        envelope, context = _context(raw, options)
        doc, dataset = app_doc(_line(raw), context, options)
        if "@timestamp" not in doc:
            for key in ("time", "date", "@timestamp"):
                timestamp = _time(raw.get(key))
                if timestamp:
                    doc["@timestamp"] = timestamp
                    break
            else:
                raise RecordError("container record has no usable time (runtime `time`, shipper `date`, or the line's)")
        for name, part in envelope.items():
            if name == "host":
                doc.setdefault("host", {}).setdefault("name", part["name"])
            else:
                doc[name] = part if not isinstance(doc.get(name), dict) else {**doc[name], **part}
        if raw.get("stream") in _STREAMS:
            doc.setdefault("log", {})["iostream"] = raw["stream"]
        doc.setdefault("event", {}).setdefault("kind", "event")
        doc["event"]["dataset"] = dataset
        return doc


LOG_TYPE = K8sContainerLogType()
