"""Rule files → compiled rules: Sigma parsed by pySigma, mapped by our pipeline, translated to IR.

Rules are data. A file is read with ``yaml.safe_load_all`` (never a loader that builds objects),
parsed by pySigma, and our own keys (``schedule``, ``suppress``, ``notify``, ``tests``) are validated
here with ``file:line: key: message`` errors. Nothing in a rule is executed or spliced into a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from siem.detect import ir
from siem.detect.translate import Unsupported

OUR_KEYS = frozenset({"schedule", "suppress", "notify", "tests"})
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
SEVERITY = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}


class RuleError(ValueError):
    """A rule file problem: ``file:line: key: message``."""


def parse_duration(text: object, where: str) -> timedelta:
    match = _DURATION.match(str(text).strip()) if isinstance(text, str | int) else None
    if not match or int(match.group(1)) <= 0:
        raise RuleError(f"{where}: expected a positive duration like 30s, 5m, 1h or 1d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class TestCase:
    name: str
    expect: dict[str, Any]  # exactly one of match (bool), matches (int), alerts (int)
    lines: str | None = None
    file: Path | None = None
    log_type: str | None = None


@dataclass(frozen=True)
class Suppress:
    by: tuple[str, ...]
    period: timedelta


@dataclass
class Rule:
    """A runnable rule: identity for alerts, the IR condition, and our scheduling keys."""

    id: str
    name: str  # Sigma `name` if given (correlations refer to it), else the id
    title: str
    description: str
    author: str
    references: list[str]
    level: str
    tags: list[str]
    status: str
    license: str
    version: str  # `modified` or `date`: a changed rule gets new alert ids
    path: Path
    line: int
    logsource: dict[str, str | None]
    condition: ir.Node  # mapped onto our schema; includes the event.dataset filter
    interval: timedelta = timedelta(minutes=5)
    lookback: timedelta | None = None  # a first cycle's reach back; None = the config's default
    suppress: Suppress | None = None
    notify: tuple[str, ...] = ()
    tests: tuple[TestCase, ...] = ()
    correlation: Correlation | None = None
    problems: list[str] = field(default_factory=list)  # why it cannot run here (lint errors)

    @property
    def severity(self) -> int:
        return SEVERITY.get(self.level, 47)

    @property
    def runnable(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Correlation:
    type: str  # event_count | value_count | temporal | temporal_ordered
    rules: tuple[Rule, ...]  # the referenced rules, in the file's order
    group_by: tuple[str, ...]  # mapped field names
    timespan: timedelta
    op: str  # gte | gt | lte | lt | eq
    count: int
    value_field: str | None = None  # value_count's condition.field (mapped)

    def holds(self, value: int) -> bool:
        return {
            "gte": value >= self.count,
            "gt": value > self.count,
            "lte": value <= self.count,
            "lt": value < self.count,
            "eq": value == self.count,
        }[self.op]


def _lines(text: str) -> list[dict[str, int]]:
    """Line (1-based) of each top-level key, per YAML document, for error messages."""
    out: list[dict[str, int]] = []
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        keys: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for key, _ in node.value:
                keys[str(key.value)] = key.start_mark.line + 1
        out.append(keys)
    return out


def load_paths(paths: list[str | Path]) -> list[Rule]:
    """Every rule in the given files and folders (``*.yml``/``*.yaml``, recursively), sorted by path."""
    from siem.detect.mapping import Mapper

    mapper = Mapper()
    rules: list[Rule] = []
    for file in rule_files(paths):
        rules.extend(load_file(file, mapper))
    return rules


def rule_files(paths: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml") and f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise RuleError(f"{p}: no such rule file or folder")
    return files


def load_file(file: Path, mapper: Any = None) -> list[Rule]:
    """The rules of one file; a correlation's base rules are returned once, inside it, not alone."""
    from siem.detect.mapping import Mapper

    mapper = mapper or Mapper()
    text = file.read_text(encoding="utf-8")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        lines = _lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise RuleError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not all(isinstance(d, dict) for d in docs):
        raise RuleError(f"{file}:1: each YAML document must be a mapping (a Sigma rule)")
    try:
        collection = SigmaCollection.from_dicts([sigma_only(d) for d in docs], collect_errors=True)
    except SigmaError as exc:
        raise RuleError(f"{file}: {exc}") from None
    by_ref: dict[str, Rule] = {}
    base: list[Rule] = []
    out: list[Rule] = []
    for index, (doc, sigma) in enumerate(zip(docs, collection.rules, strict=True)):
        keys = lines[index] if index < len(lines) else {}
        rule = _common(file, doc, sigma, keys)
        _our_keys(rule, doc, keys, file)
        if sigma.errors:
            rule.problems.extend(f"Sigma: {e}" for e in sigma.errors)
        if isinstance(sigma, SigmaCorrelationRule):
            _correlate(rule, sigma, by_ref, mapper)
            for ref in rule.correlation.rules if rule.correlation else ():
                if ref in base:
                    base.remove(ref)
            out.append(rule)
        else:
            _detect(rule, sigma, mapper)
            by_ref[rule.id] = rule
            by_ref[rule.name] = rule
            base.append(rule)
    # standalone single-event rules, then correlations (whose base rules are not alerted alone
    # unless the base rule sets `generate: true`... Sigma's default is not to)
    return [*base, *out]


