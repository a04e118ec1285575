"""The offline evaluator: the reference meaning of the IR, in plain Python over event dicts.

It powers ``siem rules test`` (no store needed) and is the oracle the DuckDB and OpenSearch engines
are tested against. Semantics are documented in ``siem.detect.ir``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from siem.detect import ir


def values(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted path, lists flattened at every step (null and hollow objects are no value)."""
    current: list[Any] = [doc]
    for key in path.split("."):
        if key == ir.DESCENDANTS:
            return [v for v in _descendants(current) if v is not None]
        nxt: list[Any] = []
        for node in _flatten(current):
            if isinstance(node, dict) and key in node:
                nxt.append(node[key])
        current = nxt
        if not current:
            return []
    return [v for v in _flatten(current) if v is not None and not (isinstance(v, dict) and _hollow(v))]


def _hollow(value: Any) -> bool:
    """An object or list with no scalar anywhere below it (only nulls, empty lists and objects)."""
    if isinstance(value, dict):
        return all(_hollow(v) for v in value.values())
    if isinstance(value, list):
        return all(_hollow(v) for v in value)
    return value is None


def _descendants(items: list[Any]) -> Iterator[Any]:
    """Every scalar below: the values of a whole-payload search."""
    for item in items:
        if isinstance(item, list):
            yield from _descendants(item)
        elif isinstance(item, dict):
            yield from _descendants(list(item.values()))
        else:
            yield item


def _flatten(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


@lru_cache(maxsize=4096)
def wildcard_regex(parts: tuple[ir.Part, ...], cased: bool) -> re.Pattern[str]:
    out = []
    for part in parts:
        if isinstance(part, ir.AnyChars):
            out.append(".*")
        elif isinstance(part, ir.OneChar):
            out.append(".")
        else:
            out.append(re.escape(part if cased else part.lower()))
    return re.compile("".join(out), re.DOTALL)


@lru_cache(maxsize=4096)
def _regex(pattern: str, flags: str) -> re.Pattern[str]:
    value = 0
    for flag, bit in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if flag in flags:
            value |= bit
    return re.compile(pattern, value)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    return None


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def matches(node: ir.Node, doc: dict[str, Any]) -> bool:
    """Does one event satisfy the condition?"""
    if isinstance(node, ir.And):
        return all(matches(a, doc) for a in node.args)
    if isinstance(node, ir.Or):
        return any(matches(a, doc) for a in node.args)
    if isinstance(node, ir.Not):
        return not matches(node.arg, doc)
    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.Keyword):
        return matches(node.as_fields(), doc)
    if isinstance(node, ir.Str):
        rx = wildcard_regex(node.parts, node.cased)
        for v in values(doc, node.field):
            text = ir.text_form(v)
            if text is not None and rx.fullmatch(text if node.cased else text.lower()):
                return True
        return False
    if isinstance(node, ir.Num):
        for v in values(doc, node.field):
            n = _number(v)
            if n is not None and _compare(n, node.op, node.value):
                return True
        return False
    if isinstance(node, ir.Regex):
        rx = _regex(node.pattern, node.flags)
        return any((t := ir.text_form(v)) is not None and rx.search(t) for v in values(doc, node.field))
    if isinstance(node, ir.Cidr):
        net = ipaddress.ip_network(node.network)
        ips = (_ip(v) for v in values(doc, node.field))
        return any(ip is not None and ip.version == net.version and ip in net for ip in ips)
    if isinstance(node, ir.Exists):
        return bool(values(doc, node.field))
    if isinstance(node, ir.FieldRef):
        left = [t.lower() for v in values(doc, node.field) if (t := ir.text_form(v)) is not None]
        right = [t.lower() for v in values(doc, node.other) if (t := ir.text_form(v)) is not None]
        if node.mode == "startswith":
            return any(a.startswith(b) for a in left for b in right)
        if node.mode == "endswith":
            return any(a.endswith(b) for a in left for b in right)
        return bool(set(left) & set(right))
    raise TypeError(f"not an IR node: {node!r}")


def _compare(a: int | float, op: str, b: int | float) -> bool:
    return {"eq": a == b, "lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]
