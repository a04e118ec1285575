"""Findings for people (a table grouped by severity, with why and how to fix) and for pipelines (JSON)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from siem.posture.model import SEVERITIES, SEVERITY_RANK, Finding, Status

_COLOURS = {Status.FAIL: "31", Status.ERROR: "33", Status.PASS: "32", Status.NOT_APPLICABLE: "2"}
_LABELS = {Status.FAIL: "FAIL", Status.ERROR: "ERROR", Status.PASS: "PASS", Status.NOT_APPLICABLE: "N/A"}


def exit_code(findings: Sequence[Finding], fail_on: str) -> int:
    """1 when a failing (or un-checkable) finding is at or above ``fail_on``, so a CI job can gate on it."""
    threshold = SEVERITY_RANK[fail_on]
    return 1 if any(f.failing and SEVERITY_RANK[f.severity] >= threshold for f in findings) else 0


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = Counter(f.status for f in findings)
    return {status.value: counts.get(status, 0) for status in Status}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def render_json(findings: Sequence[Finding], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "summary": summary(findings), "findings": [f.to_dict() for f in findings]}, indent=2)


def render_text(findings: Sequence[Finding], meta: dict[str, Any], colour: bool, show_all: bool) -> str:
    def paint(status: Status, text: str) -> str:
        return f"\033[{_COLOURS[status]}m{text}\033[0m" if colour else text

    shown = [f for f in findings if show_all or f.failing]
    buckets = ", ".join(meta["log_buckets"]) or "none"
    lines = [f"account {meta['account']} · regions {', '.join(meta['regions'])} · log buckets {buckets}", ""]
    if shown:
        widths = [max(len(getattr(f, name)) for f in shown) for name in ("check", "region", "resource")]
        for severity in SEVERITIES:
            group = [f for f in shown if f.severity == severity]
            if not group:
                continue
            lines.append(severity.upper())
            for f in group:
                label = paint(f.status, f"{_LABELS[f.status]:<5}")
                cells = [f.check.ljust(widths[0]), f.region.ljust(widths[1]), f.resource.ljust(widths[2])]
                lines.append(f"  {label}  {'  '.join(cells)}  {f.detail}")
            lines.append("")
    failing = {f.check: f for f in findings if f.failing}
    if failing:
        lines.append("How to fix")
        for f in failing.values():
            lines.extend([f"  {f.check} ({f.severity}): {f.title}", f"    why: {f.why}", f"    fix: {f.fix}"])
        lines.append("")
    counts = summary(findings)
    lines.append(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} could not be checked, "
        f"{counts['not_applicable']} not applicable" + ("" if show_all else " (--all lists every finding)")
    )
    return "\n".join(lines)
