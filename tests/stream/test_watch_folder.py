"""``workbench watch`` on a drop folder, as a user runs it: a real child process.

Batches dropped while it runs produce the story once; a batch dropped twice is
stored once; SIGKILL mid-stream and a restart lose and duplicate nothing (the
store equals a one-shot ingest of the same files); SIGTERM stops it cleanly.
Every wait is on an event the child printed, with a timeout.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from workbench.passport import load_passport
from workbench.store import Store
from workbench.stream.process import WatchProcess
from workbench.stream.sample import stored_totals, write_batch

TIMEOUT = 240  # generous: 2 shared cores, and the story runs a whole investigation


def _started(evs):
    return any(e["event"] == "started" for e in evs)


def _batches(n):
    return lambda evs: sum(e["event"] == "batch" for e in evs) >= n


def test_batches_dropped_while_watching_raise_one_story(scenario, tmp_path):
    drop, lib = tmp_path / "drop", tmp_path / "inv"
    w = WatchProcess(scenario.passport, str(drop), "--out", str(lib))
    try:
        w.wait_for(_started, TIMEOUT)
        for k in range(11):  # onset at hour 6; hours 6-8 close with batch 9
            write_batch(scenario, k, drop)
        w.wait_for(lambda evs: any(e["event"] == "story" for e in evs) and _batches(11)(evs),
                   TIMEOUT)
        write_batch(scenario, 3, drop, name="b00003")  # the same batch again, later
        w.wait_for(_batches(12), TIMEOUT)
        # a refit from cron while watch runs: it waits for the store, watch picks it up
        fit = subprocess.run([sys.executable, "-m", "workbench.cli", "retrain",
                              str(scenario.passport), "--metric", "conversion_rate", "--json"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert fit.returncode == 0, fit.stderr
        refit = json.loads(fit.stdout)[0]["model"]
        write_batch(scenario, 11, drop)
        w.wait_for(lambda evs: any(e["event"] == "model" for e in evs) and _batches(13)(evs),
                   TIMEOUT)
    finally:
        rc = w.terminate()
    assert rc == 0 and w.of("stopped")
    (alert,), (story,) = w.of("alert"), w.of("story")
    assert alert["metric"] == "conversion_rate" and alert["direction"] == "down"
    assert alert["onset"] == scenario.onset.isoformat()
    assert story["verdict"] == "change" and story["top_cause"] == "chg-flag"
    assert story["top_slice"] == {"platform": "ios"}
    assert Path(story["artifact"]).exists() and Path(story["artifact"]).is_relative_to(lib)
    assert story["latency_s"] > 0
    statuses = [e["status"] for e in w.of("batch")]
    assert statuses.count("ingested") == 12 and statuses[11] == "duplicate"
    assert stored_totals(scenario.passport / ".workbench" / "store.duckdb")["rows"] == \
        15 * 24 * 300 + 12 * 300
    (model,) = w.of("model")  # versions are shared with the investigations' baselines
    assert (model["metric"], model["id"], model["version"]) == \
        ("conversion_rate", refit["id"], refit["version"])


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(scenario, tmp_path):
    drop, n = tmp_path / "drop", 14
    files = [write_batch(scenario, k, tmp_path / "all") for k in range(n)]
    w = WatchProcess(scenario.passport, str(drop), "--no-artifact")
    w.wait_for(_started, TIMEOUT)
    for f in files:  # as a producer should: a dot-name, renamed when complete
        shutil.copy(f, drop / f".{f.name}.part")
        (drop / f".{f.name}.part").replace(drop / f.name)
    w.wait_for(_batches(5), TIMEOUT)
    w.kill()  # mid-stream: some batches stored, one perhaps half-way, the rest waiting
    assert w.proc.returncode == -signal.SIGKILL
    again = WatchProcess(scenario.passport, str(drop), "--no-artifact")
    try:
        again.wait_for(lambda evs: not list(drop.glob("*.csv")) and sum(
            e["event"] in ("batch", "rejected") for e in evs) >= n - 5 - 1, TIMEOUT)
    finally:
        assert again.terminate() == 0, again.stderr[-20:]
    assert not again.of("rejected")
    streamed = stored_totals(scenario.passport / ".workbench" / "store.duckdb")
    # the same files, ingested in one shot into a fresh store
    with Store(tmp_path / "oneshot.duckdb") as st:
        st.ingest(load_passport(scenario.passport), batch_files=files)
    oneshot = stored_totals(tmp_path / "oneshot.duckdb")
    assert streamed["rows"] == oneshot["rows"] == 15 * 24 * 300 + n * 300
    assert (streamed["sessions"], streamed["conversions"]) == \
        (oneshot["sessions"], oneshot["conversions"])
    assert streamed["per_grain"] == oneshot["per_grain"] == streamed["agg"]
    # one alert, one story, though the alert may have been raised by either process
    with Store(scenario.passport / ".workbench" / "store.duckdb", read_only=True) as st:
        alerts = st.con.execute("SELECT count(*), count(story) FROM wb_meta.stream_alerts"
                                ).fetchone()
        ledger = st.con.execute("SELECT count(*), count(DISTINCT batch_id) FROM "
                                "wb_meta.stream_ledger").fetchone()
    assert alerts == (1, 1) and ledger == (n, n)


def test_a_malformed_batch_is_rejected_with_its_name_and_column(scenario, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    bad = drop / "broken-7.csv"
    bad.write_text("ts,platform,country,plan,sessions,conversions\n"
                   "2026-11-17T00:10:00Z,ios,de,free,12,x1\n", encoding="utf-8")
    w = WatchProcess(scenario.passport, str(drop), "--no-artifact", "--idle-exit", "1")
    assert w.wait(TIMEOUT) == 0
    (rej,) = w.of("rejected")
    assert "broken-7" in rej["detail"] and "conversions" in rej["detail"]
    assert "nothing stored" in rej["detail"]
    assert (drop / "rejected" / "broken-7.csv").exists()
    assert "conversions" in (drop / "rejected" / "broken-7.csv.error.txt").read_text()
    assert stored_totals(scenario.passport / ".workbench" / "store.duckdb")["rows"] == \
        15 * 24 * 300