def sigma_only(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in OUR_KEYS}


def _common(file: Path, doc: dict[str, Any], sigma: Any, keys: dict[str, int]) -> Rule:
    tags = [f"{t.namespace}.{t.name}" for t in (sigma.tags or [])]
    version = str(sigma.modified or sigma.date or "1")
    logsource = getattr(sigma, "logsource", None)
    return Rule(
        id=str(sigma.id) if sigma.id else str(doc.get("name") or file.stem),
        name=str(doc.get("name") or (sigma.id or file.stem)),
        title=sigma.title or file.stem,
        description=(sigma.description or "").strip(),
        author=sigma.author or "unknown",
        references=list(sigma.references or []),
        level=sigma.level.name.lower() if sigma.level else "medium",
        tags=tags,
        status=sigma.status.name.lower() if sigma.status else "experimental",
        license=sigma.license or ("DRL-1.1" if "sigmahq" in str(file).lower() else ""),
        version=version,
        path=file,
        line=keys.get("title", 1),
        logsource={
            "product": getattr(logsource, "product", None),
            "service": getattr(logsource, "service", None),
            "category": getattr(logsource, "category", None),
        },
        condition=ir.FALSE,
    )


def _our_keys(rule: Rule, doc: dict[str, Any], keys: dict[str, int], file: Path) -> None:
    def where(key: str) -> str:
        return f"{file}:{keys.get(key, rule.line)}: {key}"

    schedule = doc.get("schedule")
    if schedule is not None:
        if not isinstance(schedule, dict) or set(schedule) - {"interval", "lookback"}:
            raise RuleError(f"{where('schedule')}: expected {{interval: 5m, lookback: 24h}}")
        if "interval" in schedule:
            rule.interval = parse_duration(schedule["interval"], f"{where('schedule')}.interval")
        if "lookback" in schedule:
            rule.lookback = parse_duration(schedule["lookback"], f"{where('schedule')}.lookback")
    suppress = doc.get("suppress")
    if suppress is not None:
        if not isinstance(suppress, dict) or set(suppress) - {"by", "for"} or "for" not in suppress:
            raise RuleError(f"{where('suppress')}: expected {{by: [field, ...], for: 1h}}")
        by = suppress.get("by") or []
        if not isinstance(by, list) or not all(isinstance(b, str) and b for b in by):
            raise RuleError(f"{where('suppress')}.by: expected a list of field names")
        rule.suppress = Suppress(tuple(by), parse_duration(suppress["for"], f"{where('suppress')}.for"))
    notify = doc.get("notify")
    if notify is not None:
        if not isinstance(notify, list) or not all(isinstance(n, str) and n for n in notify):
            raise RuleError(f"{where('notify')}: expected a list of route names")
        rule.notify = tuple(notify)
    tests = doc.get("tests")
    if tests is not None:
        rule.tests = tuple(_tests(tests, where("tests"), file))


