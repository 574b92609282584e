"""Panel comm handlers take one lock, and messages before a comm opens wait for it
(:mod:`workbench.ui.kernel`, issue 19).

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


#: Run in the kernel: a comm target that records the ``n`` of each message its comms get.
_RECORDER = """
got = {}
def _open(comm, msg):
    got[comm.comm_id] = []
    comm.on_msg(lambda m: got[comm.comm_id].append(m["content"]["data"]["n"]))
get_ipython().kernel.comm_manager.register_target("wb-record", _open)
"""


def test_messages_that_arrive_before_their_comm_opens_reach_it_in_order():
    """A real kernel gets a comm's messages before its ``comm_open`` (as JupyterLab's
    subshells deliver them during Run All): they were dropped; with the hold they
    reach the comm, in order, once it opens."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code):
            out = []
            reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
                m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
            assert reply["content"]["status"] == "ok", reply["content"]
            return "".join(out)

        def early_then_open(comm_id):
            for n in (1, 2):
                kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id,
                                                                  "data": {"n": n}}))
            kc.shell_channel.send(kc.session.msg("comm_open", {
                "comm_id": comm_id, "target_name": "wb-record", "data": {}}))
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id,
                                                              "data": {"n": 3}}))

        run(_RECORDER)
        early_then_open("before-hold")  # the control: the kernel as it comes
        installed = run("from workbench.ui.kernel import hold_early_comm_messages as h\n"
                        "print(h(), h())")
        assert installed == "True False\n"  # once only
        early_then_open("with-hold")
        assert run("print(sorted(got.items()))").strip() == (
            "[('before-hold', [3]), ('with-hold', [1, 2, 3])]")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
