"""The cyclic garbage collector set for loading: young collections rare enough that the objects a
load keeps alive for a while are not walked again and again.

CPython starts a young collection every 700 new container objects. Mapping allocates many (a
reference-path CloudTrail event is ~150 dicts and lists, and its framing decodes a window of records
at once), and each collection walks whatever of them is still alive. Client CPU of a CloudTrail load
into the real node, per 1,000 events: while batches held document trees, 0.155-0.166 s with the
default, 0.118 at ``GEN0`` and 0.107-0.114 with the collector off; since batches hold only bytes
(`Event.compact`), 0.095-0.115 with the default and 0.090-0.097 at ``GEN0``. Mapped documents hold
no reference cycles, so this delays no memory that matters; a cycle left by anything else is still
collected after ``GEN0`` allocations.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0 = 50_000  # allocations between young collections (CPython's default: 700)
OLDER = 20  # young collections per next-generation one (default 10)


@contextmanager
def batch_gc() -> Iterator[None]:
    """Collector thresholds for batch work while the block runs, the caller's restored after (the
    pipeline also runs inside other programs: tests, the Lambda handler)."""
    before = gc.get_threshold()
    gc.set_threshold(GEN0, OLDER, OLDER)
    try:
        yield
    finally:
        gc.set_threshold(*before)
