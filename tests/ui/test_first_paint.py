"""A served session's first page: the summary first, the rest after it, nothing shared.

Served, :class:`~workbench.ui.views.Workbench` is built with ``defer=True``: its
first document holds the header, the search box, the timeline and the hypotheses;
the replay and the slice explorer get their Bokeh models when the browser says the
page is rendered (Panel's ``document_ready`` -> ``pn.state.onload``). Here that
moment is Panel's own hook (``pn.state._on_load``, what the served page's
``document_ready`` event calls) on a real Bokeh document, and the shared plot
elements are rendered into two documents as two sessions would.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings(  # as in test_served_roles: panel 1.9 and ``name``
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")


def _classes(doc) -> set[str]:
    return {c for m in doc.models for c in (getattr(m, "css_classes", None) or [])}


def _served_doc():
    """A Bokeh document as a served session holds it before the page has rendered."""
    import panel as pn
    from bokeh.document import Document

    doc = Document()
    pn.state._loaded[doc] = False
    return doc


def _drop(doc) -> None:
    import panel as pn

    pn.state._loaded.pop(doc, None)
    pn.state._onload.pop(doc, None)


def test_the_slice_explorer_follows_the_first_paint(demo_inv):
    import holoviews as hv
    import panel as pn
    from panel.io.state import set_curdoc

    from workbench.ui.state import WorkbenchState
    from workbench.ui.views import Workbench

    hv.extension("bokeh", logo=False)
    doc = _served_doc()
    try:
        with set_curdoc(doc):
            wb = Workbench(state=WorkbenchState.from_investigation(demo_inv), defer=True)
            wb.__panel__().server_doc(doc)
            first = _classes(doc)
            assert {"wb-divergence", "wb-hypotheses"} <= first, first
            assert "wb-slices" not in first
            n_first = len(doc.models)
            pn.state._on_load(doc)  # the browser's document_ready
        assert "wb-slices" in _classes(doc) and len(doc.models) > n_first
    finally:
        _drop(doc)
    # Unserved (a notebook), everything is there at once.
    doc = _served_doc()
    _drop(doc)  # no served-session state: Panel runs onload callbacks at once
    with set_curdoc(doc):
        wb = Workbench(state=WorkbenchState.from_investigation(demo_inv), defer=True)
        wb.__panel__().server_doc(doc)
    assert "wb-slices" in _classes(doc)


def test_two_sessions_render_the_shared_plots_each_with_its_own_models(demo_inv):
    """The slice bars and the timeline are one HoloViews element for every session; each
    session's document gets Bokeh models of its own (a formatter model in the shared
    options was put in two documents and broke the second session's page)."""
    import holoviews as hv
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from workbench.ui.data import InvestigationData
    from workbench.ui.state import WorkbenchState
    from workbench.ui.views import Workbench

    hv.extension("bokeh", logo=False)
    live = InvestigationData(demo_inv)
    docs = [Document(), Document()]
    for doc in docs:
        with set_curdoc(doc):
            Workbench(state=WorkbenchState.from_data(live)).__panel__().server_doc(doc)
    ids = [{m.id for m in d.models} for d in docs]
    assert not ids[0] & ids[1]
    bars = [m for d in docs for m in d.models if type(m).__name__ == "NumeralTickFormatter"]
    assert len(bars) == 2 and bars[0] is not bars[1]
    assert all(b.format == "0%" for b in bars)
