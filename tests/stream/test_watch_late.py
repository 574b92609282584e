"""Late data in ``watch``: rows within the allowed lateness are merged and their grains
re-evaluated (the divergence is still dated right); rows behind the watermark are kept
apart and reported. In-process (``Watcher``), batches delivered in a fixed order."""
from __future__ import annotations

import os

import pandas as pd

from workbench.store import Store
from workbench.stream import DetectConfig, WatchConfig, Watcher
from workbench.stream.sample import batch_frame


def _drop(folder, name, df, order):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    df.to_parquet(folder / f".{name}.part", index=False)
    os.utime(folder / f".{name}.part", (order, order))  # delivery order = mtime order
    (folder / f".{name}.part").replace(path)


def test_late_rows_within_lateness_are_merged_and_beyond_it_set_apart(scenario, tmp_path):
    drop = tmp_path / "drop"
    h6 = batch_frame(scenario, 6)
    order = 1_000_000
    for k in range(11):
        if k == 6:  # hour 6 (the onset) arrives late, after hour 8
            continue
        _drop(drop, f"b{k:05d}", batch_frame(scenario, k), order := order + 1)
        if k == 8:
            _drop(drop, "late-h6", h6, order := order + 1)
            _drop(drop, "too-late-h1", batch_frame(scenario, 1).head(25), order := order + 1)
    events: list[dict] = []
    cfg = WatchConfig(lateness=pd.Timedelta("3h"), detect=DetectConfig(z=4.0, run=3),
                      metrics=("conversion_rate",), library=None, idle_exit=0.2, poll=0.05)
    Watcher(scenario.passport, str(drop), db=tmp_path / "s.duckdb", config=cfg,
            emit=events.append).run()
    batches = {e["batch_id"]: e for e in events if e["event"] == "batch"}
    assert len(batches) == 12
    # hour 6 came 2-3 h behind the newest event: within 3 h, merged
    assert (batches["late-h6"]["rows"], batches["late-h6"]["late_rows"]) == (len(h6), 0)
    # hour 1 came ~8 h behind: beyond the watermark, set apart and reported
    assert (batches["too-late-h1"]["rows"], batches["too-late-h1"]["late_rows"]) == (0, 25)
    (late,) = [e for e in events if e["event"] == "late"]
    assert late["batch_id"] == "too-late-h1" and late["rows"] == 25
    # the late hour completed the run: the divergence is dated at its true onset, once
    (alert,) = [e for e in events if e["event"] == "alert"]
    assert alert["onset"] == scenario.onset.isoformat()
    (story,) = [e for e in events if e["event"] == "story"]
    assert story["top_cause"] == "chg-flag"
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        n_late = st.con.execute("SELECT count(*) FROM p_stream_shop.late_events").fetchone()[0]
        h6_rows = st.con.execute(
            "SELECT n_rows FROM p_stream_shop.stream_agg WHERE bucket = ?",
            [scenario.onset.to_pydatetime()]).fetchone()[0]
    assert n_late == 25 and h6_rows == len(h6)
