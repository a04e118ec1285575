"""``siem rules lint | test | compile``: what a detection engineer runs before pushing a rule.

* lint: the files parse (YAML, Sigma, our keys), every rule maps onto fields our documents carry,
  and pySigma's offline validators pass. Exit 1 with ``file:line: message`` lines otherwise.
* test: every rule's own cases through the real parsers on the offline engine and DuckDB, and on
  OpenSearch when a URL is configured; a table per rule and engine. Exit 1 on any failure.
* compile: the query an engine runs for one rule, for debugging.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from siem.detect.rules import Rule, RuleError, load_file, rule_files

DEFAULT_RULES = "detections"
# These two download MITRE data at run time; everything here must work offline.
ONLINE_VALIDATORS = frozenset({"attacktag", "d3_fendtag"})


def register(sub: Any) -> None:
    p = sub.add_parser("rules", help="lint, test and compile detection rules (Sigma YAML)")
    actions = p.add_subparsers(dest="rules_command", required=True)
    lint = actions.add_parser("lint", help="schema, field mapping and pySigma validators; exit 1 on a problem")
    lint.add_argument("paths", nargs="*", metavar="PATH", help=f"rule files or folders (default: {DEFAULT_RULES})")
    lint.add_argument(
        "--strict", action="store_true", help="a rule without matching and non-matching tests is an error"
    )
    lint.set_defaults(func=cmd_lint)
    test = actions.add_parser("test", help="run every rule's test cases on every engine")
    test.add_argument("paths", nargs="*", metavar="PATH", help=f"rule files or folders (default: {DEFAULT_RULES})")
    test.add_argument("--json", action="store_true", help="one JSON result per case and engine")
    test.set_defaults(func=cmd_test)
    comp = actions.add_parser("compile", help="show the query an engine runs for one rule")
    comp.add_argument("rule", metavar="RULE", help="a rule file")
    comp.add_argument("--target", choices=("opensearch", "duckdb", "ir"), default="opensearch")
    comp.set_defaults(func=cmd_compile)


def _load(paths: list[str]) -> tuple[list[Rule], list[str]]:
    """Rules of every file; a file that does not load is one error line, the others still load."""
    from siem.cli_common import UserError
    from siem.detect.mapping import Mapper

    try:
        files = rule_files(paths or [DEFAULT_RULES])
    except RuleError as exc:
        raise UserError(str(exc)) from None
    mapper = Mapper()
    rules: list[Rule] = []
    errors: list[str] = []
    for file in files:
        try:
            rules.extend(load_file(file, mapper))
        except RuleError as exc:
            errors.append(str(exc))
    return rules, errors


def validator_issues(rules: list[Rule]) -> list[str]:
    """pySigma's offline validators over the files (issues of medium severity and above)."""
    from sigma.collection import SigmaCollection
    from sigma.validation import SigmaValidator
    from sigma.validators.base import SigmaValidationIssueSeverity
    from sigma.validators.core import validators

    from siem.detect.rules import sigma_only

    chosen = [cls for name, cls in sorted(validators.items()) if name not in ONLINE_VALIDATORS]
    files = sorted({r.path for r in rules})
    out: list[str] = []
    for file in files:
        docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if isinstance(d, dict)]
        collection = SigmaCollection.from_dicts([sigma_only(d) for d in docs], collect_errors=True)
        for issue in SigmaValidator(chosen).validate_rules(collection):
            if issue.severity.value < SigmaValidationIssueSeverity.MEDIUM.value:
                continue
            out.append(f"{file}:1: {type(issue).__name__}: {issue.description}")
    return out


def cmd_lint(args: argparse.Namespace, settings: Any) -> int:
    logging.getLogger("sigma").setLevel(logging.ERROR)
    rules, errors = _load(args.paths)
    warnings: list[str] = []
    for rule in rules:
        for problem in rule.problems:
            errors.append(f"{rule.path}:{rule.line}: {rule.title}: {problem}")
        if _is_base(rule, rules):
            continue
        if not rule.tests:
            (errors if args.strict else warnings).append(f"{rule.path}:{rule.line}: {rule.title}: no tests")
        elif not _has_both_cases(rule):
            (errors if args.strict else warnings).append(
                f"{rule.path}:{rule.line}: {rule.title}: tests need a matching and a non-matching case"
            )
    errors.extend(validator_issues(rules))
    for line in errors:
        print(line)
    for line in warnings:
        print(f"warning: {line}")
    print(f"{len(rules)} rules, {len(errors)} problems, {len(warnings)} warnings", file=sys.stderr)
    return 1 if errors else 0


def _is_base(rule: Rule, rules: list[Rule]) -> bool:
    return any(rule in (r.correlation.rules if r.correlation else ()) for r in rules)


