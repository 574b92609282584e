"""The NATS JetStream source against a real ``nats-server -js`` on a free loopback port.

Batches published while ``workbench watch`` runs produce the story; a batch
published twice is stored once; SIGKILL mid-stream and a restart lose and
duplicate nothing (the store equals a one-shot ingest of the same batches).
Skipped, saying why, only when ``nats-server`` is not installed (``make sysdeps``
installs it). Every wait is on observable state with a timeout.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading

import pytest

from workbench.errors import UsageError
from workbench.passport import load_passport
from workbench.store import Store
from workbench.store.sql import q
from workbench.stream.process import WatchProcess
from workbench.stream.sample import batch_bytes, make_scenario, stored_totals
from workbench.testing import check_stream_source
from workbench_nats import NatsSource, parse_url, publish_batch, publish_batches

TIMEOUT = 240  # 2 shared cores; a story runs a whole investigation
NATS = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if shutil.which("nats-server", path="/usr/sbin") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nats_url(tmp_path):
    """A JetStream server on a free loopback port with a temporary store; stopped after."""
    if NATS is None:
        pytest.skip("nats-server is not installed (Debian package nats-server; "
                    "`make sysdeps` installs it)")
    port = _free_port()
    proc = subprocess.Popen([NATS, "-js", "-a", "127.0.0.1", "-p", str(port),
                             "-sd", str(tmp_path / "js")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    lines: list[str] = []

    def read():
        for line in proc.stderr:
            lines.append(line)
            if "Server is ready" in line:
                ready.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("nats-server did not start: " + "".join(lines[-5:]))
        yield f"nats://127.0.0.1:{port}/wb.shop?stream=SHOP&ack_wait=2"
    finally:
        proc.terminate()
        proc.wait(30)
        t.join(10)
        proc.stderr.close()


@pytest.fixture
def scenario(tmp_path):
    return make_scenario(tmp_path / "passport", seed=11)


def test_contract_and_url_errors():
    check_stream_source(NatsSource)
    o = parse_url("nats://127.0.0.1:4333/wb.x?stream=S&durable=d&ack_wait=5&batch=4")
    assert o == {"server": "nats://127.0.0.1:4333", "subject": "wb.x", "stream": "S",
                 "durable": "d", "ack_wait": 5.0, "batch": 4}
    with pytest.raises(UsageError, match="unknown option.*colour"):
        parse_url("nats://127.0.0.1:4333/wb.x?colour=red")
    with pytest.raises(UsageError, match="expected nats://HOST:PORT/SUBJECT"):
        parse_url("nats://127.0.0.1:4333")


def test_unreachable_server_is_one_clear_line(scenario, tmp_path):
    url = f"nats://127.0.0.1:{_free_port()}/wb.shop"
    w = WatchProcess(scenario.passport, url, "--no-artifact")
    assert w.wait(TIMEOUT) == 2
    assert any("cannot reach NATS at" in line for line in w.stderr)
    assert not any("Traceback" in line for line in w.stderr)


def test_published_batches_raise_one_story_and_a_repeat_is_stored_once(scenario, nats_url,
                                                                       tmp_path):
    w = WatchProcess(scenario.passport, nats_url, "--out", str(tmp_path / "inv"))
    try:
        w.wait_for(lambda evs: any(e["event"] == "started" for e in evs), TIMEOUT)
        publish_batches(nats_url, [(f"b{k:05d}", batch_bytes(scenario, k), "csv")
                                   for k in range(11)])
        w.wait_for(lambda evs: any(e["event"] == "story" for e in evs), TIMEOUT)
        publish_batch(nats_url, "b00003", batch_bytes(scenario, 3))  # published twice
        w.wait_for(lambda evs: sum(e["event"] == "batch" for e in evs) >= 12, TIMEOUT)
    finally:
        assert w.terminate() == 0, w.stderr[-20:]
    (story,) = w.of("story")
    assert (story["verdict"], story["top_cause"], story["top_slice"]) == \
        ("change", "chg-flag", {"platform": "ios"})
    assert story["onset"] == scenario.onset.isoformat() and story["latency_s"] > 0
    statuses = [(e["batch_id"], e["status"]) for e in w.of("batch")]
    assert statuses[-1] == ("b00003", "duplicate")
    assert sum(s == "ingested" for _, s in statuses) == 11
    t = stored_totals(scenario.passport / ".workbench" / "store.duckdb")
    assert t["rows"] == 15 * 24 * 300 + 11 * 300 and t["per_grain"] == t["agg"]


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(scenario, nats_url,
                                                                      tmp_path):
    n = 14
    payloads = [(f"b{k:05d}", batch_bytes(scenario, k), "csv") for k in range(n)]
    w = WatchProcess(scenario.passport, nats_url, "--no-artifact")
    w.wait_for(lambda evs: any(e["event"] == "started" for e in evs), TIMEOUT)
    publish_batches(nats_url, payloads)
    w.wait_for(lambda evs: sum(e["event"] == "batch" for e in evs) >= 4, TIMEOUT)
    w.kill()
    first = {e["batch_id"] for e in w.of("batch") if e["status"] == "ingested"}
    again = WatchProcess(scenario.passport, nats_url, "--no-artifact")
    try:
        # redeliveries (unacknowledged when killed) come back after ack_wait
        again.wait_for(lambda evs: first | {e["batch_id"] for e in evs
                                            if e["event"] == "batch"} >= {p[0] for p in payloads},
                       TIMEOUT)
    finally:
        assert again.terminate() == 0, again.stderr[-20:]
    files = []
    for bid, data, _ in payloads:
        (tmp_path / "files").mkdir(exist_ok=True)
        files.append(tmp_path / "files" / f"{bid}.csv")
        files[-1].write_bytes(data)
    with Store(tmp_path / "oneshot.duckdb") as st:
        st.ingest(load_passport(scenario.passport), batch_files=files)
    streamed = stored_totals(scenario.passport / ".workbench" / "store.duckdb")
    oneshot = stored_totals(tmp_path / "oneshot.duckdb")
    sums = ("rows", "sessions", "conversions")
    assert [streamed[k] for k in sums] == [oneshot[k] for k in sums]
    assert streamed["rows"] == 15 * 24 * 300 + n * 300
    assert streamed["per_grain"] == oneshot["per_grain"] == streamed["agg"]
    with Store(scenario.passport / ".workbench" / "store.duckdb", read_only=True) as st:
        assert st.con.execute(f"SELECT count(*), count(DISTINCT batch_id) FROM "
                              f"{q('wb_meta')}.{q('stream_ledger')}").fetchone() == (n, n)


def test_publishing_from_a_thread_that_runs_an_event_loop(nats_url, tmp_path):
    """A notebook kernel or Playwright's sync API runs a loop in the caller's thread;
    publishing from there must still work (it runs on a thread of its own). The loop is
    started on a new thread, since the suite's own thread may already run one."""
    import asyncio

    async def inside_a_loop():
        return publish_batches(nats_url, [("loop-1", b"ts,platform\n", "csv"),
                                          ("loop-2", b"ts,platform\n", "csv")])

    out: dict = {}

    def in_thread():
        try:
            out["seqs"] = asyncio.run(inside_a_loop())
        except BaseException as exc:  # reported below, in the test's thread
            out["error"] = exc

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(TIMEOUT)
    assert "error" not in out, out.get("error")
    seqs = out["seqs"]
    assert len(seqs) == 2 and seqs[1] == seqs[0] + 1
