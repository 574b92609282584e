"""Divergence Workbench: a metric moved after a change; is it real, where, why, how sure.

Importing ``workbench`` is cheap: the heavy packages (pandas, DuckDB) load on
first use of a verb, and the UI (panel, holoviews, bokeh, param) and DoWhy are
never imported by the core.

>>> import workbench as wb
>>> inv = wb.investigate("sample_data/demo", metric="conversion_rate")   # doctest: +SKIP
>>> print(inv.summary())                                                 # doctest: +SKIP
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "investigate": ("workbench.investigation", "investigate"),
    "Investigation": ("workbench.investigation", "Investigation"),
    "load_passport": ("workbench.passport", "load_passport"),
    "Passport": ("workbench.passport", "Passport"),
    "Store": ("workbench.store", "Store"),
    "WorkbenchError": ("workbench.errors", "WorkbenchError"),
    "PassportError": ("workbench.errors", "PassportError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return __all__
