"""Events "around" a rule's values, for the differential tests of the detection engines.

Given a rule's IR condition (``siem.detect.ir``) this produces, deterministically, events that
match it and near misses of it: for every leaf, values that satisfy it and values that just fail
(case variants, wildcard edges, SQL/regex metacharacters, IPs on both sides of a CIDR, numbers as
numbers and as strings, null, missing, the field as a list with the matching value first, last or
absent, lists at an intermediate level of the path...), each put into an event that otherwise
satisfies the condition, so every AND/OR/NOT branch flips. Which events match is decided by the
reference evaluator, never by this module: a wrong guess here only costs an event.

Every event is a valid document for the index templates (``index_templates/component-ecs.json``):
``*.ip`` fields hold IP addresses, ``long`` fields integers, dates ISO 8601, and a field a
template does not map (dynamic) keeps one type per index — ``seed_events`` gives each dataset a
first document that fixes it (strings, or integers for fields only compared as numbers).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Python 3.11+: re._parser; older: sre_parse
    import re._parser as sre_parse  # type: ignore[import-not-found]
    from re import _constants as sre_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as sre_c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from siem.detect import ir
from siem.detect.rules import Correlation, Rule
from siem.pipeline import Event

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "index_templates" / "component-ecs.json"
BASE_TIME = datetime(2026, 3, 9, 0, 0, 0, tzinfo=UTC)  # a Monday; all events stay in March 2026
DEFAULT_DATASET = "test.differential"
MISSING = object()  # "leave the field out"
FIXED = frozenset({"@timestamp", "event.dataset", "event.ingested"})  # never varied: every event has them
SPECIALS = "*?\\%_'\".[]()é 𝔘\t"
DECOY = "zz-decoy"


# ---------------------------------------------------------------------------------------------
# field kinds (what the index templates accept at a path)


def _template_kinds() -> tuple[dict[str, str], tuple[str, ...]]:
    mappings = json.loads(TEMPLATE.read_text(encoding="utf-8"))["template"]["mappings"]
    kinds: dict[str, str] = {}
    flat: list[str] = []

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            if "properties" in spec:
                kinds[path] = "object"
                walk(spec["properties"], path + ".")
                continue
            kind = spec.get("type", "object")
            kinds[path] = {"match_only_text": "text", "flat_object": "flat"}.get(kind, kind)
            if kind == "flat_object":
                flat.append(path)

    walk(mappings["properties"], "")
    return kinds, tuple(flat)


TEMPLATE_KINDS, FLAT_ROOTS = _template_kinds()


class Schema:
    """The kind of every field the generated events use: one type per path across all rules."""

    def __init__(self, conditions: list[ir.Node]) -> None:
        uses: dict[str, set[str]] = {}
        for cond in conditions:
            for leaf in ir.leaves(cond):
                for name in _leaf_fields(leaf):
                    uses.setdefault(name, set()).add(type(leaf).__name__)
        self.uses = uses
        names = set(uses)
        self.kinds: dict[str, str] = {}
        for name in sorted(names):
            self.kinds[name] = self._kind(name, names)

    def _kind(self, name: str, names: set[str]) -> str:
        if any(name == root or name.startswith(root + ".") for root in FLAT_ROOTS):
            return "flat_root" if name in FLAT_ROOTS else "flat"
        if name in TEMPLATE_KINDS:
            return TEMPLATE_KINDS[name]
        if any(other.startswith(name + ".") for other in names):
            return "object"
        if name.endswith(".ip") or name == "ip":
            return "ip"
        if name.endswith(".geo.location"):
            return "object"
        if self.uses.get(name, set()) <= {"Num"}:
            return "long"
        return "keyword"

    def kind(self, name: str) -> str:
        return self.kinds.get(name) or self._kind(name, set(self.kinds))

    def dynamic(self) -> dict[str, str]:
        """Fields no template maps, by kind (seeded per index so their type never flips)."""
        return {n: k for n, k in self.kinds.items() if n not in TEMPLATE_KINDS and k in ("keyword", "long", "ip")}


def _leaf_fields(leaf: ir.Leaf) -> list[str]:
    if isinstance(leaf, ir.Keyword):
        return list(ir.KEYWORD_FIELDS)
    if isinstance(leaf, ir.FieldRef):
        return [leaf.field, leaf.other]
    return [leaf.field]


def valid(kind: str, value: Any) -> bool:
    """Would the index template accept this value at a field of this kind?"""
    if value is None or value is MISSING:
        return True
    if isinstance(value, list):
        return all(valid(kind, v) for v in value)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "flat_root":
        return isinstance(value, dict)
    if isinstance(value, dict):
        return kind == "flat" and bool(value)
    if kind == "flat":
        return isinstance(value, str | int | bool) and not isinstance(value, float)
    if kind == "ip":
        return isinstance(value, str) and _is_ip(value)
    if kind == "long":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return abs(value) < 2**63
        return isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value) is not None
    if kind == "date":
        return isinstance(value, str) and _is_date(value)
    if kind == "text":
        return isinstance(value, str)
    if kind == "keyword":
        if isinstance(value, float):
            return value == 2.5 or value == -0.5  # plain floats only: no exponent forms
        return isinstance(value, str | int | bool) and (not isinstance(value, str) or len(value) < 8000)
    return isinstance(value, str)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)", text))


# ---------------------------------------------------------------------------------------------
# values around one leaf


def _case_variants(text: str) -> list[str]:
    out = [text, text.upper(), text.lower(), text.swapcase()]
    mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))
    out.append(mixed)
    return out


def _fill(parts: tuple[ir.Part, ...], star: str, one: str) -> str:
    return "".join(
        star if p is ir.STAR or isinstance(p, ir.AnyChars) else one if isinstance(p, ir.OneChar) else p for p in parts
    )


def str_values(parts: tuple[ir.Part, ...]) -> list[Any]:
    """Texts that match a wildcard pattern and texts that just miss it."""
    exact = _fill(parts, "", "a")
    out: list[Any] = [exact]
    out += _case_variants(_fill(parts, "", "Q"))[1:]
    has_star = any(isinstance(p, ir.AnyChars) for p in parts)
    has_one = any(isinstance(p, ir.OneChar) for p in parts)
    if has_star:
        out += [_fill(parts, "XyZ", "a"), _fill(parts, SPECIALS, "a"), _fill(parts, "\n", "a"), _fill(parts, "*", "?")]
    if has_one:
        out += [
            _fill(parts, "", ""),
            _fill(parts, "", "ab"),
            _fill(parts, "", "é"),
            _fill(parts, "", "%"),
            _fill(parts, "", "\n"),
            _fill(parts, "", "_"),
        ]
    literal = "".join(p for p in parts if isinstance(p, str))
    if exact:
        out += [exact + "x", "x" + exact, exact[:-1], exact[1:], " " + exact, exact + " "]
    else:
        out += ["", "x"]
    # metacharacters in the literal taken as wildcards by a careless translation
    for meta, other in (
        ("_", "Z"),
        ("%", "Zz"),
        (".", "Z"),
        ("*", "ZZ"),
        ("?", "Z"),
        ("\\", "Z"),
        ("[", "Z"),
        ("(", "Z"),
        ("'", "Z"),
        ('"', "Z"),
        ("^", "Z"),
        ("$", "Z"),
        ("+", "ZZ"),
        ("|", "Z"),
    ):
        if meta in literal:
            out.append(_fill(tuple(p.replace(meta, other, 1) if isinstance(p, str) else p for p in parts), "", "a"))
    if "\\" in literal:
        out.append(_fill(tuple(p.replace("\\", "\\\\") if isinstance(p, str) else p for p in parts), "", "a"))
    # numbers and booleans in their text forms
    if re.fullmatch(r"-?\d{1,15}", exact):
        n = int(exact)
        out += [n, n + 1, str(n + 1), float(n) if abs(n) < 10**6 else n]
    if exact.lower() in ("true", "false"):
        out += [exact.lower() == "true", exact.lower() != "true", "True", "FALSE"]
    if exact in ("2.5",):
        out.append(2.5)
    return out


def num_values(op: str, value: int | float) -> list[Any]:
    v = value
    out: list[Any] = []
    if isinstance(v, int) and not isinstance(v, bool):
        out += [
            v,
            v - 1,
            v + 1,
            str(v),
            str(v - 1),
            str(v + 1),
            -v,
            0,
            f"0{v}" if v >= 0 else str(v),
            f"{v}.0",
            f" {v}",
            f"{v}x",
            True,
            str(10**18 + v) if v >= 0 else str(v),
        ]
    else:
        out += [v, int(v), int(v) + 1, repr(v), 2.5]
    return out


def cidr_values(network: str) -> list[Any]:
    net = ipaddress.ip_network(network)
    first, last = net.network_address, net.broadcast_address
    out: list[Any] = [str(first), str(last)]
    if net.num_addresses > 2:
        out.append(str(first + 1))
    if int(first) > 0:
        out.append(str(first - 1))
    top = 2**32 - 1 if net.version == 4 else 2**128 - 1
    if int(last) < top:
        out.append(str(last + 1))
    if net.version == 4:
        out += [f"::ffff:{first}", "2001:db8::1", "10.0.0.1", "192.168.1.1", "8.8.8.8"]
    else:
        out += [str(first).upper(), "10.0.0.1", "::1", "2001:db8::1", "fe80::1"]
    out += ["not-an-ip", f"{first}/{net.prefixlen}", f" {first}", str(first) + "x", "999.1.1.1", ""]
    return out


def regex_values(pattern: str, flags: str) -> list[Any]:
    """A string the regex matches (built from its parse tree), and near misses of it."""
    try:
        sample = _from_regex(sre_parse.parse(pattern), random.Random(pattern))
    except Exception:
        sample = re.sub(r"[\\^$]", "", pattern)
    out: list[Any] = [
        sample,
        sample.upper(),
        sample.lower(),
        sample.swapcase(),
        "x" + sample + "x",
        "line\n" + sample,
        sample + "\nline",
        "",
        sample[:-1],
        sample[1:],
    ]
    return out


def _from_regex(tree: Any, rnd: random.Random) -> str:
    out = []
    for op, arg in tree:
        if op == sre_c.LITERAL:
            out.append(chr(arg))
        elif op == sre_c.NOT_LITERAL:
            out.append("x" if chr(arg) != "x" else "y")
        elif op == sre_c.ANY:
            out.append("a")
        elif op == sre_c.IN:
            out.append(_from_in(arg))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", object())):
            low, _high, sub = arg
            out.append(_from_regex(sub, rnd) * max(low, 1))
        elif op == sre_c.SUBPATTERN:
            out.append(_from_regex(arg[-1], rnd))
        elif op == sre_c.BRANCH:
            out.append(_from_regex(arg[1][0], rnd))
        elif op == sre_c.AT or op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            continue
        elif op == sre_c.GROUPREF:
            out.append("")
        else:
            raise ValueError(op)
    return "".join(out)


def _from_in(items: list[Any]) -> str:
    negate = any(op == sre_c.NEGATE for op, _ in items)
    if negate:
        excluded = {chr(a) for op, a in items if op == sre_c.LITERAL}
        return next(c for c in "xyzq7#" if c not in excluded)
    for op, arg in items:
        if op == sre_c.LITERAL:
            return chr(arg)
        if op == sre_c.RANGE:
            return chr(arg[0])
        if op == sre_c.CATEGORY:
            return {sre_c.CATEGORY_DIGIT: "5", sre_c.CATEGORY_SPACE: " ", sre_c.CATEGORY_WORD: "w"}.get(arg, "-")
    return "a"


def exists_values(kind: str) -> list[Any]:
    return [None, [], [None], "", "x", 0, "0", False, {}, {"k": "v"}]


def typed_fills(parts: tuple[ir.Part, ...], kind: str) -> list[Any]:
    """Pattern fills that make sense in an ip or long field (digits and address pieces)."""
    out: list[Any] = []
    stars = ("", "0", "1.2.3", "0.0.1", "4", "12", ":1", "db8::1", "1.1", "9")
    for star in stars:
        for one in ("1", "0", "a", ":"):
            text = _fill(parts, star, one)
            if kind == "ip" and _is_ip(text):
                out += [text, text.upper()]
            if kind == "long" and re.fullmatch(r"-?\d{1,18}", text):
                out += [int(text), text]
    return out + (["10.1.2.3", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.1"] if kind == "ip" else [0, 1, 404, 443])


def _typed_regex(leaf: ir.Regex, kind: str) -> list[Any]:
    """Addresses or integers for a regex on an ip or long field, those it matches first."""
    if kind == "ip":
        pool: list[Any] = ["10.1.2.3", "110.1.2.3", "192.0.2.1", "2001:db8::10", "::ffff:10.0.0.1", "10.0.0.1", "::1"]
    else:
        pool = [400, 404, 4000, 44, 5, 0, -404, "404", "4040"]
    flags = sum(f for c, f in (("i", re.I), ("m", re.M), ("s", re.S)) if c in leaf.flags)
    rx = re.compile(leaf.pattern, flags)
    return sorted(pool, key=lambda v: not rx.search(ir.text_form(v) or ""))


def leaf_values(leaf: ir.Leaf, kind: str = "keyword") -> list[Any]:
    """Scalar values to try at a leaf's field (of a kind: ip and long fields get typed fills)."""
    if isinstance(leaf, ir.Str):
        if kind in ("ip", "long"):
            return typed_fills(leaf.parts, kind) + str_values(leaf.parts)
        return str_values(leaf.parts)
    if isinstance(leaf, ir.Keyword):
        return str_values(leaf.parts)
    if isinstance(leaf, ir.Num):
        return num_values(leaf.op, leaf.value)
    if isinstance(leaf, ir.Cidr):
        return cidr_values(leaf.network)
    if isinstance(leaf, ir.Regex):
        if kind in ("ip", "long"):
            return _typed_regex(leaf, kind) + regex_values(leaf.pattern, leaf.flags)
        return regex_values(leaf.pattern, leaf.flags)
    if isinstance(leaf, ir.Exists):
        return exists_values("keyword")
    if isinstance(leaf, ir.FieldRef):
        base = ["Alpha.Beta", "alpha.beta", "ALPHA", "beta", "Alpha.Beta.Gamma", "x" + "Alpha.Beta", "", 5]
        return base
    raise TypeError(leaf)


