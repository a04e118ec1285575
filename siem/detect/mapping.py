"""Sigma field names onto our schema: the pySigma processing pipeline in ``mapping.yml``.

The pipeline renames fields per logsource and adds an ``event.dataset`` condition that scopes a
logsource to the datasets carrying it. A rule whose logsource no dataset carries, or that uses a
field the documents of those datasets do not have (``fields.txt``, see ``siem.detect.catalog``),
gets a *problem* naming the field — it is reported by ``siem rules lint`` and skipped by the
runner, never run as a silently empty query. docs/sigma-mapping.md has the tables.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation, FieldMappingTransformation
from sigma.rule import SigmaRule

from siem.detect import ir
from siem.detect.catalog import Catalog
from siem.detect.translate import condition

if TYPE_CHECKING:
    from siem.detect.rules import Rule

PIPELINE_FILE = Path(__file__).with_name("mapping.yml")
DATASET_PREFIX = "dataset-"
# Dataset items for a product as a whole: they carry a rule only when it names no service and no
# category (pySigma's logsource condition cannot say "no service"): `product: linux` alone is any
# syslog-type file, but `product: linux, service: journald` is not something we carry.
GENERIC_ITEMS = frozenset({"dataset-linux"})


class Mapper:
    def __init__(self, pipeline_file: Path = PIPELINE_FILE, catalog: Catalog | None = None) -> None:
        self.pipeline_file = pipeline_file
        self.catalog = catalog or Catalog.load()

    @cached_property
    def _definition(self) -> dict[str, Any]:
        return yaml.safe_load(self.pipeline_file.read_text(encoding="utf-8"))

    def pipeline(self) -> ProcessingPipeline:
        """A fresh pipeline per rule: pySigma pipelines keep per-application state. Built from the
        parsed YAML (what ``ProcessingPipeline.from_yaml`` does) without re-reading it each time."""
        return ProcessingPipeline.from_dict(copy.deepcopy(self._definition))

    def compile(self, sigma: SigmaRule) -> tuple[ir.Node, list[str]]:
        """The rule's condition on our schema, and what keeps it from running here (if anything)."""
        pipeline = self.pipeline()
        pipeline.apply(sigma)
        applied = [
            item
            for item in pipeline.items
            if (item.identifier or "").startswith(DATASET_PREFIX)
            and sigma.was_processed_by(item.identifier)
            and (item.identifier not in GENERIC_ITEMS or _names_no_service(sigma))
        ]
        where = f"{sigma.source.path}: " if getattr(sigma, "source", None) is not None else ""
        problems: list[str] = []
        datasets = _datasets(applied)
        if not applied or datasets == set():
            src = sigma.logsource
            problems.append(
                f"{where}logsource product={src.product} service={src.service} category={src.category}"
                " is not carried by any dataset"
            )
        node = ir.any_of([condition(c.parsed) for c in sigma.detection.parsed_condition])
        node = _empty_is_absent(node)
        problems.extend(where + p for p in self._field_problems(pipeline, node, datasets or None))
        return node, problems

    def _field_problems(self, pipeline: ProcessingPipeline, node: ir.Node, datasets: set[str] | None) -> list[str]:
        """Fields the documents do not carry. A Sigma field mapped to several of ours (``a1`` →
        EXECVE argument or SYSCALL argument) needs one of them carried: the others only never match."""
        names = ir.fields_of(node) - {"event.dataset"}
        sigma_names: dict[str, set[str]] = {}
        spare: set[str] = set()
        for source, targets in pipeline.field_mappings.items():
            for target in targets:
                sigma_names.setdefault(target, set()).add(str(source) if source is not None else "keywords")
            carried = {t for t in targets if self.catalog.carries(t, datasets)}
            if carried:
                spare |= set(targets) - carried
        out = []
        for name in sorted(names - spare):
            if self.catalog.carries(name, datasets):
                continue
            problem = self.catalog.problems({name}, datasets)[0]
            if name in sigma_names and sigma_names[name] != {name}:
                problem += f" (Sigma {', '.join(sorted(sigma_names[name]))})"
            out.append(problem)
        return out

    def map_correlation_field(self, name: str, refs: list[Rule]) -> str:
        """A correlation's group-by/value field: mapped as the referenced rules' logsource maps it."""
        if not refs:
            return name
        probe = _probe_rule(refs[0].logsource, name)
        for item in self.pipeline().items:
            transformation = item.transformation
            if not isinstance(transformation, FieldMappingTransformation) or not item.match_rule_conditions(probe):
                continue
            mapped = transformation.apply_field_name(name)
            if mapped is not None:
                name = mapped if isinstance(mapped, str) else mapped[0]
        return name


def _names_no_service(sigma: SigmaRule) -> bool:
    return sigma.logsource.service is None and sigma.logsource.category is None


def _datasets(items: Iterable[ProcessingItem]) -> set[str] | None:
    """The datasets every applied dataset condition allows (they are ANDed), None when none applied."""
    out: set[str] | None = None
    for item in items:
        transformation = item.transformation
        if not isinstance(transformation, AddConditionTransformation):
            continue
        value: Any = transformation.conditions.get("event.dataset")
        allowed = {value} if isinstance(value, str) else set(value or ())
        out = allowed if out is None else out & allowed
    return out


def _probe_rule(logsource: dict[str, str | None], field: str) -> SigmaRule:
    return SigmaRule.from_dict(
        {
            "title": "probe",
            "logsource": {k: v for k, v in logsource.items() if v},
            "detection": {"selection": {field: "x"}, "condition": "selection"},
        }
    )


def _empty_is_absent(node: ir.Node) -> ir.Node:
    """``field: ''`` → the field is absent: our parsers never store empty or ``-`` values (see
    docs/log-types.md, "No placeholders"), so an empty value in the log is an absent field here."""
    if isinstance(node, ir.And):
        return ir.all_of([_empty_is_absent(a) for a in node.args])
    if isinstance(node, ir.Or):
        return ir.any_of([_empty_is_absent(a) for a in node.args])
    if isinstance(node, ir.Not):
        return ir.negate(_empty_is_absent(node.arg))
    if isinstance(node, ir.Str) and node.parts in ((), ("",)):
        return ir.negate(ir.Exists(node.field))
    return node
