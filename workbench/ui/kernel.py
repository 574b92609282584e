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

A widget message can also reach the kernel before its comm exists there.
JupyterLab sends a comm's ``comm_open`` on the subshell the comm has when it
opens, which for the first comm of a target is the main shell (the subshell is
still being created), and every later ``comm_msg`` on the new subshell. During
Run All the main shell is busy with the cells, so the open waits behind them
while the messages are handled at once on the subshell's thread, where the comm
is unknown: the ``comm`` package drops them ("No such comm"). Panel's page side
then waits for an acknowledgement that never comes and, for its timeout of 5 s,
keeps every later change of that view in its buffer without sending it; a
change made in that window, with nothing after it, is never sent (the first
choice after Run All in the JupyterLab test of issue 19, 4 runs in 18).
:func:`hold_early_comm_messages` keeps such messages and hands them to the comm,
in their order, as soon as its open has been handled.
"""
from __future__ import annotations

import functools
import threading
from collections import deque

__all__ = ["COMM_LOCK", "EARLY_LIMIT", "hold_early_comm_messages", "serialize_comm_handlers"]

#: At most this many messages for comms not open yet are kept (the oldest go first).
EARLY_LIMIT = 256

#: Held while a Panel comm message is handled (see the module docstring).
COMM_LOCK = threading.RLock()


def serialize_comm_handlers() -> bool:
    """Make Panel's comm handlers take :data:`COMM_LOCK` (once per process).

    Call it before the first view is shown: a comm binds its handler when it
    opens. :func:`workbench.ui.extension` and every view's constructor call it.
    It also installs :func:`hold_early_comm_messages` in the running kernel.

    Returns
    -------
    bool
        Whether this call installed the lock (``False`` when it was already in
        place or ``pyviz_comms`` is not installed).
    """
    hold_early_comm_messages()
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


def hold_early_comm_messages(kernel=None) -> bool:
    """Keep the ``comm_msg`` messages that reach ``kernel`` before their comm is open and
    hand them over, in order, once its ``comm_open`` has been handled (see the module
    docstring).

    Parameters
    ----------
    kernel : ipykernel.kernelbase.Kernel, optional
        The kernel whose shell handlers to wrap; by default the running IPython
        kernel, if any.

    Returns
    -------
    bool
        Whether this call installed the hold (``False`` outside a kernel or when it
        was already in place).
    """
    if kernel is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - a dependency of ipykernel
            return False
        kernel = getattr(get_ipython(), "kernel", None)
    handlers = getattr(kernel, "shell_handlers", None)
    manager = getattr(kernel, "comm_manager", None)
    if not handlers or manager is None or "comm_msg" not in handlers:
        return False
    deliver, open_comm = handlers["comm_msg"], handlers["comm_open"]
    if getattr(deliver, "workbench_early", False):
        return False
    early: deque = deque(maxlen=EARLY_LIMIT)  # (comm id, stream, ident, msg), oldest first
    lock = threading.Lock()  # taken before COMM_LOCK, never inside it

    def comm_msg(stream, ident, msg):
        comm_id = msg["content"].get("comm_id")
        with lock:
            if comm_id not in manager.comms or any(e[0] == comm_id for e in early):
                early.append((comm_id, stream, ident, msg))
                return None
        return deliver(stream, ident, msg)

    def comm_open(stream, ident, msg):
        result = open_comm(stream, ident, msg)
        comm_id = msg["content"].get("comm_id")
        with lock:  # later messages for this comm wait here: they stay in order
            held = [e for e in early if e[0] == comm_id]
            if held:
                rest = [e for e in early if e[0] != comm_id]
                early.clear()
                early.extend(rest)
            for _, s, i, m in held:
                kernel.set_parent(i, m, channel="shell")
                deliver(s, i, m)
            if held:
                kernel.set_parent(ident, msg, channel="shell")
        return result

    comm_msg.workbench_early = True
    handlers["comm_msg"], handlers["comm_open"] = comm_msg, comm_open
    return True
