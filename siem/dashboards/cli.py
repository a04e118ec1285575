"""`siem dashboards install|export`: put the saved objects into Dashboards, and bring them back for review.

install imports ``dashboards/siem.ndjson`` with overwrite (re-running it is how an update ships) and
prints Dashboards' verdict on every object; export fetches the same objects and writes them in the
same canonical form, so ``git diff dashboards/`` shows exactly what someone changed in the UI (to be
carried into ``siem/dashboards/spec.py``). Exit codes: 0 every object imported, 1 some object was
refused (listed), 2 a problem to fix first (URL, credentials, unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from siem.cli_common import UserError
from siem.config import Settings
from siem.dashboards.build import NDJSON, dumps, sort_key, to_ndjson

DEFAULT_PREFIX = "siem"
# Attributes holding JSON as a string: re-serialised canonically so an untouched object exports unchanged.
_JSON_ATTRIBUTES = ("visState", "uiStateJSON", "panelsJSON", "optionsJSON", "fieldFormatMap")
# Bookkeeping Dashboards adds on export; not part of what a reviewer should see change.
_VOLATILE = ("updated_at", "version", "namespaces", "workspaces", "originId", "permissions")


def register(sub: Any) -> None:
    p = sub.add_parser("dashboards", help="install or export the OpenSearch Dashboards saved objects")
    actions = p.add_subparsers(dest="dashboards_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="Dashboards base URL (default: $SIEM_DASHBOARDS_URL or dashboards.url)")
    common.add_argument("--tenant", help="security plugin tenant (securitytenant header), e.g. global")
    install = actions.add_parser("install", parents=[common], help="import them (overwrite), report each object")
    install.add_argument("--file", default=str(NDJSON), help=f"saved objects to import (default: {NDJSON})")
    install.set_defaults(func=cmd_install)
    export = actions.add_parser("export", parents=[common], help="write them back from Dashboards for review in git")
    export.add_argument("--out", default=str(NDJSON.parent), help=f"folder for siem.ndjson (default: {NDJSON.parent})")
    export.set_defaults(func=cmd_export)


def _read(path: str) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None
    try:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise UserError(f"{path}: not NDJSON ({exc})") from None
    objects = [o for o in lines if isinstance(o, dict) and "exportedCount" not in o]  # a UI export's summary line
    if any(not {"type", "id", "attributes"} <= o.keys() for o in objects):
        raise UserError(f"{path}: every line must be a saved object with type, id and attributes")
    return objects


def retitle(objects: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    """Index patterns for another index prefix: ``siem-events-*`` becomes ``<new>-events-*``."""
    if old == new:
        return objects
    out = []
    for obj in objects:
        title = obj.get("attributes", {}).get("title", "")
        if obj.get("type") == "index-pattern" and title.startswith(f"{old}-"):
            obj = {**obj, "attributes": {**obj["attributes"], "title": new + title[len(old) :]}}
        out.append(obj)
    return out


def canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """An exported object in the form build.py writes: no bookkeeping, no field list, sorted JSON strings."""
    obj = {k: v for k, v in obj.items() if k not in _VOLATILE}
    attributes = dict(obj.get("attributes") or {})
    if obj.get("type") == "index-pattern":
        attributes.pop("fields", None)  # the field list is read from the cluster, not reviewed
    for key in _JSON_ATTRIBUTES:
        if isinstance(attributes.get(key), str):
            attributes[key] = _redump(attributes[key])
    meta = attributes.get("kibanaSavedObjectMeta")
    if isinstance(meta, dict) and isinstance(meta.get("searchSourceJSON"), str):
        attributes["kibanaSavedObjectMeta"] = {**meta, "searchSourceJSON": _redump(meta["searchSourceJSON"])}
    obj["attributes"] = attributes
    return obj


def _redump(text: str) -> str:
    try:
        return dumps(json.loads(text))
    except ValueError:
        return text


def cmd_install(args: argparse.Namespace, settings: Settings) -> int:
    from siem.dashboards.client import DashboardsClient

    client = DashboardsClient(settings, args.url, args.tenant)
    objects = retitle(_read(args.file), DEFAULT_PREFIX, settings.opensearch["index_prefix"])
    results = client.import_ndjson(to_ndjson(objects).encode("utf-8"), Path(args.file).name)
    answered = {(r.type, r.id) for r in results}
    for r in results:
        print(f"{'ok' if r.ok else 'FAILED':<7}{r.type:<14}{r.id:<36}{r.detail}  {r.title}")
    silent = [o for o in objects if (o["type"], o["id"]) not in answered]
    for o in silent:
        print(f"{'FAILED':<7}{o['type']:<14}{o['id']:<36}no answer from Dashboards for this object")
    failed = sum(not r.ok for r in results) + len(silent)
    where = client.shown_url + (f" (tenant {args.tenant})" if args.tenant else "")
    print(f"imported {len(objects) - failed} of {len(objects)} objects into {where}", file=sys.stderr)
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from siem.dashboards.client import DashboardsClient

    client = DashboardsClient(settings, args.url, args.tenant)
    wanted = [{"type": o["type"], "id": o["id"]} for o in _read(str(NDJSON))]
    exported = client.export(wanted)
    objects = retitle([canonical(o) for o in exported], settings.opensearch["index_prefix"], DEFAULT_PREFIX)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / NDJSON.name).write_text(to_ndjson(sorted(objects, key=sort_key)), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: {exc.strerror or exc}") from None
    print(f"exported {len(objects)} objects to {out / NDJSON.name}; `git diff` shows what changed", file=sys.stderr)
    return 0
