"""Panel comm handlers take one lock (:mod:`workbench.ui.kernel`, issue 19).

Two threads deliver a message each to two comms at once, as a kernel with
subshells does for widgets in two notebook cells: with the lock the second
handler starts only after the first returned. Without it (the control) both run
at the same time.
"""
from __future__ import annotations

import threading

import pyviz_comms


def _overlap(handle) -> int:
    """How many handlers ran at once when two threads each delivered a message."""
    lock, inside, most = threading.Lock(), [0], [0]
    entered = threading.Barrier(2)

    def on_msg(msg):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            entered.wait(timeout=2)  # a second handler inside now: both pass at once
        except threading.BrokenBarrierError:
            pass  # alone: the other handler waits for this one
        with lock:
            inside[0] -= 1

    comms = [pyviz_comms.Comm(on_msg=on_msg) for _ in range(2)]
    threads = [threading.Thread(target=handle, args=(c, {"x": 1})) for c in comms]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return most[0]


def test_comm_messages_are_handled_one_at_a_time():
    from workbench.ui.kernel import COMM_LOCK, serialize_comm_handlers

    serialize_comm_handlers()  # installed here, or already by a view built in this process
    assert not serialize_comm_handlers()  # once only
    locked = pyviz_comms.Comm._handle_msg
    assert locked.workbench_serialized
    assert _overlap(locked.__wrapped__) == 2  # the control: Panel's own handler, both at once
    assert _overlap(locked) == 1
    assert COMM_LOCK.acquire(blocking=False)  # released after each message
    COMM_LOCK.release()


def test_a_running_cell_holds_the_lock_and_registering_is_once(tmp_path):
    """IPython's real event manager: ``pre_run_cell`` takes the lock (a comm message from
    another thread waits), ``post_run_cell`` gives it back; a ``post_run_cell`` without
    its ``pre_run_cell`` (the registering cell, an empty cell) releases nothing."""
    from IPython.core.events import EventManager, available_events

    from workbench.ui.kernel import COMM_LOCK, _hold_during_cells

    events = EventManager(shell=None, available_events=available_events)
    shell = type("Shell", (), {"events": events})()
    assert _hold_during_cells(shell) and not _hold_during_cells(shell)

    def free_elsewhere() -> bool:
        """Whether another thread (a subshell) could take the lock now."""
        got = []

        def try_it():
            got.append(COMM_LOCK.acquire(blocking=False))
            if got[0]:
                COMM_LOCK.release()

        t = threading.Thread(target=try_it)
        t.start()
        t.join(30)
        return got[0]

    assert free_elsewhere()
    events.trigger("post_run_cell", None)  # no cell started: nothing to release
    assert free_elsewhere()
    events.trigger("pre_run_cell", None)
    assert not free_elsewhere()  # a comm handler on a subshell would wait
    events.trigger("post_run_cell", None)
    assert free_elsewhere()
