"""View plug-ins of the Divergence Workbench: the inputs of an investigation, and an export.

Both read the session state's ``data`` (what this identity may see) and are
built by the workbench as ``View(state=state)`` (``workbench/ui/plugins.py``).
``ExportView`` needs the ``export`` action: a viewer never gets the tab, and the
download re-checks the grant on the server before writing a byte.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import panel as pn
import param

__all__ = ["ExportView", "InputsView"]


class _StateView(pn.viewable.Viewer):
    state = param.Parameter(doc="The session's workbench.ui.state.WorkbenchState.")


class InputsView(_StateView):
    """The investigation's input files, each with its table, rows and SHA-256."""

    title = "Inputs"
    action = "view"

    def __init__(self, **params):
        super().__init__(**params)
        self._table = pn.pane.DataFrame(self.frame(), index=False, sizing_mode="stretch_width",
                                        css_classes=["wb-plugin-inputs"])
        self.state.param.watch(lambda *e: setattr(self._table, "object", self.frame()), "data")

    def frame(self) -> pd.DataFrame:
        """One row per input file of the shown investigation."""
        data = self.state.data
        rows = [] if data is None else [
            {"file": Path(str(p.get("path", ""))).name, "table": p.get("table"),
             "rows": p.get("rows"), "sha256": str(p.get("sha256", ""))[:16]}
            for p in (data.inv.provenance or [])]
        return pd.DataFrame(rows, columns=["file", "table", "rows", "sha256"])

    def __panel__(self):
        return pn.Column(pn.pane.Markdown("**Input files** of this investigation"), self._table,
                         sizing_mode="stretch_width")


class ExportView(_StateView):
    """A CSV download of the ranked slices of the shown slice (analysts and up)."""

    title = "Export"
    action = "export"

    def __init__(self, **params):
        super().__init__(**params)
        self._download = pn.widgets.FileDownload(callback=self.csv, filename="slices.csv",
                                                 label="Download the ranked slices (CSV)",
                                                 color="primary")

    def csv(self) -> io.StringIO:
        """The ranked slices as CSV; refused (empty) unless the identity may export."""
        st = self.state
        if not st.authorize("export", "ranked slices") or st.data is None:
            return io.StringIO("")
        out = io.StringIO()
        st.data.ranked_slices(st.slice_filter).to_csv(out, index=False)
        out.seek(0)
        return out

    def __panel__(self):
        return pn.Column(pn.pane.Markdown("**Export** the ranked slices of the shown slice"),
                         self._download, sizing_mode="stretch_width")
