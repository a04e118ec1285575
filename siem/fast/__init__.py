"""Batch fast paths: a chunk of lines split and mapped straight to JSON bytes.

The per-record mappers in siem/formats/ stay the reference. A fast path maps only the rows it can
prove it maps exactly as the reference does (plain ASCII, the usual field shapes) and hands every
other row back, with its position, to the reference `to_ecs` — so dead letters and every decision
documented in docs/log-types/ are unchanged. tests/test_fast_differential.py (ALB) and
tests/test_fast_vpcflow.py hold the two equal; docs/fast-path.md says what each path accepts and why.
"""

from __future__ import annotations

import os


def enabled() -> bool:
    """Whether fast paths are used: `SIEM_FAST_PATH=off` runs the reference mappers alone (to compare)."""
    return os.environ.get("SIEM_FAST_PATH", "on").lower() not in ("off", "0", "false", "no")
