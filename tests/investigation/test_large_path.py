"""Passports with millions of possible leaves are localized in DuckDB (screen, pool, search).

The path is chosen by the product of the dimensions' cardinalities; here the
threshold is lowered so a small incident takes it, and the answer must be the
one the leaf-by-leaf path gives: the iOS slice and the iOS flag.
"""
from __future__ import annotations

import workbench.investigation.slicing as slicing


def test_large_passport_path_finds_the_slice_and_the_change(ios_passport, monkeypatch, tmp_path):
    import workbench as wb

    small = wb.investigate(ios_passport, metric="sessions", artifact_dir=None,
                           db=tmp_path / "a.duckdb")
    monkeypatch.setattr(slicing, "LARGE_LEAVES", 1)
    large = wb.investigate(ios_passport, metric="sessions", artifact_dir=None,
                           db=tmp_path / "b.duckdb")
    assert "GROUP BY" not in large.queries["leaves"]  # fact rows went to the localizer
    assert "GROUP BY" in small.queries["leaves"]
    assert large.verdict == small.verdict == "change"
    assert large.slices[0]["filter"] == small.slices[0]["filter"] == {"platform": "ios"}
    assert large.causes[0]["change_id"] == small.causes[0]["change_id"] == "chg-1"
    assert large.causes[0]["confidence"] >= 0.9
