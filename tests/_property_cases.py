"""What the hostile-input tests of the log types share.

Each of them damages a sample (cuts, noise, a wrong-typed or huge field, a garbage line between
good ones), runs it through the real pipeline and checks what must hold for any input. The
settings, the arbitrary JSON values, the damage and those checks live here so that every log type
is held to the same standard.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from oracle import parse_bytes

from siem.formats.base import ParseOptions
from siem.pipeline import DeadLetter

Parsed = tuple[list[dict[str, Any]], list[DeadLetter]]

# One example may parse megabytes (a huge field, a whole sample): no deadline, no too_slow check.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _json_values(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Scalars (with `numbers`) and lists and objects of them, nested a little."""
    return st.recursive(
        st.none() | st.booleans() | numbers | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


# Any JSON value a producer could write where a field should be.
JSON_VALUES = _json_values(st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False))
# The same, plus what a lax writer such as Python's json module also puts out: NaN, Infinity and
# integers past 64 bits (write them with `json.dumps`; orjson refuses them).
LAX_JSON_VALUES = _json_values(st.integers() | st.floats(allow_nan=True))


def _damage(data: bytes, cut: int, noise: bytes, at: int, huge: bytes) -> bytes:
    data = data[:cut]
    return data[:at] + noise + huge + data[at:]


def damaged(data: bytes, huge: list[bytes]) -> st.SearchStrategy[bytes]:
    """`data` cut short anywhere, with up to 64 random bytes and one of `huge` (a field grown past
    any limit, b"" for none) inserted anywhere: torn writes, junk and outsized records at once."""
    return st.builds(
        _damage,
        st.just(data),
        cut=st.integers(min_value=0, max_value=len(data)),
        noise=st.binary(max_size=64),
        at=st.integers(min_value=0, max_value=len(data)),
        huge=st.sampled_from(huge),
    )


def assert_well_formed(events: list[dict[str, Any]], letters: list[DeadLetter], dataset: str | None = None) -> None:
    """What holds for any input: every event has a UTC timestamp and a dataset (`dataset`, when the
    log type never hands records to another), and every dead letter says why."""
    for doc in events:
        found = doc["event"]["dataset"]
        assert doc["@timestamp"].endswith("Z"), doc["@timestamp"]
        assert found and (dataset is None or found == dataset), found
    assert all(letter.reason for letter in letters), letters


def parse_retyped_and_torn(record: dict[str, Any], line: bytes, cut: int, noise: bytes, dataset: str) -> Parsed:
    """Three JSON lines parsed as `dataset` and held to assert_well_formed: `record` as Python's json
    writes it (whatever types it holds, NaN and integers past 64 bits included), `line` torn after
    `cut` bytes with `noise` appended, then `line` intact."""
    data = json.dumps(record).encode() + b"\n" + line[:cut] + noise + b"\n" + line + b"\n"
    events, letters = parse_bytes(data, dataset)
    assert_well_formed(events, letters, dataset)
    return events, letters


def dead_letter_between(
    good: str | bytes,
    bad: str | bytes,
    dataset: str,
    options: ParseOptions | None = None,
    *,
    after: str | bytes | None = None,
) -> DeadLetter:
    """The dead letter of the `bad` line between `good` and `after` (`good` again by default).

    Asserts that the bad line costs neither neighbour its event and becomes one dead letter at its
    own byte offset that says why; returns it for the checks only one log type makes.
    """
    lines = [line.encode() if isinstance(line, str) else line for line in (good, bad, good if after is None else after)]
    events, letters = parse_bytes(b"".join(line + b"\n" for line in lines), dataset, options)
    assert len(events) == 2 and len(letters) == 1, (events, letters)
    assert letters[0].offset == len(lines[0]) + 1
    assert letters[0].reason
    return letters[0]
