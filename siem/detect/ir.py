"""The detection IR: what a rule means, independent of any engine.

pySigma parses a rule and the processing pipeline maps its fields onto our schema; the result is
translated once into this small tree (``siem.detect.translate``), and every engine compiles *this*
— the offline evaluator, DuckDB SQL and OpenSearch DSL — so there is one meaning to agree on.

Leaf semantics (the reference is ``siem.detect.evaluate``; every engine must agree with it):

* A field path is dotted (``aws.cloudtrail.request_parameters.bucketName``). Looking it up walks
  the document; a list at any step is flattened, so a leaf "has" several values and a predicate is
  true when **any** value satisfies it. ``None`` (JSON null) is no value. A final ``**`` step
  (``aws.cloudtrail.request_parameters.**``) stands for every value anywhere below that object:
  Sigma's search of a whole free-form payload (``requestParameters|contains: x``).
* ``Str`` compares the value's text form (strings as they are; integers in decimal; booleans
  ``true``/``false``; floats as Python ``repr``) against a wildcard pattern, **case-insensitively**
  unless ``cased``. Objects are never matched by a string.
* ``Num`` compares numbers (an int/float value, or a string that is a plain decimal integer).
* ``Regex`` searches (not full-matches) the text form; flags ``i``, ``m``, ``s``.
* ``Cidr`` holds when a value is an IP address inside the network.
* ``Exists`` holds when the path has at least one value: not null, and an object only when some
  scalar lies below it (``{}``, ``{"a": null}`` or ``{"a": []}`` are no value — nothing of them is indexed).
* ``FieldRef`` holds when some value of ``field`` equals (text form, case-insensitive) some value
  of ``other`` — or starts/ends with it.
* ``Keyword`` is Sigma's field-less search: a ``Str`` over each of ``KEYWORD_FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Field-less (keyword) searches look here: the raw line of the text log types.
KEYWORD_FIELDS: tuple[str, ...] = ("message",)
# A last path step meaning "every value below": a whole-payload search.
DESCENDANTS = "**"


class Wild:
    """A wildcard in a Str pattern."""


@dataclass(frozen=True, slots=True)
class AnyChars(Wild):
    """``*``: any run of characters, also none."""

    def __repr__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class OneChar(Wild):
    """``?``: exactly one character."""

    def __repr__(self) -> str:
        return "?"


STAR = AnyChars()
QMARK = OneChar()
Part = str | AnyChars | OneChar


@dataclass(frozen=True, slots=True)
class Str:
    field: str
    parts: tuple[Part, ...]  # literal chunks and wildcards, adjacent literals merged
    cased: bool = False

    @property
    def literal(self) -> str | None:
        """The whole pattern when it has no wildcard (an equality test)."""
        if all(isinstance(p, str) for p in self.parts):
            return "".join(self.parts)  # type: ignore[arg-type]
        return None


@dataclass(frozen=True, slots=True)
class Num:
    field: str
    op: Literal["eq", "lt", "lte", "gt", "gte"]
    value: int | float


@dataclass(frozen=True, slots=True)
class Regex:
    field: str
    pattern: str
    flags: str = ""  # subset of "ims"


@dataclass(frozen=True, slots=True)
class Cidr:
    field: str
    network: str  # canonical, e.g. "10.0.0.0/8", "2001:db8::/32"


@dataclass(frozen=True, slots=True)
class Exists:
    field: str


@dataclass(frozen=True, slots=True)
class FieldRef:
    field: str
    other: str
    mode: Literal["eq", "startswith", "endswith"] = "eq"


@dataclass(frozen=True, slots=True)
class Keyword:
    parts: tuple[Part, ...]
    cased: bool = False

    def as_fields(self) -> Node:
        return any_of([Str(f, self.parts, self.cased) for f in KEYWORD_FIELDS])


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    arg: Node


Leaf = Str | Num | Regex | Cidr | Exists | FieldRef | Keyword
Node = Leaf | Const | And | Or | Not

TRUE = Const(True)
FALSE = Const(False)


def all_of(nodes: list[Node]) -> Node:
    """AND with constants folded and nested ANDs flattened."""
    flat: list[Node] = []
    for node in nodes:
        if node == TRUE:
            continue
        if node == FALSE:
            return FALSE
        flat.extend(node.args if isinstance(node, And) else (node,))
    if not flat:
        return TRUE
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(nodes: list[Node]) -> Node:
    """OR with constants folded and nested ORs flattened."""
    flat: list[Node] = []
    for node in nodes:
        if node == FALSE:
            continue
        if node == TRUE:
            return TRUE
        flat.extend(node.args if isinstance(node, Or) else (node,))
    if not flat:
        return FALSE
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def negate(node: Node) -> Node:
    if isinstance(node, Const):
        return Const(not node.value)
    if isinstance(node, Not):
        return node.arg
    return Not(node)


def fields_of(node: Node) -> set[str]:
    """Every field path a condition reads (keyword searches read KEYWORD_FIELDS)."""
    if isinstance(node, And | Or):
        out: set[str] = set()
        for arg in node.args:
            out |= fields_of(arg)
        return out
    if isinstance(node, Not):
        return fields_of(node.arg)
    if isinstance(node, Keyword):
        return set(KEYWORD_FIELDS)
    if isinstance(node, FieldRef):
        return {node.field, node.other}
    if isinstance(node, Const):
        return set()
    return {node.field}


def leaves(node: Node) -> list[Leaf]:
    if isinstance(node, And | Or):
        return [leaf for arg in node.args for leaf in leaves(arg)]
    if isinstance(node, Not):
        return leaves(node.arg)
    if isinstance(node, Const):
        return []
    return [node]


def text_form(value: object) -> str | None:
    """The text a string pattern is compared with; None for objects (never matched by strings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None
