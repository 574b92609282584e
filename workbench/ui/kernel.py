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
(``pyviz_comms.Comm._handle_msg``) take one process-wide re-entrant lock, and,
in an IPython kernel, the main shell's cells hold it from IPython's
``pre_run_cell`` to ``post_run_cell`` events. Widget messages are then handled
one at a time and never while a cell runs: what a kernel without subshells did
(ipykernel 6), including that a cell waiting for a widget never finishes.
The cell part is for the Lab test's other failure (1 run in 7 with the handler
lock alone): a selection made in the page after Run All never changed the
kernel's state. The notebook's last cells (``state.drill_to(...)``) update a
selector of another cell while that cell's messages are handled on a subshell,
and Panel's record of the properties it is changing on a model
(``Reactive._changing``, per root) is not guarded against two threads; a stale
entry makes Panel take the browser's next change of that property for its own
echo and drop it. That reading of Panel's code is the likely mechanism, not an
observed one; the lock removes the overlap either way.
"""
from __future__ import annotations

import functools
import threading

__all__ = ["COMM_LOCK", "cell_finished", "cell_started", "serialize_comm_handlers"]

#: Held while a Panel comm message is handled or a cell runs (see the module docstring).
COMM_LOCK = threading.RLock()
_HELD = threading.local()  # whether this thread's running cell holds COMM_LOCK


def cell_started(*_) -> None:
    """IPython's ``pre_run_cell``: the cell takes :data:`COMM_LOCK`."""
    COMM_LOCK.acquire()
    _HELD.cell = getattr(_HELD, "cell", 0) + 1


def cell_finished(*_) -> None:
    """IPython's ``post_run_cell``: the cell gives :data:`COMM_LOCK` back.

    IPython triggers ``post_run_cell`` without ``pre_run_cell`` for a cell that
    never started (empty, a syntax error) and for the cell that registered these
    hooks: nothing is released then.
    """
    if getattr(_HELD, "cell", 0):
        _HELD.cell -= 1
        COMM_LOCK.release()


def _hold_during_cells(shell) -> bool:
    """Register :func:`cell_started` and :func:`cell_finished` on ``shell``'s events, once."""
    events = getattr(shell, "events", None)
    if events is None or cell_started in events.callbacks.get("pre_run_cell", []):
        return False
    events.register("pre_run_cell", cell_started)
    events.register("post_run_cell", cell_finished)
    return True


def serialize_comm_handlers() -> bool:
    """Make Panel's comm handlers take :data:`COMM_LOCK` (once per process).

    Call it before the first view is shown: a comm binds its handler when it
    opens. :func:`workbench.ui.extension` and every view's constructor call it.

    Returns
    -------
    bool
        Whether this call installed the lock on the handlers (``False`` when it
        was already in place or ``pyviz_comms`` is not installed).
    """
    try:
        from pyviz_comms import Comm
    except ImportError:  # pragma: no cover - a dependency of panel
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a dependency of panel's notebook support
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        _hold_during_cells(shell)
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
