"""A load runs with the collector thresholds of siem/gc_batch.py and gives the caller's back.

The thresholds are a measured speed choice (the module's docstring); what a test can hold is that a
run really has them while it parses and writes, and that a program calling `pipeline.run` (the
Lambda handler, the tests) gets its own settings back, also when the run raises."""

from __future__ import annotations

import gc
import io
from functools import partial

import pytest

from siem.gc_batch import GEN0, OLDER
from siem.pipeline import DeadLetter, Event, run
from siem.sources import SourceObject

LINE = b"2 123456789012 eni-0a1b2c3d4e5f60718 198.51.100.7 10.0.1.15 40000 443 6 1 44 1763633700 1763633701 ACCEPT OK\n"


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.thresholds: list[tuple[int, int, int]] = []
        self.fail = fail

    def write(self, events: list[Event]) -> list[DeadLetter]:
        self.thresholds.append(gc.get_threshold())
        if self.fail:
            raise RuntimeError("store down")
        return []

    def write_dead_letters(self, letters: list[DeadLetter]) -> None:
        pass


def _objects() -> list[SourceObject]:
    return [SourceObject(path="f.log", identity="f.log", opener=partial(io.BytesIO, LINE * 10))]


@pytest.fixture
def callers_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_run_writes_under_the_batch_thresholds_and_restores_the_callers(callers_thresholds) -> None:
    sink = RecordingSink()
    summary = run(_objects(), sink, dataset="aws.vpcflow", batch_size=4)
    assert summary.written == 10
    assert sink.thresholds == [(GEN0, OLDER, OLDER)] * 3
    assert gc.get_threshold() == (700, 10, 10)


def test_a_run_that_raises_still_restores_the_callers_thresholds(callers_thresholds) -> None:
    sink = RecordingSink(fail=True)
    with pytest.raises(RuntimeError, match="store down"):
        run(_objects(), sink, dataset="aws.vpcflow", batch_size=4)
    assert sink.thresholds == [(GEN0, OLDER, OLDER)]
    assert gc.get_threshold() == (700, 10, 10)
