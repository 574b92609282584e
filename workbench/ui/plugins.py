"""Third-party views (entry-point group ``workbench.views``) in the served app and notebooks.

A view plug-in is a ``pn.viewable.Viewer`` subclass advertised under
``workbench.views``::

    [project.entry-points."workbench.views"]
    inputs = "workbench_views_inputs:InputsView"

with a ``title`` (the name of its tab) and, optionally, an ``action``: the
policy action (:class:`workbench.governance.policy.Action`) a role needs to see
it, ``view`` by default. :class:`~workbench.ui.views.Workbench`, the layout of
both ``workbench serve`` and the notebook display, builds every view plug-in
the session's identity may see as one more tab beside Hypotheses, Story,
Evidence and Act, constructed as ``View(state=state)`` over the session's
:class:`~workbench.ui.state.WorkbenchState`. A view reads ``state.data`` (the
investigation as this identity may see it: small cells withheld without
``view_unmasked``), never ``state.live``, and any action it takes calls
``state.authorize(action)`` first (the handler checks again, whatever the page
showed: role-based access control, Sandhu et al., "Role-Based Access Control
Models", IEEE Computer 1996).

A plug-in that fails to import is skipped by the registry; one whose
construction raises is skipped here with a :class:`~workbench.registry.
PluginWarning`: a third-party view never breaks the page.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..governance.policy import Action
from ..registry import PluginWarning, load_plugins

__all__ = ["GROUP", "view_action", "view_tabs"]

GROUP = "workbench.views"


def view_action(view: type) -> Action:
    """The action a role needs to see ``view`` (``view`` unless it says otherwise)."""
    return Action(getattr(view, "action", None) or Action.VIEW)


def view_tabs(state) -> list[tuple[str, Any]]:
    """``[(title, view)]`` of the view plug-ins ``state``'s identity may see, by name.

    Parameters
    ----------
    state:
        The session's :class:`~workbench.ui.state.WorkbenchState`.
    """
    tabs = []
    for name, view in sorted(load_plugins(GROUP).items()):
        try:
            action = view_action(view)
        except ValueError:
            warnings.warn(f"{GROUP} plug-in {name!r}: action {getattr(view, 'action', None)!r} "
                          f"is not one of {', '.join(a.value for a in Action)}; skipped",
                          PluginWarning, stacklevel=2)
            continue
        if not state.can(action):
            continue
        try:
            tabs.append((str(view.title), view(state=state)))
        except Exception as exc:  # a third-party view never breaks the page
            warnings.warn(f"{GROUP} plug-in {name!r} failed to build: "
                          f"{type(exc).__name__}: {exc}; skipped", PluginWarning, stacklevel=2)
    return tabs
