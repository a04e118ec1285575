"""What one detection cycle did: per rule (window, matches, new/updated alerts, error or why it was
skipped) and in total — the summary `siem detect run` prints (and ``--json``) and its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siem.detect.rules import Rule


@dataclass
class RuleRun:
    rule: Rule
    matches: int = 0
    new: int = 0
    updated: int = 0
    window: tuple[str, str] | None = None
    error: str | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "title": self.rule.title,
            "path": str(self.rule.path),
            "window": list(self.window) if self.window else None,
            "matches": self.matches,
            "new": self.new,
            "updated": self.updated,
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class CycleReport:
    mode: str  # scheduled | retro-hunt
    runs: list[RuleRun] = field(default_factory=list)
    events_scanned: int = 0
    seconds: float = 0.0
    load_errors: list[str] = field(default_factory=list)  # rule files that did not load

    @property
    def ran(self) -> list[RuleRun]:
        return [r for r in self.runs if r.skipped is None and r.error is None]

    @property
    def new(self) -> int:
        return sum(r.new for r in self.runs)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.runs)

    @property
    def exit_code(self) -> int:
        """0 every rule ran; 1 something was skipped or failed (the summary says which)."""
        return 0 if len(self.ran) == len(self.runs) and not self.load_errors else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rules_run": len(self.ran),
            "rules_skipped": sum(r.skipped is not None for r in self.runs),
            "rules_failed": sum(r.error is not None for r in self.runs),
            "events_scanned": self.events_scanned,
            "alerts_new": self.new,
            "alerts_updated": self.updated,
            "seconds": round(self.seconds, 3),
            "load_errors": self.load_errors,
            "rules": [r.to_dict() for r in self.runs],
        }

    def render(self) -> str:
        lines = [
            f"{self.mode}: {len(self.ran)} of {len(self.runs)} rules ran, {self.events_scanned} events scanned,"
            f" {self.new} new alerts, {self.updated} updated ({self.seconds:.1f}s)"
        ]
        lines += [f"  cannot load: {e}" for e in self.load_errors]
        for r in self.runs:
            if r.skipped is not None:
                lines.append(f"  skipped {r.rule.path}: {r.rule.title}: {r.skipped}")
            elif r.error is not None:
                lines.append(f"  FAILED {r.rule.path}: {r.rule.title}: {r.error} (retried next cycle)")
            elif r.new or r.updated:
                lines.append(f"  {r.rule.title}: {r.matches} matches, {r.new} new, {r.updated} updated")
        return "\n".join(lines)
