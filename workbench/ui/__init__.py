"""The workbench UI: Panel ``Viewer`` components over ``param`` state (architecture.md).

The only package that imports panel, holoviews, bokeh and param. In a notebook::

    import workbench as wb
    from workbench import ui
    ui.extension()                       # pn.extension(inline=True): works offline in JupyterLab
    inv = wb.investigate("sample_data/demo", metric="conversion_rate")
    ui.Workbench.from_investigation(inv, keyboard="focus")   # everything
    ui.DivergenceView.from_investigation(inv)                 # or one view

Served: ``workbench serve sample_data/demo`` (or ``python -m workbench.ui.app``).
"""
from __future__ import annotations

from .data import InvestigationData, parse_slice, slice_label
from .state import WorkbenchState
from .views import (CausalView, DivergenceView, HypothesisBoard, NarrativeView, SearchView,
                    SliceExplorer, TimelineReplay, Workbench)

__all__ = ["CausalView", "DivergenceView", "HypothesisBoard", "InvestigationData",
           "NarrativeView", "SearchView", "SliceExplorer", "TimelineReplay", "Workbench",
           "WorkbenchState", "extension", "parse_slice", "show", "slice_label"]


def extension(**kw) -> None:
    """Load Panel and HoloViews for notebooks: inline resources, so it works offline.

    Without ``inline=True`` JupyterLab tries to fetch the JavaScript from a CDN and
    the output stays empty (stack-notes.md). Widget messages are handled one at a
    time (:func:`workbench.ui.kernel.serialize_comm_handlers`).
    """
    import holoviews as hv
    import panel as pn

    from .kernel import serialize_comm_handlers

    serialize_comm_handlers()
    kw.setdefault("inline", True)
    pn.extension(**kw)
    hv.extension("bokeh", logo=False)


def show(inv, **params) -> Workbench:
    """The whole workbench over an investigation, for display in a notebook cell."""
    params.setdefault("keyboard", "focus")
    return Workbench.from_investigation(inv, **params)