def _positive(leaf: ir.Leaf) -> Any:
    """Our best guess at a value satisfying the leaf (verified later by the reference)."""
    if isinstance(leaf, ir.Str | ir.Keyword):
        return _fill(leaf.parts, "", "a")
    if isinstance(leaf, ir.Num):
        return leaf.value + {"eq": 0, "lt": -1, "lte": 0, "gt": 1, "gte": 0}[leaf.op]
    if isinstance(leaf, ir.Cidr):
        return str(ipaddress.ip_network(leaf.network).network_address)
    if isinstance(leaf, ir.Regex):
        return regex_values(leaf.pattern, leaf.flags)[0]
    if isinstance(leaf, ir.Exists):
        return "present"
    if isinstance(leaf, ir.FieldRef):
        return "Alpha.Beta"
    raise TypeError(leaf)


def _negative(leaf: ir.Leaf) -> Any:
    if isinstance(leaf, ir.Exists):
        return MISSING
    if isinstance(leaf, ir.Num):
        return leaf.value + {"eq": 1, "lt": 1, "lte": 1, "gt": -1, "gte": -1}[leaf.op]
    if isinstance(leaf, ir.Cidr):
        net = ipaddress.ip_network(leaf.network)
        return "8.8.8.8" if net.version == 4 and not net.overlaps(ipaddress.ip_network("8.8.8.8/32")) else "::2"
    if isinstance(leaf, ir.FieldRef):
        return "no-ref-match"
    return DECOY


