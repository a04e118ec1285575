"""What the hostile-input (Hypothesis) tests of the JSON and syslog log types share.

Each of them damages a sample (cuts, noise, a wrong-typed or huge field), runs it through the real
pipeline and checks what must hold for any input. The settings, the arbitrary JSON values and those
checks live here so that every log type is held to the same standard.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from oracle import parse_file

from siem.formats.base import ParseOptions
from siem.pipeline import DeadLetter

# One example may parse megabytes (a huge field, a whole sample): no deadline, no too_slow check.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON value a producer could write where a field should be, nested a little.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def parse_bytes(
    data: bytes, dataset: str, options: ParseOptions | None = None
) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Events and dead letters of `data` as one file of `dataset`, through the same code as `siem parse`.

    A directory of its own per call: Hypothesis runs the test body many times in one pytest test,
    which has one tmp_path.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input"
        path.write_bytes(data)
        return parse_file(path, dataset, options)


def assert_well_formed(events: list[dict[str, Any]], letters: list[DeadLetter], dataset: str | None = None) -> None:
    """What holds for any input: every event has a UTC timestamp and a dataset (`dataset`, when the
    log type never hands records to another), and every dead letter says why."""
    for doc in events:
        found = doc["event"]["dataset"]
        assert doc["@timestamp"].endswith("Z"), doc["@timestamp"]
        assert found and (dataset is None or found == dataset), found
    assert all(letter.reason for letter in letters), letters
