"""Which fields our documents carry, so a rule on a field we never fill is an error, not silence.

``fields.txt`` lists every field path the parsers produce, **per dataset**: one ``dataset field``
line for each field some document of that dataset carries when the bundled samples
(``../shared/samples``, or ``$SIEM_SHARED_DIR/samples``) are parsed the way ``siem parse`` parses
them, plus one ``(template) field`` line for each property the index template maps explicitly
(``index_templates/component-ecs.json``). A field path is dotted, list levels flattened (a field
inside a list of objects is ``a.b.c``).

Below a free-form payload root (``FREE_FORM``: CloudTrail request/response objects, Kubernetes
request/response objects...) any sub-path is accepted, since the payload is whatever the API call
carried; the file lists the root itself.

Regenerate after a parser change (a test fails until you do)::

    .venv/bin/python -m siem.detect.catalog
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS_FILE = Path(__file__).with_name("fields.txt")
REPO = Path(__file__).resolve().parents[2]
TEMPLATE_FILE = REPO / "index_templates" / "component-ecs.json"
TEMPLATE = "(template)"  # the "dataset" of fields only the index template names
FREE_FORM: tuple[str, ...] = (
    "aws.cloudtrail.request_parameters",
    "aws.cloudtrail.response_elements",
    "aws.cloudtrail.additional_eventdata",
    "aws.cloudtrail.service_event_details",
    "aws.cloudtrail.insight_details.insight_context",
    "kubernetes.audit.requestObject",
    "kubernetes.audit.responseObject",
    "kubernetes.audit.annotations",
    "kubernetes.audit.user.extra",
    "kubernetes.audit.impersonatedUser.extra",
    "app.fields",  # an app's own JSON keys (kubernetes.container)
    "kubernetes.labels",
)
# Realistic records in their original format for fields the parsers fill that no bundled sample
# happens to contain (parsed like the samples; tests/test_auditd.py checks the same fields):
# an `-S execve -k` audit event with a long argument list, a `-k` file watch creating a PATH
# (nametype=CREATE), and a raw SYSCALL whose number is resolved to its name.
EXTRA: dict[str, str] = {
    "linux.auditd": (
        "type=SYSCALL msg=audit(1700000100.000:5001): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 "
        "a1=55d1 a2=55d2 a3=0 items=2 ppid=3001 pid=3002 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
        'sgid=0 fsgid=0 tty=pts0 ses=7 comm="find" exe="/usr/bin/find" key="execve"\n'
        'type=EXECVE msg=audit(1700000100.000:5001): argc=16 a0="find" a1="/" a2="-xdev" a3="-type" '
        'a4="f" a5="-perm" a6="-4000" a7="-o" a8="-type" a9="f" a10="-perm" a11="-2000" a12="-exec" a13="ls" '
        'a14="-l" a15="{}"\n'
        'type=CWD msg=audit(1700000100.000:5001): cwd="/root"\n'
        "type=EOE msg=audit(1700000100.000:5001): \n"
        "type=SYSCALL msg=audit(1700000101.000:5002): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c "
        "a1=7ffd a2=241 a3=1b6 items=2 ppid=1 pid=4000 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
        'sgid=0 fsgid=0 tty=pts0 ses=7 comm="vi" exe="/usr/bin/vi" key="systemd"\n'
        'type=PATH msg=audit(1700000101.000:5002): item=0 name="/etc/systemd/system/" inode=12 dev=ca:01 '
        "mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT\n"
        'type=PATH msg=audit(1700000101.000:5002): item=1 name="/etc/systemd/system/evil.service" inode=13 '
        "dev=ca:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE\n"
        "type=EOE msg=audit(1700000101.000:5002): \n"
    ),
    # A pod's lograge (Rails) and Envoy access lines in Docker json-file records: the fields the
    # built-in app mappings fill (tests/test_app_logs.py, tests/test_k8s_container.py check them).
    "kubernetes.container": (
        '{"log":"{\\"method\\":\\"POST\\",\\"path\\":\\"/orders?ref=1\\",\\"controller\\":\\"O\\",'
        '\\"action\\":\\"create\\",\\"status\\":201,\\"time\\":\\"2024-01-02T03:04:05Z\\",'
        '\\"remote_ip\\":\\"203.0.113.7\\",\\"request_id\\":\\"r-1\\",\\"user_id\\":42,'
        '\\"user_name\\":\\"alice\\",\\"trace_id\\":\\"Root=1-6593-01\\",\\"user_agent\\":\\"curl\\"}\\n",'
        '"stream":"stdout","time":"2024-01-02T03:04:05Z"}\n'
        '{"log":"{\\"start_time\\":\\"2024-01-02T03:04:05Z\\",\\"response_code\\":503,'
        '\\"downstream_remote_address\\":\\"10.0.0.1:5000\\",\\"x_forwarded_for\\":\\"203.0.113.7\\",'
        '\\"method\\":\\"GET\\",\\"path\\":\\"/\\"}\\n","stream":"stderr","time":"2024-01-02T03:04:05Z"}\n'
    ),
}
HEADER = """\
# Every field path our documents carry, per dataset: "<dataset> <field>".
# "(template) <field>": mapped explicitly by index_templates/component-ecs.json (no sample fills it
# necessarily). Free-form payload roots (siem.detect.catalog.FREE_FORM) accept any sub-path.
# GENERATED from ../shared/samples by `python -m siem.detect.catalog`; do not edit by hand.
"""


@dataclass(frozen=True)
class Catalog:
    fields: frozenset[str]
    free_form: tuple[str, ...] = FREE_FORM
    by_dataset: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path = FIELDS_FILE) -> Catalog:
        if not path.is_file():
            return cls(frozenset())
        by_dataset: dict[str, set[str]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            dataset, _, name = line.partition(" ")
            if not name:  # a bare field name: carried, dataset unknown
                dataset, name = TEMPLATE, dataset
            by_dataset.setdefault(dataset, set()).add(name.strip())
        frozen = {d: frozenset(names) for d, names in by_dataset.items()}
        return cls(frozenset().union(*frozen.values()) if frozen else frozenset(), by_dataset=frozen)

    def carries(self, name: str, datasets: Iterable[str] | None = None) -> bool:
        """Does some document carry ``name`` (of one of ``datasets``, when given)?"""
        if datasets is None:
            names = self.fields
        else:
            names = frozenset().union(*(self.by_dataset.get(d, frozenset()) for d in datasets))
        if name in names:
            return True
        return any(
            (name == root or name.startswith(root + ".")) and (datasets is None or root in names)
            for root in self.free_form
        )

    def problems(self, names: set[str], datasets: Iterable[str] | None = None) -> list[str]:
        wanted = None if datasets is None else sorted(set(datasets))
        where = "our documents" if not wanted else f"{', '.join(wanted)} documents"
        return [f"field {n!r} is not carried by {where}" for n in sorted(names) if not self.carries(n, wanted)]


def paths_of(doc: Any, prefix: str = "", free_form: tuple[str, ...] = FREE_FORM) -> Iterator[str]:
    """Every dotted field path holding a value in ``doc`` (lists flattened; free-form roots not expanded)."""
    if isinstance(doc, list):
        for item in doc:
            yield from paths_of(item, prefix, free_form)
        return
    if isinstance(doc, dict):
        if prefix in free_form:
            if doc:
                yield prefix
            return
        for key, value in doc.items():
            yield from paths_of(value, f"{prefix}.{key}" if prefix else str(key), free_form)
        return
    if doc is not None and prefix:
        yield prefix


def _template_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, spec in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(spec, dict) and isinstance(spec.get("properties"), dict):
            yield from _template_paths(spec["properties"], path)
        else:
            yield path


def samples_dir() -> Path:
    shared = Path(os.environ.get("SIEM_SHARED_DIR", REPO.parent / "shared"))
    return shared / "samples"


def sample_files(root: Path) -> list[Path]:
    """The raw samples: every file under root except oracles, harness configs and licence texts."""
    skip_names = {"MANIFEST.json", "SOURCES.md"}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in skip_names
        and "LICENSES" not in p.relative_to(root).parts
        and not p.name.endswith("-expected.json")
        and not p.name.endswith("-config.yml")
    )


def collect(root: Path | None = None) -> dict[str, set[str]]:
    """{dataset: field paths} over every sample, parsed as `siem parse` does (routing by path and content)."""
    from siem.formats.base import ParseOptions, UnknownFormatError
    from siem.formats.routing import Router
    from siem.pipeline import Event, parse_object
    from siem.sources.local import local_objects

    root = root or samples_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: the samples are needed to generate the field catalog (SIEM_SHARED_DIR)")
    out: dict[str, set[str]] = {}
    router, options = Router(), ParseOptions()
    for path in sample_files(root):
        for obj in local_objects(path):
            try:
                for item in parse_object(obj, router, options, ingested="2024-01-01T00:00:00Z"):
                    if isinstance(item, Event):
                        out.setdefault(item.dataset, set()).update(paths_of(item.doc))
            except UnknownFormatError:
                continue  # content no log type claims (documented out of scope in the samples)
    for dataset, text in EXTRA.items():
        out.setdefault(dataset, set()).update(_parsed_paths(text, dataset))
    template = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    out[TEMPLATE] = set(_template_paths(template["template"]["mappings"]["properties"]))
    return out


def _parsed_paths(text: str, dataset: str) -> set[str]:
    import tempfile

    from siem import formats
    from siem.formats.base import ParseOptions
    from siem.formats.routing import Router
    from siem.pipeline import Event, parse_object
    from siem.sources.local import local_objects

    paths: set[str] = set()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "extra.log"
        path.write_text(text, encoding="utf-8")
        for obj in local_objects(path):
            for item in parse_object(obj, Router(), ParseOptions(), formats.get(dataset), "2024-01-01T00:00:00Z"):
                if isinstance(item, Event):
                    paths.update(paths_of(item.doc))
    return paths


def generate(root: Path | None = None) -> str:
    lines = [f"{dataset} {name}" for dataset, names in sorted(collect(root).items()) for name in sorted(names)]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else FIELDS_FILE
    text = generate()
    target.write_text(text, encoding="utf-8")
    count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    print(f"{target}: {count} dataset/field lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
