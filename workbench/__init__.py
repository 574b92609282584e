"""Divergence Workbench: a metric moved after a change; is it real, where, why, how sure.

Importing ``workbench`` is cheap: the heavy packages (pandas, DuckDB) load on
first use of a verb, and the UI (panel, holoviews, bokeh, param) and DoWhy are
never imported by the core.

>>> import workbench as wb
>>> inv = wb.investigate("sample_data/demo", metric="conversion_rate")   # doctest: +SKIP
>>> print(inv.summary())                                                 # doctest: +SKIP

Saving, reopening and listing investigations (the library), and settings:

>>> with wb.set_options(library="investigations"):                     # doctest: +SKIP
...     info = wb.save_investigation(inv, message="first look")
...     again = wb.reopen_investigation(None, info.version_id)
...     wb.list_investigations()
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "investigate": ("workbench.investigation", "investigate"),
    "Investigation": ("workbench.investigation", "Investigation"),
    "save_investigation": ("workbench.investigation", "save_investigation"),
    "reopen_investigation": ("workbench.investigation", "reopen"),
    "rerun_investigation": ("workbench.investigation", "rerun_investigation"),
    "list_investigations": ("workbench.investigation", "list_investigations"),
    "set_options": ("workbench.options", "set_options"),
    "get_options": ("workbench.options", "get_options"),
    "load_passport": ("workbench.passport", "load_passport"),
    "Passport": ("workbench.passport", "Passport"),
    "Store": ("workbench.store", "Store"),
    "WorkbenchError": ("workbench.errors", "WorkbenchError"),
    "PassportError": ("workbench.errors", "PassportError"),
    "sample_passport": ("workbench.passport.sample", "sample_passport"),
    "PersonHypothesis": ("workbench.events.people", "PersonHypothesis"),
    "baseline_movers": ("workbench.detect.baseline_diff", "baseline_movers"),
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