def _has_both_cases(rule: Rule) -> bool:
    def positive(expect: dict[str, Any]) -> bool:
        (key, value) = next(iter(expect.items()))
        return bool(value) if key == "match" else value > 0

    kinds = {positive(c.expect) for c in rule.tests}
    return kinds == {True, False}


def cmd_test(args: argparse.Namespace, settings: Any) -> int:
    from siem.detect import ruletest

    logging.getLogger("sigma").setLevel(logging.ERROR)
    rules, errors = _load(args.paths)
    engines: dict[str, Any] = {"offline": ruletest.offline_engine, "duckdb": ruletest.duckdb_engine}
    cluster = ruletest.OpenSearchCases(settings) if settings.opensearch["url"] else None
    if cluster is not None:
        engines["opensearch"] = cluster
    try:
        report = ruletest.run_tests(rules, engines, settings.parse_options())
    finally:
        if cluster is not None:
            cluster.close()
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if args.json:
        for r in report.results:
            print(
                orjson.dumps(
                    {"rule": r.rule.title, "file": str(r.rule.path), "case": r.case.name, "engine": r.engine}
                    | {"ok": r.ok, "detail": r.detail}
                ).decode()
            )
    else:
        _table(report, list(engines))
    cases = len({(id(r.rule), r.case.name) for r in report.results})
    print(
        f"{len(rules)} rules, {cases} cases on {', '.join(engines)}: {len(report.results) - len(report.failed)} passed,"
        f" {len(report.failed)} failed; {len(report.skipped)} rules cannot run here, {len(report.untested)} untested",
        file=sys.stderr,
    )
    return 1 if report.failed or errors else 0


def _table(report: Any, engines: list[str]) -> None:
    by_rule: dict[int, list[Any]] = {}
    for r in report.results:
        by_rule.setdefault(id(r.rule), []).append(r)
    width = max((len(rs[0].rule.title) for rs in by_rule.values()), default=10)
    width = min(max(width, 10), 70)
    print(f"{'rule':{width}}  cases  " + "  ".join(f"{e:8}" for e in engines))
    for results in by_rule.values():
        rule = results[0].rule
        cells = []
        for engine in engines:
            mine = [r for r in results if r.engine == engine]
            bad = sum(not r.ok for r in mine)
            cells.append(f"{'ok' if not bad else f'{bad} FAIL':8}")
        print(f"{rule.title[:width]:{width}}  {len(results) // len(engines):5}  " + "  ".join(cells))
    for r in report.failed:
        print(f"FAIL {r.rule.path}: {r.rule.title} / {r.case.name} [{r.engine}]: {r.detail}")
    for rule, why in report.skipped:
        print(f"SKIP {rule.path}: {rule.title}: {why}")


def cmd_compile(args: argparse.Namespace, settings: Any) -> int:
    from siem.cli_common import UserError

    logging.getLogger("sigma").setLevel(logging.ERROR)
    path = Path(args.rule)
    if not path.is_file():
        raise UserError(f"{path}: no such rule file")
    try:
        rules = load_file(path)
    except RuleError as exc:
        raise UserError(str(exc)) from None
    for rule in rules:
        print(f"# {rule.title} ({rule.id})")
        for problem in rule.problems:
            print(f"# cannot run here: {problem}")
        if args.target == "ir":
            print(repr(rule.condition))
        elif args.target == "duckdb":
            print(_duckdb_sql(rule))
        else:
            from siem.detect.engines.opensearch_dsl import Compiler

            dsl, exact = Compiler().compile(rule.condition)
            print(orjson.dumps(dsl, option=orjson.OPT_INDENT_2).decode())
            if not exact:
                print("# some conditions are pre-filters here; hits are verified by the offline evaluator")
        if rule.correlation:
            c = rule.correlation
            print(
                f"# correlation {c.type}: group-by {list(c.group_by)}, timespan {c.timespan}, {c.op} {c.count}"
                + (f" distinct {c.value_field}" if c.value_field else "")
            )
    return 0


def _duckdb_sql(rule: Rule) -> str:
    """The SQL the embedded store runs (compiled against a throw-away store: no data is read)."""
    import tempfile

    from siem.detect.engines import Scope
    from siem.detect.engines.duckdb import DuckDBEngine
    from siem.sinks.embedded import EmbeddedStore

    with tempfile.TemporaryDirectory(prefix="siem-compile-") as tmp:
        store = EmbeddedStore(Path(tmp))
        try:
            sql, params = DuckDBEngine(store).sql(rule, Scope())
        finally:
            store.close()
    return f"{sql}\n-- parameters: {params!r}"
