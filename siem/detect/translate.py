"""pySigma's parsed condition (after our field pipeline) → the detection IR.

pySigma has already applied modifiers: ``contains``/``startswith``/``endswith`` are wildcards in a
SigmaString, ``all`` is an AND, ``windash``/``base64offset`` are expansions (an OR), ``re``, ``cidr``,
``exists``, ``fieldref`` and the numeric comparisons are typed values. This module only changes the
shape; it never interprets a value as query syntax, so nothing a rule contains reaches an engine
except as a literal term.
"""

from __future__ import annotations

import ipaddress

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from siem.detect import ir

_CMP = {"LT": "lt", "LTE": "lte", "GT": "gt", "GTE": "gte"}
_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


class Unsupported(ValueError):
    """A construct this project does not run (the message says which)."""


def condition(tree: object) -> ir.Node:
    """Translate one parsed Sigma condition."""
    if isinstance(tree, ConditionAND):
        return ir.all_of([condition(a) for a in tree.args])
    if isinstance(tree, ConditionOR):
        return ir.any_of([condition(a) for a in tree.args])
    if isinstance(tree, ConditionNOT):
        return ir.negate(condition(tree.args[0]))
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        return _value(tree.field, tree.value)
    if isinstance(tree, ConditionValueExpression):
        return _value(None, tree.value)
    raise Unsupported(f"condition element {type(tree).__name__}")


def pattern(value: SigmaString) -> tuple[ir.Part, ...]:
    parts: list[ir.Part] = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            if not parts or parts[-1] != ir.STAR:  # '**' means the same as '*'
                parts.append(ir.STAR)
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append(ir.QMARK)
        elif isinstance(part, str):
            if parts and isinstance(parts[-1], str):
                parts[-1] += part
            else:
                parts.append(part)
        else:
            raise Unsupported(f"placeholder %{getattr(part, 'name', part)}% (placeholders are not expanded)")
    return tuple(parts)


def _value(field: str | None, value: object) -> ir.Node:
    if isinstance(value, SigmaExpansion):
        return ir.any_of([_value(field, v) for v in value.values])
    if field is None:
        if isinstance(value, SigmaString):
            return ir.Keyword(pattern(value), cased=isinstance(value, SigmaCasedString)).as_fields()
        if isinstance(value, SigmaNumber):
            return ir.Keyword((str(value.number),)).as_fields()
        raise Unsupported(f"keyword search with {type(value).__name__}")
    if isinstance(value, SigmaString):
        return ir.Str(field, pattern(value), cased=isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaBool):
        return ir.Str(field, ("true" if value.boolean else "false",))
    if isinstance(value, SigmaNumber):
        return ir.Num(field, "eq", value.number)
    if isinstance(value, SigmaCompareExpression):
        op = _CMP.get(value.op.name)
        if op is None:
            raise Unsupported(f"comparison {value.op.name}")
        return ir.Num(field, op, value.number.number)  # type: ignore[arg-type]
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(sorted(_FLAGS[f] for f in value.flags if f in _FLAGS))
        return ir.Regex(field, str(value.regexp), flags)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            network = ipaddress.ip_network(str(network), strict=False)
        return ir.Cidr(field, str(network))
    if isinstance(value, SigmaExists):
        return ir.Exists(field) if value.exists else ir.negate(ir.Exists(field))
    if isinstance(value, SigmaNull):
        return ir.negate(ir.Exists(field))
    if isinstance(value, SigmaFieldReference):
        if value.starts_with and value.ends_with:
            raise Unsupported("fieldref with both startswith and endswith")
        mode = "startswith" if value.starts_with else "endswith" if value.ends_with else "eq"
        return ir.FieldRef(field, value.field, mode)
    raise Unsupported(f"value type {type(value).__name__}")
