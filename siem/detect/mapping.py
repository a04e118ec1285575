"""Sigma field names onto our schema: the pySigma processing pipeline in ``mapping.yml``.

The pipeline renames fields per logsource and adds an ``event.dataset`` condition that scopes a
logsource to the datasets carrying it. A rule whose logsource no dataset carries, or that uses a
field our documents do not have, gets a *problem* naming the field — it is reported by
``siem rules lint`` and skipped by the runner, never run as a silently empty query.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from siem.detect import ir
from siem.detect.catalog import Catalog
from siem.detect.translate import condition

if TYPE_CHECKING:
    from siem.detect.rules import Rule

PIPELINE_FILE = Path(__file__).with_name("mapping.yml")


class Mapper:
    def __init__(self, pipeline_file: Path = PIPELINE_FILE, catalog: Catalog | None = None) -> None:
        self.pipeline_file = pipeline_file
        self.catalog = catalog or Catalog.load()

    @cached_property
    def _text(self) -> str:
        return self.pipeline_file.read_text(encoding="utf-8")

    def pipeline(self) -> ProcessingPipeline:
        """A fresh pipeline per rule: pySigma pipelines keep per-application state."""
        return ProcessingPipeline.from_yaml(self._text)

    def compile(self, sigma: SigmaRule) -> tuple[ir.Node, list[str]]:
        """The rule's condition on our schema, and what keeps it from running here (if anything)."""
        pipeline = self.pipeline()
        pipeline.apply(sigma)
        dataset_items = [i.identifier for i in pipeline.items if (i.identifier or "").startswith("dataset-")]
        problems: list[str] = []
        if not any(sigma.was_processed_by(i) for i in dataset_items):
            src = sigma.logsource
            problems.append(
                f"logsource product={src.product} service={src.service} category={src.category}"
                " is not carried by any dataset"
            )
        node = ir.any_of([condition(c.parsed) for c in sigma.detection.parsed_condition])
        problems.extend(self.catalog.problems(ir.fields_of(node)))
        return node, problems

    def map_correlation_field(self, name: str, refs: list[Rule]) -> str:
        """A correlation's group-by/value field: mapped as the referenced rules' logsource maps it."""
        if not refs:
            return name
        pipeline = self.pipeline()
        for item in pipeline.items:
            mapping = getattr(item.transformation, "mapping", None)
            if not mapping or name not in mapping:
                continue
            if _logsource_matches(item, refs[0]):
                target = mapping[name]
                return target if isinstance(target, str) else target[0]
        return name


def _logsource_matches(item: object, rule: Rule) -> bool:
    conditions = getattr(item, "rule_conditions", None) or []
    for cond in conditions:
        for attr in ("product", "service", "category"):
            want = getattr(cond, attr, None)
            if want is not None and want != rule.logsource.get(attr):
                return False
    return True
