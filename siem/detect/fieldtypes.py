"""The mapped type of a field path, read from the index template (``index_templates/component-ecs.json``).

Engines that compile the IR into a store's query language need to know what a field *is* in the
store: a ``keyword`` is compared byte for byte, an ``ip`` by address, a ``long`` by number, a leaf
under a ``flat_object`` root is a keyword-like value addressed by its path, ``match_only_text`` is
tokenized (not usable for exact string matching; we query its ``wildcard`` sub-field instead).

Paths the template does not list are mapped by its dynamic templates: a string under ``*.ip``
becomes ``ip``, ``*.geo.location`` a ``geo_point``, any other string a ``keyword``. (A JSON number
or boolean in an unlisted path is mapped dynamically as ``long``/``float``/``boolean``: the
template cannot know that, so the OpenSearch engine confirms dynamic paths with ``_field_caps``.)
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from siem.templates import TEMPLATE_DIR

ECS_TEMPLATE = TEMPLATE_DIR / "component-ecs.json"

# OpenSearch type names → the kinds the engines reason about
_KINDS = {
    "keyword": "keyword",
    "constant_keyword": "keyword",
    "wildcard": "wildcard",
    "ip": "ip",
    "long": "long",
    "integer": "long",
    "short": "long",
    "byte": "long",
    "unsigned_long": "long",
    "float": "float",
    "double": "float",
    "half_float": "float",
    "scaled_float": "float",
    "date": "date",
    "date_nanos": "date",
    "boolean": "boolean",
    "flat_object": "flat_object",
    "match_only_text": "match_only_text",
    "text": "match_only_text",
    "geo_point": "geo_point",
    "object": "object",
    "nested": "object",
}


def kind_of(opensearch_type: str) -> str:
    """Our kind for an OpenSearch field type (unknown types are ``other``: never compiled exactly)."""
    return _KINDS.get(opensearch_type, "other")


@dataclass(frozen=True, slots=True)
class FieldType:
    path: str
    kind: str  # keyword | wildcard | ip | long | float | date | boolean | flat_object | match_only_text | object ...
    dynamic: bool = False  # not in the template: mapped by a dynamic template (the live type may differ)
    flat_root: str | None = None  # for a flat_object leaf (or root): the flat_object field
    ignore_above: int | None = None  # keyword values longer than this are not indexed
    exact_subfield: str | None = None  # a keyword/wildcard sub-field with the whole value (for text fields)

    @property
    def is_flat_leaf(self) -> bool:
        return self.flat_root is not None and self.path != self.flat_root


@dataclass(frozen=True, slots=True)
class _Mapping:
    fields: dict[str, dict[str, Any]]  # every declared path → its mapping (objects included)
    flat_roots: tuple[str, ...]
    dynamic_templates: tuple[dict[str, Any], ...]


@lru_cache(maxsize=4)
def _load(path: Path = ECS_TEMPLATE) -> _Mapping:
    body = json.loads(path.read_text(encoding="utf-8"))
    mappings = body["template"]["mappings"]
    fields: dict[str, dict[str, Any]] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            full = f"{prefix}{name}"
            fields[full] = spec
            if "properties" in spec:
                walk(spec["properties"], full + ".")

    walk(mappings.get("properties", {}), "")
    roots = tuple(sorted(p for p, s in fields.items() if s.get("type") == "flat_object"))
    templates = tuple(next(iter(t.values())) for t in mappings.get("dynamic_templates", []))
    return _Mapping(fields, roots, templates)


def flat_root(path: str, template: Path = ECS_TEMPLATE) -> str | None:
    """The flat_object field at or above ``path``, if any."""
    for root in _load(template).flat_roots:
        if path == root or path.startswith(root + "."):
            return root
    return None


@lru_cache(maxsize=4096)
def field_type(path: str, template: Path = ECS_TEMPLATE) -> FieldType:
    """What ``path`` is mapped as by the template (dynamic strings: keyword, ``*.ip``: ip)."""
    mapping = _load(template)
    root = flat_root(path, template)
    if root is not None:
        return FieldType(path, "flat_object", flat_root=root)
    spec = mapping.fields.get(path)
    if spec is not None:
        kind = kind_of(spec.get("type", "object"))
        exact = None
        for sub, sub_spec in (spec.get("fields") or {}).items():
            if sub_spec.get("type") in ("keyword", "wildcard") and kind == "match_only_text":
                exact = f"{path}.{sub}"
        return FieldType(path, kind, ignore_above=spec.get("ignore_above"), exact_subfield=exact)
    parent, _, sub = path.rpartition(".")
    sub_spec = (mapping.fields.get(parent) or {}).get("fields", {}).get(sub)
    if sub_spec is not None:  # a multi-field (``message.wildcard``): what the template maps it as
        return FieldType(path, kind_of(sub_spec.get("type", "keyword")), ignore_above=sub_spec.get("ignore_above"))
    for template_spec in mapping.dynamic_templates:
        if template_spec.get("match_mapping_type", "string") != "string":
            continue
        pattern = template_spec.get("path_match")
        if pattern and not fnmatch.fnmatchcase(path, pattern):
            continue
        target = template_spec["mapping"]
        return FieldType(path, kind_of(target["type"]), dynamic=True, ignore_above=target.get("ignore_above"))
    return FieldType(path, "keyword", dynamic=True)