def _tests(raw: object, where: str, file: Path) -> list[TestCase]:
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{where}: expected a list of test cases")
    cases = []
    for i, case in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(case, dict):
            raise RuleError(f"{at}: expected a mapping with name, lines or file, expect")
        unknown = set(case) - {"name", "lines", "file", "log_type", "expect"}
        if unknown:
            raise RuleError(f"{at}: unknown key(s) {sorted(unknown)}")
        if ("lines" in case) == ("file" in case):
            raise RuleError(f"{at}: give exactly one of lines or file")
        expect = case.get("expect")
        if not isinstance(expect, dict) or len(expect) != 1:
            raise RuleError(f"{at}.expect: expected one of {{match: true|false}}, {{matches: N}}, {{alerts: N}}")
        (key, value) = next(iter(expect.items()))
        if key == "match" and not isinstance(value, bool):
            raise RuleError(f"{at}.expect.match: expected true or false")
        if key in ("matches", "alerts") and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise RuleError(f"{at}.expect.{key}: expected a whole number")
        if key not in ("match", "matches", "alerts"):
            raise RuleError(f"{at}.expect: unknown expectation {key!r}")
        lines = case.get("lines")
        if lines is not None and not isinstance(lines, str):
            raise RuleError(f"{at}.lines: expected text (use a | block)")
        path = None
        if "file" in case:
            path = (file.parent / str(case["file"])).resolve()
            if not path.is_file():
                raise RuleError(f"{at}.file: {case['file']} not found next to {file.name}")
        cases.append(
            TestCase(
                name=str(case.get("name") or f"case {i + 1}"),
                expect=dict(expect),
                lines=lines,
                file=path,
                log_type=case.get("log_type"),
            )
        )
    return cases


def _detect(rule: Rule, sigma: SigmaRule, mapper: Any) -> None:
    try:
        rule.condition, problems = mapper.compile(sigma)
    except Unsupported as exc:
        rule.problems.append(f"unsupported: {exc}")
        return
    except SigmaError as exc:
        rule.problems.append(f"Sigma: {exc}")
        return
    rule.problems.extend(problems)


def _correlate(rule: Rule, sigma: SigmaCorrelationRule, by_ref: dict[str, Rule], mapper: Any) -> None:
    refs: list[Rule] = []
    for ref in sigma.rules or []:
        name = str(ref.reference)
        found = by_ref.get(name)
        if found is None:
            rule.problems.append(f"correlation refers to {name!r}, which is not in the same file")
            continue
        refs.append(found)
        rule.problems.extend(f"{found.title}: {p}" for p in found.problems)
    ctype = sigma.type.name.lower()
    if ctype not in ("event_count", "value_count", "temporal", "temporal_ordered"):
        rule.problems.append(f"unsupported correlation type {ctype}")
        return
    cond = sigma.condition
    op = getattr(cond, "op", None)
    if op is None:
        rule.problems.append("unsupported correlation condition (extended conditions are not supported)")
        return
    group_by = tuple(mapper.map_correlation_field(f, refs) for f in (sigma.group_by or []))
    value_field = None
    if ctype == "value_count":
        if not cond.fieldref or isinstance(cond.fieldref, list):
            rule.problems.append("value_count needs one condition.field")
        else:
            value_field = mapper.map_correlation_field(str(cond.fieldref), refs)
    count = cond.count
    if ctype.startswith("temporal") and count is None:
        count = len(refs)
    rule.correlation = Correlation(
        type=ctype,
        rules=tuple(refs),
        group_by=group_by,
        timespan=timedelta(seconds=sigma.timespan.seconds),
        op=op.name.lower(),
        count=int(count),
        value_field=value_field,
    )
    rule.condition = ir.any_of([r.condition for r in refs])
    if not rule.logsource["product"] and refs:
        rule.logsource = refs[0].logsource
