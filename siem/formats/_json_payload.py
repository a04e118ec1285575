"""Reading fields of decoded JSON records whose producers do not promise types.

CloudTrail, Kubernetes audit and CloudWatch Logs records are JSON written by many producer
versions: a field documented as a string can be missing, null, empty or an object. These helpers
are the one rule for "take it only if it is a usable string" and "a flat_object field is always
an object", so the JSON log types agree on what they keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def nonempty_str(value: Any) -> str | None:
    """The value if it is a non-empty string: anything else carries nothing we can index as keyword."""
    return value if isinstance(value, str) and value else None


def strings(source: Mapping[str, Any], fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The non-empty string values of ``source`` as {target: value} for each (key, target) in
    ``fields``, in that order: producers write null or "" for absent values, and an object where a
    string is mapped would reject the whole document."""
    return {target: value for key, target in fields if isinstance(value := source.get(key), str) and value}


def as_object(value: Any) -> dict[str, Any]:
    """A flat_object field's value: an object as it is, anything else as {"value": ...}, since a
    flat_object field rejects a document whose value there is a scalar or a list."""
    return value if isinstance(value, dict) else {"value": value}
