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
