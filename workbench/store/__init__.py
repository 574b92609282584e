"""The query layer over a DuckDB file (embedded by default).

Attributes load on first use (PEP 562), so :mod:`workbench.store.sql`, the one
quoting helper, can be imported by :mod:`workbench.passport` without a cycle.
"""
from __future__ import annotations

import importlib

_FROM = {
    "duck": ("BatchOutcome", "IngestReport", "Store", "StoredPassport", "manifest_from_dict",
             "schema_name", "verified_files"),
    "queries": ("QueryResult", "cardinalities", "dimension_breakdown", "filter_sql", "leaves",
                "metric_panel", "metric_series", "rows_by_bucket", "slice_series", "time_range",
                "window_rows"),
}
_WHERE = {name: mod for mod, names in _FROM.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'workbench.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
