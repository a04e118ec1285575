"""Which fields our documents carry, so a rule on a field we never fill is an error, not silence.

``fields.txt`` lists every field path the parsers produce (from the bundled samples and the index
templates). Below a free-form payload root (``FREE_FORM``: CloudTrail request/response objects,
Kubernetes request/response objects...) any sub-path is accepted, since the payload is whatever
the API call carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIELDS_FILE = Path(__file__).with_name("fields.txt")
FREE_FORM: tuple[str, ...] = (
    "aws.cloudtrail.request_parameters",
    "aws.cloudtrail.response_elements",
    "aws.cloudtrail.additional_eventdata",
    "aws.cloudtrail.service_event_details",
    "kubernetes.audit.requestObject",
    "kubernetes.audit.responseObject",
    "kubernetes.audit.annotations",
)


@dataclass(frozen=True)
class Catalog:
    fields: frozenset[str]
    free_form: tuple[str, ...] = FREE_FORM

    @classmethod
    def load(cls, path: Path = FIELDS_FILE) -> Catalog:
        if not path.is_file():
            return cls(frozenset())
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls(frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#")))

    def carries(self, name: str) -> bool:
        if name in self.fields:
            return True
        return any(name == root or name.startswith(root + ".") for root in self.free_form)

    def problems(self, names: set[str]) -> list[str]:
        return [f"field {n!r} is not carried by our documents" for n in sorted(names) if not self.carries(n)]
