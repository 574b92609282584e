"""View plug-ins (``workbench.views``) appear as tabs of the workbench, governed by roles.

The workbench-views-inputs extension (installed in the venv like the other
extensions) declares ``inputs`` (every role) and ``export`` (roles granted
``export``). The composed :class:`~workbench.ui.views.Workbench` (the layout of
``workbench serve`` and of the notebook display) is built for each role without
a browser; a view whose construction raises is skipped with a warning.
"""
from __future__ import annotations

import warnings

import panel as pn
import pytest

from workbench import registry
from workbench.governance.policy import Identity, Role
from workbench.registry import PluginWarning
from workbench.ui.state import WorkbenchState
from workbench.ui.views import Workbench

FIXED = ["Hypotheses", "Story", "Evidence", "Act"]

# Built in-process here (not in a served page), the workbench's own views show Panel 1.9's
# pending renames (name= -> label=, button_type= -> color=) as warnings attributed to
# workbench.ui.views; only those are let through, and only from that module.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is deprecated and will be removed in version 2.0:PendingDeprecationWarning:"
    "workbench.ui.views")


def tabs_of(inv, role, tmp_path) -> list[str]:
    st = WorkbenchState.from_investigation(inv, library=str(tmp_path / "lib"),
                                           identity=Identity("u", role, "password"))
    wb = Workbench(state=st, keyboard="off")
    (right,) = [t for t in wb.__panel__().select(pn.Tabs) if "Hypotheses" in t._names]
    assert [title for title, _ in wb.plugin_views] == right._names[len(FIXED):]
    return list(right._names)


@pytest.mark.parametrize("role, extra", [
    (Role.VIEWER, ["Inputs"]),
    (Role.ANALYST, ["Export", "Inputs"]),
    (Role.ADMIN, ["Export", "Inputs"]),
])
def test_plugin_tabs_follow_the_role(demo_inv, tmp_path, role, extra):
    assert tabs_of(demo_inv, role, tmp_path) == FIXED + extra


class Broken(pn.viewable.Viewer):
    title = "Broken"

    def __init__(self, **params):
        raise RuntimeError("cannot build")

    def __panel__(self):  # pragma: no cover - never built
        return pn.pane.Markdown("")


class NotAnAction(Broken):
    title = "Odd"
    action = "fly"


def test_a_failing_or_misdeclared_view_is_skipped_with_a_warning(demo_inv, tmp_path):
    registry.register("workbench.views", "broken", Broken)
    registry.register("workbench.views", "odd", NotAnAction)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluginWarning)
            names = tabs_of(demo_inv, Role.ADMIN, tmp_path)
    finally:
        registry.unregister("workbench.views", "broken")
        registry.unregister("workbench.views", "odd")
    assert names == FIXED + ["Export", "Inputs"]
    seen = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert len(seen) == 2
    text = " ".join(str(w.message) for w in seen)
    assert "'broken' failed to build: RuntimeError: cannot build" in text
    assert "'odd': action 'fly' is not one of" in text
