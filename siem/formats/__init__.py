"""Log types: one module per type in this package, each exposing ``LOG_TYPE``.

Discovery is by module scan so that adding a log type means adding one file (plus samples and
tests) — no central list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from siem.formats.base import LogType

_INFRASTRUCTURE = {"base", "decompress", "routing"}


@cache
def registry() -> dict[str, LogType]:
    """All log types by dataset name, in a stable order."""
    found: dict[str, LogType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _INFRASTRUCTURE or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        log_type = getattr(module, "LOG_TYPE", None)
        if log_type is None:
            continue
        if log_type.dataset in found:
            raise RuntimeError(f"two log types claim dataset {log_type.dataset!r}")
        found[log_type.dataset] = log_type
    return found


def get(dataset: str) -> LogType:
    try:
        return registry()[dataset]
    except KeyError:
        known = ", ".join(registry())
        raise KeyError(f"unknown log type {dataset!r}; known types: {known}") from None
