"""S3 objects downloaded one ahead: the next object's GET runs in a thread while this one is parsed.

A backfill of many small objects (CloudTrail delivers one every few minutes per region) spends as much
time waiting for each GET as parsing it; with one download ahead the wait overlaps the parsing. Only an
object of known size up to READ_AHEAD_BYTES is fetched ahead (held whole in memory: one at a time, so
memory stays bounded); a bigger one, or a local file, is streamed when its turn comes, as before. A
download that fails raises the same exception when the object is opened, where the pipeline expects it.
With `--workers N` each parse process downloads its own objects, N at once; this serves one process.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import BinaryIO

from siem.sources import SourceObject

READ_AHEAD_BYTES = 64 << 20


def _fetch(obj: SourceObject) -> bytes:
    stream = obj.opener()
    try:
        return stream.read()
    finally:
        stream.close()


def _ahead(obj: SourceObject, limit: int) -> bool:
    return obj.path.startswith("s3://") and obj.size is not None and obj.size <= limit


def read_ahead(objects: Iterable[SourceObject], limit: int = READ_AHEAD_BYTES) -> Iterator[SourceObject]:
    """The objects, each S3 one of at most limit bytes downloaded while the one before is processed."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-read-ahead") as pool:
        pending: tuple[SourceObject, Future[bytes] | None] | None = None
        for obj in objects:
            if not _ahead(obj, limit):  # nothing to download ahead: handed over now, not one object late
                if pending is not None:
                    yield _from(*pending)
                    pending = None
                yield obj
                continue
            fetch = pool.submit(_fetch, obj)
            if pending is not None:
                yield _from(*pending)
            pending = (obj, fetch)
        if pending is not None:
            yield _from(*pending)


def _from(obj: SourceObject, fetch: Future[bytes] | None) -> SourceObject:
    if fetch is None:
        return obj

    held = [fetch]  # handed over once: the bytes are not kept alive by the ledger's record of the object

    def opener() -> BinaryIO:
        if not held:
            return obj.opener()
        return io.BytesIO(held.pop().result())  # a failed download raises here, at open time

    return replace(obj, opener=opener)
