"""Write-behind: a load's batches go to the store on a thread of their own while the next is parsed.

`pipeline.run` uses it when the sink says its writes may run beside the parsing thread's own calls
(``concurrent = True``): the OpenSearch store, whose HTTP client is thread-safe and whose node does
the work while the client waits, and the embedded store, which writes on a DuckDB cursor of its own
(DuckDB releases the GIL, so a statement runs on another core while the next batch is parsed).
What a run promises is unchanged:

* hand-overs reach the store in order — a batch, then its dead letters, then the objects it
  finished are recorded in the ledger, after every write before them returned;
* the first failure stops the writes; it is raised in the parsing thread at its next hand-over or
  at the end, and nothing handed over after it is written or recorded, so a rerun loads those
  objects again (the ledger never runs ahead of the store);
* one hand-over waits while one is written: memory holds at most two batches more than before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Work = TypeVar("Work")


class WriteBehind(Generic[Work]):
    def __init__(self, write: Callable[[Work], None]) -> None:
        self._write = write
        self._queue: queue.Queue[Work | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._abandon = False
        self._thread = threading.Thread(target=self._loop, name="siem-write-behind", daemon=True)
        self._thread.start()

    def hand_over(self, work: Work) -> None:
        """Queue one write; blocks while one waits already. Raises an earlier write's failure."""
        self._raise()
        self._queue.put(work)

    def close(self, abandon: bool = False) -> None:
        """Wait for the writes handed over — or, abandoning, only the one in progress — and raise the
        first failure (not when abandoning: the caller is already raising its own)."""
        self._abandon = abandon
        self._queue.put(None)
        self._thread.join()
        if not abandon:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            if self._error is not None or self._abandon:
                continue  # drained, never written: the objects it finished stay unrecorded
            try:
                self._write(work)
            except BaseException as exc:  # handed to the parsing thread, which raises it
                self._error = exc
