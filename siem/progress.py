"""Progress of a long command (load, worker, parse): a live line on a terminal, log lines with -v.

On a TTY, stderr shows one tqdm line (objects done of the total when it is known, ETA, events/s,
bytes read, dead letters), redrawn from a background thread so a single huge object still moves it.
When stderr is not a terminal (cron, CI, a pipe into a log collector) nothing is drawn; with -v the
same numbers are logged at INFO every LOG_SECONDS as key=value pairs, plus a last line at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

from siem.pipeline import RunSummary
from siem.sources import SourceObject

log = logging.getLogger("siem.progress")

REDRAW_SECONDS = 0.5
LOG_SECONDS = 10.0


class _CountingReader:
    """An object's byte stream, counting what is read (compressed bytes, as stored)."""

    def __init__(self, inner: BinaryIO, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._progress.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._inner.close()


class Progress:
    """Reads the counters of a run (the RunSummary the pipeline fills) and shows or logs them."""

    def __init__(
        self, command: str, summary: RunSummary, total: int | None = None, stream: TextIO | None = None
    ) -> None:
        self.command = command
        self.summary = summary
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self.bytes_read = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None

    @property
    def live(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def objects(self, objects: Iterable[SourceObject]) -> Iterator[SourceObject]:
        """The objects, each counting the bytes read from it; one is done when the next is asked for."""
        for obj in objects:
            opener = obj.opener
            yield dataclasses.replace(obj, opener=lambda opener=opener: _CountingReader(opener(), self))
            self.done += 1

    def __enter__(self) -> Progress:
        if self.live:
            from tqdm import tqdm  # only a terminal draws: a cron job or a pipe does not import it

            self._bar = tqdm(
                total=self.total,
                unit="obj",
                desc=self.command,
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
            )
            self._thread = threading.Thread(target=self._run, args=(REDRAW_SECONDS, self._draw), daemon=True)
        elif log.isEnabledFor(logging.INFO):
            self._thread = threading.Thread(target=self._run, args=(LOG_SECONDS, self._log), daemon=True)
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._draw()
            self._bar.close()
        elif log.isEnabledFor(logging.INFO):
            self._log()

    def _run(self, every: float, show: Any) -> None:
        while not self._stop.wait(every):
            show()

    def numbers(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        numbers: dict[str, Any] = {
            "objects": self.done,
            "total": self.total,
            "events": self.summary.events,
            "events_per_s": round(self.summary.events / elapsed, 1),
            "bytes": self.bytes_read,
            "dead_letters": self.summary.dead_lettered,
            "skipped": self.summary.objects_skipped,
            "eta_s": None,
        }
        if self.total and self.done:
            numbers["eta_s"] = round(elapsed / self.done * (self.total - self.done), 1)
        return numbers

    def _draw(self) -> None:
        n = self.numbers()
        self._bar.n = n["objects"]
        self._bar.set_postfix_str(
            f"events={n['events']} ({n['events_per_s']:.0f}/s) read={_size(n['bytes'])} "
            f"dead_letters={n['dead_letters']}",
            refresh=False,
        )
        self._bar.refresh()

    def _log(self) -> None:
        n = self.numbers()
        log.info("progress command=%s %s", self.command, " ".join(f"{k}={v}" for k, v in n.items() if v is not None))


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"
