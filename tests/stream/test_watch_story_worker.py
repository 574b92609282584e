"""The story of a divergence is built off the ingest path (issue 18): batches that
arrive while the investigation runs are stored and scored meanwhile, not after it.
In-process (``Watcher``), every batch already waiting in the folder when it starts."""
from __future__ import annotations

import pandas as pd

from workbench.store import Store
from workbench.stream import DetectConfig, WatchConfig, Watcher
from workbench.stream.sample import write_batch


def test_batches_keep_being_ingested_while_a_story_is_built(scenario, tmp_path):
    drop, n = tmp_path / "drop", 16
    for k in range(n):  # the onset at hour 6 closes with batch 9; six more wait behind it
        write_batch(scenario, k, drop)
    events: list[tuple[str, dict]] = []
    cfg = WatchConfig(detect=DetectConfig(z=4.0, run=3), metrics=("conversion_rate",),
                      library=None, idle_exit=0.3, poll=0.05)
    db = tmp_path / "s.duckdb"
    w = Watcher(scenario.passport, str(drop), db=db, config=cfg,
                emit=lambda e: events.append((e["event"], e)))
    assert w.run() == n
    kinds = [k for k, _ in events]
    assert kinds.count("alert") == 1 and kinds.count("story") == 1, kinds
    a, s = kinds.index("alert"), kinds.index("story")
    # inline, the story came right after its alert and held up every later batch
    during = [e for k, e in events[a + 1:s] if k == "batch"]
    assert len(during) >= 2, kinds
    (_, story), = [x for x in events if x[0] == "story"]
    assert story["verdict"] == "change" and story["top_cause"] == "chg-flag"
    assert story["onset"] == scenario.onset.isoformat()
    with Store(db, read_only=True) as st:  # told once, and every batch stored once
        assert st.con.execute("SELECT count(*), count(story) FROM wb_meta.stream_alerts"
                              ).fetchone() == (1, 1)
        assert st.con.execute("SELECT count(*), count(DISTINCT batch_id) FROM "
                              "wb_meta.stream_ledger").fetchone() == (n, n)
    assert pd.Timestamp(story["onset"]) == scenario.onset
