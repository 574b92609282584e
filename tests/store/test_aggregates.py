"""Sums per grain bucket kept at ingest (issue 18): exact through appends and replacements."""
from __future__ import annotations

import pandas as pd

from workbench.passport import load_passport
from workbench.store import Store, metric_series
from workbench.store.queries import _bucketed

from ..conftest import make_events, write_passport


def _both(db):
    """The total series from the aggregates and from the facts, for both metric kinds."""
    out = []
    with Store(db, read_only=True) as st:
        sp = st.passport()
        for name in ("conversion_rate", "sessions"):
            spec = sp.manifest.metric(name)
            agg = metric_series(st.con, sp, spec)
            facts, _ = _bucketed(st.con, sp, spec, "TRUE", None, None)
            out.append((agg, facts))
    return out


def _extra_batch(rng, tmp_path):
    """Five more hours of facts as a CSV batch file; returns the frame and the path."""
    extra = make_events(rng, start="2026-11-04", hours=5)
    extra["ts"] = extra["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    batch = tmp_path / "more.csv"
    extra.to_csv(batch, index=False)
    return extra, batch


def _assert_same(db, *, from_aggregates=True):
    for agg, facts in _both(db):
        assert ('"agg_3600s"' in agg.sql) is from_aggregates
        pd.testing.assert_frame_equal(agg.frame.drop(columns="value"), facts,
                                      check_dtype=False)


def test_aggregates_follow_appends_and_replacements(tmp_path, rng):
    pp_dir = write_passport(tmp_path / "pp", make_events(rng))
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        st.ingest(load_passport(pp_dir))
    _assert_same(db)
    extra, batch = _extra_batch(rng, tmp_path)
    with Store(db) as st:
        st.ingest(load_passport(pp_dir), batch_files=[batch])
    before = _both(db)[0][0].frame
    _assert_same(db)
    extra["sessions"] = extra["sessions"] * 3  # same path, new content: replaces the batch
    extra.to_csv(batch, index=False)
    with Store(db) as st:
        rep = st.ingest(load_passport(pp_dir), batch_files=[batch])
        assert [b.status for b in rep.batches] == ["duplicate", "replaced"]
    _assert_same(db)
    after = _both(db)[0][0].frame
    assert len(after) == len(before)
    assert after["den"].iloc[-1] > 2.5 * before["den"].iloc[-1]


def test_a_store_without_aggregates_reads_the_facts_then_backfills(tmp_path, rng):
    pp_dir = write_passport(tmp_path / "pp", make_events(rng))
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        st.ingest(load_passport(pp_dir))
        st.con.execute(f"DROP TABLE {st.passport().schema}.agg_3600s")  # as an older store
    _assert_same(db, from_aggregates=False)
    with Store(db) as st:
        rep = st.ingest(load_passport(pp_dir))  # nothing new to load; aggregates rebuilt
        assert rep.loaded_rows == 0
    _assert_same(db)


def test_a_new_grain_gets_its_own_exact_aggregates(tmp_path, rng):
    from ..conftest import MANIFEST

    pp_dir = write_passport(tmp_path / "pp", make_events(rng))
    db = tmp_path / "s.duckdb"
    extra, batch = _extra_batch(rng, tmp_path)
    with Store(db) as st:
        st.ingest(load_passport(pp_dir), batch_files=[batch])
    (pp_dir / "passport.yaml").write_text(MANIFEST.replace("grain: 1h", "grain: 2h"))
    extra["sessions"] = extra["sessions"] + 1000  # replaced while the grain is 2h
    extra.to_csv(batch, index=False)
    with Store(db) as st:
        st.ingest(load_passport(pp_dir), batch_files=[batch])
    for agg, facts in _both(db):
        assert '"agg_7200s"' in agg.sql
        pd.testing.assert_frame_equal(agg.frame.drop(columns="value"), facts, check_dtype=False)
    (pp_dir / "passport.yaml").write_text(MANIFEST)  # back to 1h: the old sums are not reused
    with Store(db) as st:
        st.ingest(load_passport(pp_dir), batch_files=[batch])
    _assert_same(db)
