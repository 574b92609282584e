"""Session helpers of the UI state: where work runs and how updates reach the page.

Split from :mod:`workbench.ui.state` (kept under 800 lines); re-exported there.
"""
from __future__ import annotations

import asyncio
import contextlib

__all__ = ["friendly_error"]


def friendly_error(exc: BaseException) -> str:
    """One line for the page: the workbench's own errors as they are, others typed."""
    from ..errors import WorkbenchError

    if isinstance(exc, WorkbenchError):
        return str(exc)
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _serving() -> bool:
    """True inside a served session (a Bokeh server document) with its event loop running.

    In a notebook the kernel's comm pushes an update only while it handles the message
    that caused it, so there the work runs inline (it is short: one slice query, or a
    cached replay step); in scripts and tests there is no loop at all.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    import panel as pn

    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def _held():
    """Hold a served page's updates until the block ends.

    Every property changed by one user action (title, selector, plot data, list
    rows) then goes to the browser in one message. Not frozen: a frozen document
    re-walks its whole model graph when the hold ends (about 0.02-0.06 CPU s on a
    session's ~350 models, on every click), and a click changes data and text, no
    model references, so unfrozen Bokeh never walks it. Elsewhere (notebooks,
    scripts) it does nothing.
    """
    if not _serving():
        return contextlib.nullcontext()
    import panel as pn

    return pn.io.hold(pn.state.curdoc)
