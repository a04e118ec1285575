"""Install the index templates in index_templates/ (component templates first, then composable ones).

PUT is idempotent, so `siem templates install` can run on every deploy. File names decide the
template names: ``component-<name>.json`` → component template ``<prefix>-<name>``, any other
``<name>.json`` → index template ``<prefix>-<name>``; ``{prefix}`` inside a file is the index prefix.

A template whose ``_meta.create_index`` names an index (the dead-letter and alert indices) has that
index created here, at install time: an index created lazily by the first write can fail at the
cluster's shard limit exactly when it is needed most (the dead letters of a run that hit the limit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "index_templates"


def load_templates(prefix: str, directory: Path = TEMPLATE_DIR) -> tuple[dict[str, Any], dict[str, Any]]:
    """(component templates, index templates) by name, with the prefix filled in."""
    if not directory.is_dir():
        raise FileNotFoundError(f"index templates folder {directory} is missing")
    components: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    for file in sorted(directory.glob("*.json")):
        body = json.loads(file.read_text(encoding="utf-8").replace("{prefix}", prefix))
        if file.stem.startswith("component-"):
            components[f"{prefix}-{file.stem.removeprefix('component-')}"] = body
        else:
            indexes[f"{prefix}-{file.stem}"] = body
    return components, indexes


def install_templates(client: Any, prefix: str) -> list[str]:
    """PUT every template, then create the indices templates ask for; returns the template names."""
    components, indexes = load_templates(prefix)
    for name, body in components.items():
        client.cluster.put_component_template(name=name, body=body)
    for name, body in indexes.items():
        client.indices.put_index_template(name=name, body=body)
    for body in indexes.values():
        index = body.get("_meta", {}).get("create_index")
        if index:
            _create_index(client, index)
    return [*components, *indexes]


def _create_index(client: Any, index: str) -> None:
    """Create an index (its template gives settings and mappings) unless it exists; a refusal at the
    shard limit is one clear error naming the setting to change."""
    from opensearchpy.exceptions import TransportError

    from siem.sinks.index_layout import shard_limit_message
    from siem.sinks.opensearch import ShardLimitReached

    if client.indices.exists(index=index):
        return
    try:
        client.indices.create(index=index)
    except TransportError as exc:
        if exc.error == "resource_already_exists_exception":  # another loader created it meanwhile
            return
        message = shard_limit_message(index, str(exc.info) if exc.info else str(exc))
        if message:
            raise ShardLimitReached(message) from None
        raise
