"""The case tables behind case-insensitive regexps skip blocks that lower-casing leaves unchanged;
they must equal the tables a walk over every code point builds (the skip relies on simple
lower-casing changing a character only where full lower-casing does)."""

from __future__ import annotations

import _sre

from siem.detect.engines.opensearch_regex import MAX_CP, _tables


def test_case_tables_equal_a_walk_over_every_code_point() -> None:
    lower_inv: dict[str, list[str]] = {}
    tolower_inv: dict[int, list[int]] = {}
    for cp in range(MAX_CP + 1):
        ch = chr(cp)
        low = ch.lower()
        if low != ch and len(low) == 1:
            lower_inv.setdefault(low, []).append(ch)
        if (folded := _sre.unicode_tolower(cp)) != cp:
            tolower_inv.setdefault(folded, []).append(cp)
    tables = _tables()
    assert tables["lower_inv"] == lower_inv
    assert tables["tolower_inv"] == tolower_inv
    assert tables["lower_inv"]["k"] == ["K", "\u212a"]  # the Kelvin sign lower-cases to k
    assert (0x30, 0x39) in tables["digit"] and (0x660, 0x669) in tables["digit"]
