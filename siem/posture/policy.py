"""Just enough IAM policy reading to answer "who may delete from / write to this bucket?".

Statements are matched on Action/NotAction and Resource/NotResource with IAM wildcards (``*``,
``?``); an explicit Deny that matches wins. Conditions are not evaluated: a conditional grant is
treated as a grant, because the question is whether the door exists, not whether it is open today.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import unquote


def document(raw: Any) -> dict[str, Any]:
    """A policy document as a dict: boto3 gives IAM documents decoded, bucket policies as JSON text."""
    if isinstance(raw, dict):
        return raw
    text = str(raw)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(unquote(text))


def statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stmts = doc.get("Statement") or []
    yield from [stmts] if isinstance(stmts, dict) else stmts


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=1024)
def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcard)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return bool(_pattern(pattern, ignore_case).match(value))


def _covers(stmt: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in stmt:
        action_ok = any(wildcard_match(a, action, ignore_case=True) for a in _as_list(stmt["Action"]))
    else:
        action_ok = not any(wildcard_match(a, action, ignore_case=True) for a in _as_list(stmt.get("NotAction")))
    if "Resource" in stmt:
        resource_ok = any(wildcard_match(r, resource) for r in _as_list(stmt["Resource"]))
    elif "NotResource" in stmt:
        resource_ok = not any(wildcard_match(r, resource) for r in _as_list(stmt["NotResource"]))
    else:  # bucket policies may omit nothing, but a resource-less statement applies to its resource
        resource_ok = True
    return action_ok and resource_ok


def allowing(doc: dict[str, Any], action: str, resource: str) -> list[dict[str, Any]]:
    """The Allow statements granting ``action`` on ``resource``; none when an explicit Deny covers it."""
    if any(
        s.get("Effect") == "Deny" and _covers(s, action, resource) and not s.get("Condition") for s in statements(doc)
    ):
        return []
    return [s for s in statements(doc) if s.get("Effect") == "Allow" and _covers(s, action, resource)]


def principals(stmt: dict[str, Any]) -> list[str]:
    """The AWS principals of a bucket-policy statement (``*`` for anyone)."""
    principal = stmt.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS"))]
    return []


def label(stmt: dict[str, Any], index: int) -> str:
    return f"statement {stmt['Sid']!r}" if stmt.get("Sid") else f"statement #{index + 1}"


def object_arns(bucket: str, doc: dict[str, Any]) -> list[str]:
    """Object ARNs in ``bucket`` to ask a policy about: a generic key, plus one inside every key pattern
    the policy names for this bucket (so a grant on ``bucket/fluentd/*`` is seen as a grant in the bucket)."""
    prefix = f"arn:aws:s3:::{bucket}/"
    probes = [f"{prefix}AWSLogs/any-object"]
    for stmt in statements(doc):
        for pattern in _as_list(stmt.get("Resource")):
            if isinstance(pattern, str) and pattern.startswith(prefix):
                concrete = pattern.replace("*", "x").replace("?", "x")
                probes.append(concrete if concrete != prefix else f"{concrete}x")
    return list(dict.fromkeys(probes))
