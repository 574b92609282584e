"""What every workbench view shares: the base class, markup panes and styles.

Split from :mod:`workbench.ui.views` (kept under 800 lines); the views import these.
"""
from __future__ import annotations

import logging
import threading

import pandas as pd
import panel as pn
import param
from cachetools import LRUCache

from .._format import confidence, pct
from .state import WorkbenchState

log = logging.getLogger("workbench.ui")

_CSS = """
.wb-card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 4px 10px; margin: 4px 0; }
.wb-card.wb-selected { border: 2px solid #dc2626; background: #fef2f2; }
.wb-muted { color: #6b7280; }
.wb-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
            background: #eef2ff; color: #3730a3; margin-left: 6px; }
"""


_CARD = {"border": "1px solid #e5e7eb", "border-radius": "8px", "padding": "2px 8px",
         "margin": "4px 0", "background": "white"}
_CARD_SELECTED = {**_CARD, "border": "2px solid #dc2626", "background": "#fef2f2"}


class _OwnDocument:
    """Mixin for markup panes: build the Bokeh properties with the pane's own document.

    Panel turns its built-in stylesheets (``markdown.css``, ``loading.css``) into
    ``ImportedStyleSheet`` models cached per Bokeh document, but it looks the cache up
    with the *current* document: the one whose widget sent the event being handled,
    not the one the updated pane lives in (panel 1.9, ``Layoutable._process_param_change``;
    holoviz/panel#7884). A markup pane rebuilds all its properties on every update,
    stylesheets included. In a notebook each cell output is a document of its own, so a
    widget in one cell that changed a pane in another (the slice selector above, the
    drill path below) handed the first cell's stylesheet model to the second cell
    ("ImportedStyleSheet ... is already in a doc"), and from then on every update of
    the second cell failed. With the pane's own document current, each cell's panes
    get that cell's stylesheet models. Served, every view is in the session's one
    document and nothing changes.
    """

    def _get_properties(self, doc):
        from panel.io.state import set_curdoc, state

        if doc is None or state.curdoc is doc:
            return super()._get_properties(doc)
        with set_curdoc(doc):
            return super()._get_properties(doc)


class _Markdown(_OwnDocument, pn.pane.Markdown):
    """``pn.pane.Markdown`` that keeps to its own document (see :class:`_OwnDocument`)
    and renders a text once for every session.

    Served, each session renders the same texts (the cards, the verdict, the
    headings) to HTML on the server; the rendered HTML of a text is kept in a bounded
    cache shared by the sessions (:data:`_RENDERED`), keyed by the text and the
    pane's rendering options.
    """

    def _transform_object(self, obj):
        if not isinstance(obj, str) or self.renderer_options:
            return super()._transform_object(obj)
        key = (obj, self.renderer, self.dedent, self.hard_line_break, self.disable_anchors,
               tuple(self.plugins), tuple(self.extensions))
        with _RENDERED_LOCK:
            hit = _RENDERED.get(key)
        if hit is None:
            hit = super()._transform_object(obj)["object"]
            with _RENDERED_LOCK:
                _RENDERED[key] = hit
        return {"object": hit}


#: Rendered Markdown shared by the sessions (texts are short: a card is under 2 kB).
_RENDERED: "LRUCache" = LRUCache(maxsize=4096)
_RENDERED_LOCK = threading.Lock()  # sessions are built on a worker thread too


class _Alert(_OwnDocument, pn.pane.Alert):
    """``pn.pane.Alert`` that keeps to its own document (see :class:`_OwnDocument`)."""


def _md(obj="", **kw) -> pn.pane.Markdown:
    """A Markdown pane carrying the workbench styles (each pane has its own shadow root)."""
    kw.setdefault("stylesheets", [_CSS])
    return _Markdown(obj, **kw)


def _hv(obj, **kw) -> pn.pane.HoloViews:
    """A HoloViews pane that keeps its own axes.

    Panel links the axes of plots sharing a dimension by default; the timeline,
    the comparison and the counterfactual all have ``ts`` but show different
    windows, and a link to a plot still empty would pin the timeline to 1970.
    """
    kw.setdefault("sizing_mode", "stretch_width")
    return pn.pane.HoloViews(obj, linked_axes=False, **kw)


def _lazy_tabs(*tabs: tuple[str, object], **kw) -> pn.Tabs:
    """Tabs whose hidden contents get their Bokeh models only when first opened.

    A served session used to render every tab's plots when it was built (eight
    HoloViews plots, most of them in tabs nobody had opened): about three quarters
    of a session's build time, all of it on the server's one event loop. Each tab
    here holds an empty column until it is first shown; then the content (already
    constructed, with its watchers) is put in it and renders. Tabs are not
    ``dynamic``: Panel's dynamic tabs re-render a tab at each visit and raced with
    updates of their DynamicMaps when the investigation arrived late. A tab's
    content given as a function of no argument is constructed when first shown.
    """
    holders = [pn.Column(sizing_mode="stretch_width") for _ in tabs]
    holders[0].objects = [_made(tabs[0][1])]
    out = pn.Tabs(*[(name, h) for (name, _), h in zip(tabs, holders)], dynamic=False, **kw)

    def fill(event):
        holder = holders[event.new]
        if not holder.objects:
            holder.objects = [_made(tabs[event.new][1])]
    out.param.watch(fill, "active")
    return out


def _made(view):
    """``view``, or what it makes when it is a function of no argument (built when shown)."""
    return view() if callable(view) and not isinstance(view, pn.viewable.Viewable) \
        and not hasattr(view, "__panel__") else view


def _after_first_paint(*views) -> pn.Column:
    """A holder of ``views`` filled once the page has rendered (``pn.state.onload``).

    A served session's first document then carries only what is above them (the
    summary, the timeline, the hypotheses): fewer Bokeh models to build and send
    while many sessions open at once, and the page is readable sooner; these views
    follow in the next message. Unserved (a notebook, a script) they are filled at
    once. A view given as a function of no argument is constructed then too. One
    holder for them all: one patch and one walk of the document's model graph (a
    holder each cost a patch and a walk each).
    """
    holder = pn.Column(sizing_mode="stretch_width")

    def fill():
        if not holder.objects:
            holder.objects = [_made(view) for view in views]
    pn.state.onload(fill)
    return holder


def _when(iso) -> str:
    if not iso:
        return "-"
    t = pd.Timestamp(iso)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _pct(x, fmt="+.1%") -> str:
    return pct(x, fmt, missing="n/a")


_conf = confidence


class _View(pn.viewable.Viewer):
    """A view over a shared :class:`WorkbenchState`."""

    state = param.ClassSelector(class_=WorkbenchState, doc="The shared workbench state.")

    def __init__(self, **params):
        from .kernel import serialize_comm_handlers

        serialize_comm_handlers()  # views in two notebook cells: one message at a time
        if params.get("state") is None:
            params["state"] = WorkbenchState()
        super().__init__(**params)
        self._layout = self._build()

    @classmethod
    def from_investigation(cls, inv, **params):
        """This view alone over an investigation already run (notebooks)."""
        return cls(state=WorkbenchState.from_investigation(inv), **params)

    def _build(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __panel__(self):
        return self._layout
