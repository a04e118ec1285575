"""Install the index templates in index_templates/ (component templates first, then composable ones).

PUT is idempotent, so `siem templates install` can run on every deploy. File names decide the
template names: ``component-<name>.json`` → component template ``<prefix>-<name>``, any other
``<name>.json`` → index template ``<prefix>-<name>``; ``{prefix}`` inside a file is the index prefix.
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
    """PUT every template; returns the names installed."""
    components, indexes = load_templates(prefix)
    for name, body in components.items():
        client.cluster.put_component_template(name=name, body=body)
    for name, body in indexes.items():
        client.indices.put_index_template(name=name, body=body)
    return [*components, *indexes]