# ---------------------------------------------------------------------------------------------
# documents


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path (flat_object sub-paths too); MISSING removes it."""
    keys = path.split(".")
    node = doc
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            if value is MISSING:
                return
            nxt = node[key] = {}
        node = nxt
    if value is MISSING:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


def coerce(kind: str, value: Any) -> Any:
    """The value made valid for a field kind, or MISSING if it cannot be."""
    if valid(kind, value):
        return value
    if kind == "long" and isinstance(value, str) and re.fullmatch(r"-?\d+\.0", value):
        return MISSING
    if kind == "object" and not isinstance(value, dict):
        return {"value": value} if valid("keyword", value) and not isinstance(value, list) else MISSING
    if kind == "flat" and isinstance(value, float):
        return str(value)
    if kind == "text" and isinstance(value, int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return MISSING


def filler(kind: str, name: str) -> Any:
    """A neutral value for a field of a kind (seed documents)."""
    return {
        "ip": "192.0.2.77",
        "long": 424242,
        "date": "2026-03-09T00:00:00Z",
        "object": {"seed": "seed"},
        "flat_root": {"seed": "seed"},
        "text": "seed line",
    }.get(kind, f"seed-{name}")


@dataclass
class Generated:
    """Events for one rule (docs without ids/timestamps; the builder assigns them)."""

    docs: list[dict[str, Any]] = field(default_factory=list)


def dataset_values(cond: ir.Node) -> list[str]:
    out = []
    for leaf in ir.leaves(cond):
        is_dataset = isinstance(leaf, ir.Str) and leaf.field == "event.dataset" and leaf.literal is not None
        if is_dataset and leaf.literal not in out:
            out.append(leaf.literal)
    return out


def _assign(node: ir.Node, want: bool, branch: int) -> list[tuple[ir.Leaf, bool]]:
    """Leaves and the truth each should have so that ``node`` is ``want`` (a guess; ``branch``
    chooses which OR child carries a true OR, or which AND child fails a false AND)."""
    if isinstance(node, ir.Const):
        return []
    if isinstance(node, ir.Not):
        return _assign(node.arg, not want, branch)
    if isinstance(node, ir.And | ir.Or):
        conj = isinstance(node, ir.And) == want  # every child must have the wanted truth
        if conj:
            return [pair for arg in node.args for pair in _assign(arg, want, branch)]
        chosen = node.args[branch % len(node.args)]
        others = [a for a in node.args if a is not chosen]
        out = _assign(chosen, want, branch // len(node.args))
        for other in others:
            out += _assign(other, not want, 0)
        return out
    return [(node, want)]  # a leaf


class Generator:
    """Seeded, deterministic events around the leaves of conditions."""

    def __init__(self, schema: Schema, seed: int = 20261128, per_rule: int = 100) -> None:
        self.schema = schema
        self.rnd = random.Random(seed)
        self.per_rule = per_rule

    def _base(self, cond: ir.Node, want: bool, branch: int, dataset: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"event": {"dataset": dataset}}
        chosen: dict[str, list[Any]] = {}
        for leaf, truth in _assign(cond, want, branch):
            if isinstance(leaf, ir.Str) and leaf.field in FIXED:
                continue
            if isinstance(leaf, ir.FieldRef):
                value = "Alpha.Beta"
                self._put(chosen, leaf.field, value)
                self._put(chosen, leaf.other, value if truth else "gamma")
                continue
            for name in _leaf_fields(leaf):
                if name in FIXED:
                    continue
                value = _positive(leaf) if truth else _negative(leaf)
                kind = self.schema.kind(name)
                if isinstance(leaf, ir.Str | ir.Regex) and kind in ("ip", "long") and not valid(kind, value):
                    fills = typed_fills(leaf.parts, kind) if isinstance(leaf, ir.Str) else _typed_regex(leaf, kind)
                    value = fills[0] if truth else fills[-1]
                self._put(chosen, name, value)
        for name, vals in chosen.items():
            kind = self.schema.kind(name)
            real = [c for v in vals if (c := coerce(kind, v)) is not MISSING]
            if not real:
                continue
            set_path(doc, name, real[0] if len(real) == 1 else real)
        return doc

    @staticmethod
    def _put(chosen: dict[str, list[Any]], name: str, value: Any) -> None:
        if value is MISSING:
            chosen.setdefault(name, [])
            return
        vals = chosen.setdefault(name, [])
        if value not in vals:
            vals.append(value)

    def events(self, cond: ir.Node) -> list[dict[str, Any]]:
        """Documents around one condition (without @timestamp/ingested/ids: ``Batch`` adds them)."""
        datasets = dataset_values(cond) or [DEFAULT_DATASET]
        out: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(doc: dict[str, Any]) -> None:
            key = json.dumps(doc, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(doc)

        leaves = [leaf for leaf in ir.leaves(cond) if not (isinstance(leaf, ir.Str) and leaf.field in FIXED)]
        n_or = max(1, sum(len(n.args) for n in _nodes(cond) if isinstance(n, ir.Or)))
        bases = []
        for i in range(min(n_or, 12)):
            ds = datasets[i % len(datasets)]
            bases.append(self._base(cond, True, i, ds))
            add(bases[-1])
            add(self._base(cond, False, i, ds))
        base = bases[0]
        variants: list[dict[str, Any]] = []
        for leaf in leaves:
            variants.extend(self._leaf_variants(base, leaf))
        self.rnd.shuffle(variants)
        for doc in variants[: self.per_rule]:
            add(doc)
        return out

    def _leaf_variants(self, base: dict[str, Any], leaf: ir.Leaf) -> Iterator[dict[str, Any]]:
        names = _leaf_fields(leaf)
        if isinstance(leaf, ir.FieldRef):
            left, right = leaf.field, leaf.other
            lk, rk = self.schema.kind(left), self.schema.kind(right)
            pairs = [
                ("Alpha.Beta", "alpha.beta"),
                ("Alpha.Beta", "ALPHA"),
                ("Alpha.Beta", "beta"),
                ("Alpha.Beta", "Alpha.Beta.Gamma"),
                ("Alpha.Beta", ""),
                ("5", 5),
                ("x", None),
                (["a", "Alpha.Beta"], ["b", "alpha.BETA"]),
                ("Alpha.Beta", MISSING),
                ("a_c", "abc"),
                ("a%", "a"),
                ("10.0.0.1", "10.0.0.1"),
                (7, "7"),
            ]
            for lv, rv in pairs:
                lv, rv = coerce(lk, lv), coerce(rk, rv)
                doc = _copy(base)
                set_path(doc, left, lv)
                set_path(doc, right, rv)
                yield doc
            return
        for name in names:
            if name in FIXED:
                continue
            kind = self.schema.kind(name)
            scalars = [v for v in leaf_values(leaf, kind) if valid(kind, v)]
            if kind == "object":
                scalars = [{}, {"zs": "v"}, {"zn": None}, {"zo": {}}, {"zl": []}]
            if not scalars:
                continue
            decoy = next((v for v in (DECOY, "192.0.2.200", 987654) if valid(kind, v)), None)
            for value in scalars:
                doc = _copy(base)
                set_path(doc, name, value)
                yield doc
            hit = scalars[0]
            shapes: list[Any] = [
                MISSING,
                None,
                [hit],
                [decoy, hit],
                [hit, decoy],
                [decoy],
                [[decoy, [hit]]],
                [None, hit],
                [],
            ]
            if isinstance(leaf, ir.Exists):
                shapes += [[[]], [None, None]]
            for value in shapes:
                if not valid(kind, value):
                    continue
                doc = _copy(base)
                set_path(doc, name, value)
                yield doc
            yield from self._intermediate_lists(base, name, hit, decoy)

    def _intermediate_lists(self, base: dict[str, Any], name: str, hit: Any, decoy: Any) -> Iterator[dict[str, Any]]:
        keys = name.split(".")
        # a list of objects at each level below the root (the root stays an object: stores read it)
        for level in range(1, len(keys) - 1):
            doc = _copy(base)
            set_path(doc, name, hit)
            parent = _get(doc, keys[:level])
            if not isinstance(parent, dict):
                continue
            inner = parent.get(keys[level])
            if not isinstance(inner, dict):
                continue
            stub: dict[str, Any] = {}
            set_path(stub, ".".join(keys[level + 1 :]), decoy)
            for order in (0, 1):
                variant = _copy(doc)
                vparent = _get(variant, keys[:level])
                vparent[keys[level]] = [stub, inner] if order else [inner, stub]
                yield variant
            variant = _copy(doc)
            _get(variant, keys[:level])[keys[level]] = [stub]
            yield variant
            variant = _copy(doc)
            _get(variant, keys[:level])[keys[level]] = {}
            yield variant
        # the parent object empty
        if len(keys) >= 2 and keys[0] not in ("event",):
            doc = _copy(base)
            set_path(doc, ".".join(keys[:-1]), {})
            yield doc


def _nodes(node: ir.Node) -> Iterator[ir.Node]:
    yield node
    if isinstance(node, ir.And | ir.Or):
        for a in node.args:
            yield from _nodes(a)
    elif isinstance(node, ir.Not):
        yield from _nodes(node.arg)


def _get(doc: dict[str, Any], keys: list[str]) -> Any:
    node: Any = doc
    for k in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


# ---------------------------------------------------------------------------------------------
# a batch: every rule's events, with ids and timestamps, ready for every store


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt.microsecond else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_id(*parts: object) -> str:
    """Ids whose order is unrelated to generation order (so (ts, id) ordering is exercised)."""
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


@dataclass
class Batch:
    schema: Schema
    events: list[Event] = field(default_factory=list)
    owner: dict[str, str] = field(default_factory=dict)  # event id → rule key it was generated for

    def seed_events(self, datasets: set[str]) -> list[Event]:
        """One first document per dataset fixing the type of every dynamic field (see module doc)."""
        seeds = []
        for ds in sorted(datasets):
            doc: dict[str, Any] = {
                "@timestamp": "2026-03-01T00:00:00Z",
                "event": {"dataset": ds, "ingested": "2026-03-01T00:00:01Z"},
            }
            names = sorted(self.schema.dynamic())
            for name in names:
                if any(other.startswith(name + ".") for other in names):
                    continue
                set_path(doc, name, filler(self.schema.kind(name), name))
            seeds.append(Event(event_id("seed", ds), ds, doc))
        return seeds

    def add(self, key: str, docs: list[dict[str, Any]], start: datetime, step: timedelta) -> None:
        t = start
        for n, doc in enumerate(docs):
            ds = doc["event"]["dataset"]
            if n % 7 != 6:  # every 7th event shares its predecessor's timestamp: ties broken by id
                t += step
            doc = _copy(doc)
            doc["@timestamp"] = iso(t)
            doc["event"]["ingested"] = iso(t + timedelta(seconds=30))
            doc_id = event_id(key, n)
            self.events.append(Event(doc_id, ds, doc))
            self.owner[doc_id] = key

    def add_timed(self, key: str, docs: list[tuple[datetime, dict[str, Any]]]) -> None:
        for n, (t, doc) in enumerate(docs):
            doc = _copy(doc)
            doc["@timestamp"] = iso(t)
            doc["event"]["ingested"] = iso(t + timedelta(seconds=5))
            doc_id = event_id(key, "timed", n)
            self.events.append(Event(doc_id, doc["event"]["dataset"], doc))
            self.owner[doc_id] = key


# ---------------------------------------------------------------------------------------------
# correlations: member events with timestamps around the timespan


def correlation_events(
    corr: Correlation, positives: list[dict[str, Any]], schema: Schema, start: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """Member events of a correlation: bursts straddling a minute boundary, counts just under, at
    and over the threshold, events exactly ``timespan`` apart, equal timestamps, several groups
    (case-different keys, multi-valued keys), per referenced rule ``positives[i]``."""
    span = corr.timespan
    need = max(corr.count, 1)
    out: list[tuple[datetime, dict[str, Any]]] = []

    def group_value(g: int, name: str) -> Any:
        kind = schema.kind(name)
        if kind == "ip":
            return f"198.51.100.{g + 1}"
        if kind == "long":
            return 4000 + g
        return ["alice", "Alice", "bob", "carol", "dave", "erin", "frank", "gina"][g % 8]

    def member(rule_index: int, g: int | list[int], value: Any = MISSING) -> dict[str, Any]:
        doc = _copy(positives[rule_index % len(positives)])
        for name in corr.group_by:
            gv = [group_value(x, name) for x in g] if isinstance(g, list) else group_value(g, name)
            set_path(doc, name, gv)
        if corr.value_field and value is not MISSING:
            set_path(doc, corr.value_field, typed_label(schema.kind(corr.value_field), value))
        return doc

    labels: dict[str, int] = {}

    def typed_label(kind: str, label: str) -> Any:
        """A label as a value of the field's kind: distinct labels stay distinct (case too)."""
        number = labels.setdefault(label, len(labels) + 1)
        if kind == "ip":
            return f"203.0.113.{number % 250}"
        if kind == "long":
            return 20 + number
        return label

    n_rules = len(corr.rules)
    boundary = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    g = 0
    for count in (need - 1, need, need + 1):
        # a burst straddling the minute boundary, strictly inside the timespan
        gap = span / (count + 1) if count else span
        t0 = boundary - gap * (count // 2)
        for k in range(max(count, 0)):
            out.append((t0 + gap * k, member(k % n_rules, g, f"v{k}")))
        g += 1
    # `need` events with the first and last exactly `timespan` apart (never one window), then one
    # just inside
    if need >= 2:
        for k in range(need):
            t = start + timedelta(hours=1) + span * k / (need - 1)
            out.append((t, member(k % n_rules, g, f"v{k}")))
        g += 1
        for k in range(need):
            t = start + timedelta(hours=2) + (span - timedelta(milliseconds=1)) * k / (need - 1)
            out.append((t.replace(microsecond=t.microsecond // 1000 * 1000), member(k % n_rules, g, f"V{k}")))
        g += 1
    # equal timestamps: every member at one instant, in every rule order
    t = start + timedelta(hours=3)
    for k in range(need + 1):
        out.append((t, member((n_rules - 1 - k) % n_rules, g, "same" if k % 2 else "SAME")))
    g += 1
    # rules in reverse order, spaced inside the span (temporal_ordered must not fire; temporal does)
    t = start + timedelta(hours=4)
    for k in range(max(need, n_rules) + 1):
        out.append((t + span / (need + 3) * k, member(n_rules - 1 - (k % n_rules), g, f"r{k % 3}")))
    g += 1
    # a multi-valued group-by: the event counts in two groups
    t = start + timedelta(hours=5)
    for k in range(need):
        out.append((t + span / (need + 2) * k, member(k % n_rules, [g, g + 1] if k % 2 == 0 else g, f"m{k}")))
    g += 2
    # a member without the group-by field (not grouped) among a group's events
    t = start + timedelta(hours=6)
    for k in range(need):
        doc = member(k % n_rules, g, f"n{k}")
        if k == 0:
            for name in corr.group_by:
                set_path(doc, name, MISSING)
        out.append((t + span / (need + 2) * k, doc))
    return out


# ---------------------------------------------------------------------------------------------
# hand-made rules: every leaf kind on every field kind, whatever the shipped rules happen to use


def make_rule(name: str, condition: ir.Node, correlation: Correlation | None = None) -> Rule:
    return Rule(
        id=f"synthetic-{name}",
        name=f"synthetic-{name}",
        title=name,
        description="",
        author="tests",
        references=[],
        level="medium",
        tags=[],
        status="test",
        license="",
        version="1",
        path=Path(f"synthetic/{name}.yml"),
        line=1,
        logsource={"product": None, "service": None, "category": None},
        condition=condition,
        correlation=correlation,
    )


def _s(field_: str, *parts: ir.Part, cased: bool = False) -> ir.Str:
    return ir.Str(field_, tuple(parts), cased)


def synthetic_rules() -> list[Rule]:
    S, Q = ir.STAR, ir.QMARK
    ds = _s("event.dataset", DEFAULT_DATASET)
    conds: dict[str, ir.Node] = {
        "wild_keyword": _s("user.name", "adm", S, "n", Q),
        "wild_cased": _s("user.name", "Adm", S, "N", Q, cased=True),
        "literal_metachars": _s("process.command_line", S, "50%_off [x] (y) 'q' \"d\" a.b\\c", S),
        "literal_underscore": _s("process.name", "a_c"),
        "literal_percent": _s("process.name", "100%"),
        "literal_backslash_star": _s("process.executable", "C:\\Windows\\", S, "\\cmd.exe"),
        "literal_star_char": _s("url.query", "a*b"),  # a literal '*' is not in a pattern: see escaped
        "only_star": _s("url.path", S),
        "only_qmark": _s("url.path", Q),
        "qmark_pair": _s("url.domain", Q, Q, ".example.com"),
        "empty_literal": _s("http.request.referrer", ""),
        "unicode": _s("user.domain", "ÉCOLE", S, "𝔘"),
        "spaces": _s("user.target.name", " a b "),
        "str_on_long": _s("http.response.status_code", "4", S),
        "str_on_long_exact": _s("source.port", "443"),
        "str_on_ip_prefix": _s("source.ip", "10.", S),
        "str_on_ip_exact": _s("destination.ip", "2001:db8::1"),
        "str_on_flat": _s("aws.cloudtrail.request_parameters.bucketName", S, "secret", S),
        "str_on_flat_exact": _s("aws.cloudtrail.request_parameters.acl", "Public-Read"),
        "str_bool": _s("test.flag", "true"),
        "str_number_text": _s("test.code", "7"),
        "str_list_field": _s("process.args", "-e"),
        "str_dynamic_nested": _s("test.deep.er.name", "x", S, "y"),
        "num_gt": ir.Num("source.port", "gt", 1024),
        "num_lte": ir.Num("destination.port", "lte", 80),
        "num_eq": ir.Num("http.response.status_code", "eq", 404),
        "num_lt_neg": ir.Num("test.count", "lt", -3),
        "num_gte_zero": ir.Num("test.count", "gte", 0),
        "num_on_keyword": ir.Num("test.code", "eq", 7),
        "num_on_flat": ir.Num("aws.cloudtrail.request_parameters.maxCount", "gt", 10),
        "num_float": ir.Num("event.duration", "gte", 2.5),
        "regex_plain": ir.Regex("url.original", r"^/admin/.*\.php$"),
        "regex_i": ir.Regex("url.original", r"select\s+\w+\s+from", "i"),
        "regex_m": ir.Regex("process.command_line", r"^root$", "m"),
        "regex_s": ir.Regex("process.command_line", r"begin.end", "s"),
        "regex_class": ir.Regex("user.name", r"[a-c][^0-9]x{2,3}(y|z)?"),
        "regex_on_long": ir.Regex("source.port", r"^4\d\d$"),
        "regex_on_ip": ir.Regex("source.ip", r"^10\."),
        "regex_message": ir.Regex("message", r"fail(ed|ure) for \w+"),
        "cidr_v4": ir.Cidr("source.ip", "10.0.0.0/8"),
        "cidr_v4_32": ir.Cidr("client.ip", "192.0.2.1/32"),
        "cidr_v4_all": ir.Cidr("server.ip", "0.0.0.0/0"),
        "cidr_v6": ir.Cidr("destination.ip", "2001:db8::/32"),
        "cidr_keyword": ir.Cidr("source.address", "192.168.0.0/16"),
        "cidr_dynamic_ip": ir.Cidr("test.peer.ip", "172.16.0.0/12"),
        "exists": ir.Exists("user.name"),
        "not_exists": ir.Not(ir.Exists("user.name")),
        "exists_long": ir.Exists("source.port"),
        "exists_ip": ir.Exists("related.ip"),
        "exists_object": ir.Exists("test.obj"),
        "exists_object_child": _s("test.obj.k", "v"),
        "exists_flat_root": ir.Exists("aws.cloudtrail.request_parameters"),
        "exists_flat_leaf": ir.Exists("aws.cloudtrail.request_parameters.policy"),
        "exists_message": ir.Exists("message"),
        "fieldref_eq": ir.FieldRef("user.name", "user.target.name"),
        "fieldref_startswith": ir.FieldRef("url.original", "url.path", "startswith"),
        "fieldref_endswith": ir.FieldRef("process.executable", "process.name", "endswith"),
        "fieldref_long": ir.FieldRef("source.port", "destination.port"),
        "keyword": ir.Keyword((S, "Failed password", S)).as_fields(),
        "keyword_cased": ir.Keyword((S, "ERROR", S), cased=True).as_fields(),
        "keyword_exact": ir.Keyword(("connection closed",)).as_fields(),
        "message_wild_q": _s("message", "user ", Q, " logged in"),
        "and_or_not": ir.And(
            (
                ir.Or((_s("event.action", "CreateUser"), _s("event.action", "Delete", S))),
                ir.Not(_s("user.name", "svc-", S)),
                ir.Cidr("source.ip", "10.0.0.0/8"),
            )
        ),
        "not_or": ir.Not(ir.Or((_s("event.outcome", "success"), ir.Num("source.port", "eq", 22)))),
        "or_of_ands": ir.Or(
            (
                ir.And((_s("user.name", "root"), ir.Not(ir.Exists("user.id")))),
                ir.And((ir.Num("destination.port", "gte", 8000), ir.Regex("url.path", r"\.git/"))),
            )
        ),
        "not_not": ir.Not(ir.And((ir.Exists("user.roles"), ir.Not(_s("user.roles", "admin"))))),
    }
    rules = [make_rule(name, ir.all_of([ds, cond])) for name, cond in conds.items()]
    # no dataset condition: runs over every dataset's index (each with its own mappings)
    rules.append(make_rule("any_dataset_exists", ir.Exists("user.name")))
    rules.append(make_rule("any_dataset_not", ir.And((ir.Exists("user.name"), ir.Not(ir.Exists("test.obj"))))))
    rules.append(make_rule("any_dataset_wild", _s("event.action", S, "Login", S)))
    return rules


def synthetic_correlations() -> list[Rule]:
    ds = _s("event.dataset", DEFAULT_DATASET)
    fail = make_rule("corr_fail", ir.all_of([ds, _s("event.action", "login"), _s("event.outcome", "failure")]))
    ok = make_rule("corr_ok", ir.all_of([ds, _s("event.action", "login"), _s("event.outcome", "success")]))
    key = make_rule("corr_key", ir.all_of([ds, _s("event.action", "CreateAccessKey")]))
    minute, five = timedelta(minutes=1), timedelta(minutes=5)
    specs = {
        "count_gte3_ip": Correlation("event_count", (fail,), ("source.ip",), five, "gte", 3),
        "count_gt2_user": Correlation("event_count", (fail,), ("user.name",), minute, "gt", 2),
        "count_eq2_nogroup": Correlation("event_count", (fail,), (), minute, "eq", 2),
        "count_lte1_user": Correlation("event_count", (fail, ok), ("user.name",), minute, "lte", 1),
        "count_two_fields": Correlation("event_count", (fail,), ("user.name", "source.ip"), five, "gte", 2),
        "values_gte3": Correlation("value_count", (fail,), ("source.ip",), five, "gte", 3, "user.name"),
        "values_lt2": Correlation("value_count", (fail, ok), ("user.name",), minute, "lt", 2, "source.ip"),
        "temporal_all": Correlation("temporal", (fail, ok), ("user.name",), five, "gte", 2),
        "temporal_ordered": Correlation("temporal_ordered", (fail, ok, key), ("user.name",), five, "gte", 3),
        "temporal_ordered2": Correlation("temporal_ordered", (fail, ok), ("source.ip",), minute, "gte", 2),
    }
    return [make_rule(name, ir.any_of([r.condition for r in c.rules]), c) for name, c in specs.items()]
