"""The cyclic garbage collector set for loading: collections rare enough that a batch's live events
are not scanned again and again.

CPython starts a young collection every 700 new container objects. A reference-path CloudTrail
event is ~150 dicts and lists, and a load keeps a batch of 2,000 of them (and, writing behind, the
batches in flight) alive, so every few events the collector walks objects that are all still in use:
~25% of a CloudTrail load's CPU into OpenSearch measured with the default, none measurable at
``GEN0`` (the same run with the collector off costs as much). Mapped documents hold no reference
cycles, so this delays no memory that matters; a cycle left by anything else is still collected
after ``GEN0`` allocations.
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
