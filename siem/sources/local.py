"""Local files and folders (what an analyst has after `aws s3 sync`, or a host's /var/log)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from siem.sources import SourceObject


def local_objects(path: str | Path) -> Iterator[SourceObject]:
    """Every regular file under path (or path itself), in sorted order; hidden files skipped."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    files = (
        [root]
        if root.is_file()
        else sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    )
    for file in files:
        resolved = file.resolve()
        yield SourceObject(
            path=str(file),
            identity=f"file://{resolved}",
            opener=partial(open, resolved, "rb"),
            size=resolved.stat().st_size,
        )
