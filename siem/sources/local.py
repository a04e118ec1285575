"""Local files and folders (what an analyst has after `aws s3 sync`, or a host's /var/log)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from siem.sources import SourceObject
from siem.sources.selection import Selection


def local_objects(path: str | Path, selection: Selection | None = None) -> Iterator[SourceObject]:
    """Every regular file under path (or path itself), in sorted order; hidden files skipped. A folder's
    files go through the selection (--include/--exclude on the path relative to the folder, --since/
    --until on the date in its folder names); a file named on its own is always taken.

    log.file.path is the absolute path (a relative one means nothing once the event is in the store);
    the version the ledger compares is size and modification time."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    selection = selection or Selection()
    if root.is_file():
        files = [root]
    else:
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and selection.admits(p.relative_to(root).as_posix(), os.path.abspath(p.parent))
        )
    for file in files:
        resolved = file.resolve()
        stat = resolved.stat()
        yield SourceObject(
            path=os.path.abspath(file),
            identity=f"file://{resolved}",
            opener=partial(open, resolved, "rb"),
            size=stat.st_size,
            version=f"{stat.st_size}-{stat.st_mtime_ns}",
        )
