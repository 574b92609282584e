"""One widget message at a time in a Jupyter kernel with subshells.

JupyterLab (4.4 and later) sends the messages of each comm target on a kernel
subshell of its own when the kernel supports subshells (Jupyter Enhancement
Proposal 91, "Kernel subshells"; Lab's ``commsOverSubshells`` setting, default
``perCommTarget``), and ipykernel 7 runs each subshell on a thread of its own.
Panel opens one comm target per rendered output, so a widget in one notebook
cell and a widget in another are handled on two threads at the same time.

The workbench's views in different cells share one
:class:`~workbench.ui.state.WorkbenchState` and its HoloViews plots, and neither
is safe to change from two threads at once. In the JupyterLab test
(``tests/ui/test_notebook_lab.py``) a click in the slice list, handled while the
previous change of the timeline's own selector was still being handled on the
other cell's thread, left the timeline titled with the new slice and drawing the
previous one's data (issue 19). A trace of one run: 8 of 47 handler calls
started while a handler on another thread was running. JupyterLab's
issue 19719 reports the same kind of corruption for matplotlib, and ipympl took
the same remedy: a lock over the handlers that touch shared state.

:func:`serialize_comm_handlers` makes every Panel comm handler
(``pyviz_comms.Comm._handle_msg``) take one process-wide re-entrant lock, so
widget messages are handled one at a time, as on a kernel without subshells.
Cells run by the main shell do not take it: a cell that waits for a widget
would otherwise never finish.
"""
from __future__ import annotations

import functools
import threading

__all__ = ["COMM_LOCK", "serialize_comm_handlers"]

#: Held while a Panel comm message is handled (see the module docstring).
COMM_LOCK = threading.RLock()


def serialize_comm_handlers() -> bool:
    """Make Panel's comm handlers take :data:`COMM_LOCK` (once per process).

    Call it before the first view is shown: a comm binds its handler when it
    opens. :func:`workbench.ui.extension` and every view's constructor call it.

    Returns
    -------
    bool
        Whether this call installed the lock (``False`` when it was already in
        place or ``pyviz_comms`` is not installed).
    """
    try:
        from pyviz_comms import Comm
    except ImportError:  # pragma: no cover - a dependency of panel
        return False
    handle = Comm._handle_msg
    if getattr(handle, "workbench_serialized", False):
        return False

    @functools.wraps(handle)
    def one_at_a_time(self, msg):
        with COMM_LOCK:
            return handle(self, msg)

    one_at_a_time.workbench_serialized = True
    Comm._handle_msg = one_at_a_time
    return True
