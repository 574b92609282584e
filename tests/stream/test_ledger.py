"""Exactly-once ingest by batch id, the watermark and late data, bounded batches."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import PassportError, UsageError
from workbench.passport import load_passport
from workbench.store import Store
from workbench.stream.ledger import ingest_batch, init_stream_tables
from workbench.stream.sample import batch_frame, stored_totals, write_batch


def _store(sc, tmp_path):
    pp = load_passport(sc.passport)
    st = Store(tmp_path / "s.duckdb")
    st.ingest(pp)
    init_stream_tables(st, pp.manifest)
    return st, pp.manifest


def test_a_batch_delivered_twice_is_stored_once(scenario, tmp_path):
    st, m = _store(scenario, tmp_path)
    f = write_batch(scenario, 0, tmp_path / "drop")
    first = ingest_batch(st, m, f, "b0", lateness=pd.Timedelta(0))
    again = ingest_batch(st, m, f, "b0", lateness=pd.Timedelta(0))
    st.close()
    assert (first.status, first.rows, again.status, again.rows) == ("ingested", 300,
                                                                     "duplicate", 0)
    t = stored_totals(tmp_path / "s.duckdb")
    assert t["rows"] == 15 * 24 * 300 + 300
    # the maintained aggregates equal a group-by over every stored row
    assert [tuple(r) for r in t["agg"]] == [tuple(r) for r in t["per_grain"]]


def test_late_rows_beyond_the_watermark_are_kept_apart_and_within_it_merged(scenario, tmp_path):
    st, m = _store(scenario, tmp_path)
    lateness = pd.Timedelta("30min")
    ingest_batch(st, m, write_batch(scenario, 3, tmp_path / "d"), "b3", lateness=lateness)
    wm = scenario.stream_start + pd.Timedelta(hours=4) - lateness  # newest event ~ 03:59:59
    old = batch_frame(scenario, 1)  # hour 01: two hours behind the watermark
    recent = batch_frame(scenario, 3).assign(ts=lambda d: d["ts"].where(
        d["ts"] >= wm, wm + pd.Timedelta("1min")))  # all within the allowed lateness
    mixed = pd.concat([old.head(40), recent.head(60)], ignore_index=True)
    path = tmp_path / "d" / "mixed.parquet"
    mixed.to_parquet(path, index=False)
    rec = ingest_batch(st, m, path, "mixed", lateness=lateness)
    late = st.con.execute("SELECT count(*), min(batch_id), max(watermark) FROM "
                          "p_stream_shop.late_events").fetchone()
    st.close()
    assert (rec.rows, rec.late_rows) == (60, 40)
    assert late[0] == 40 and late[1] == "mixed"
    assert pd.Timestamp(late[2]) < wm + pd.Timedelta("1s")
    # the merged rows fell into hour 03: that grain is what detection re-evaluates
    assert rec.buckets == (scenario.stream_start + pd.Timedelta(hours=3),)
    t = stored_totals(tmp_path / "s.duckdb")
    assert [tuple(r) for r in t["agg"]] == [tuple(r) for r in t["per_grain"]]


def test_a_malformed_batch_names_itself_and_the_column_and_stores_nothing(scenario, tmp_path):
    st, m = _store(scenario, tmp_path)
    df = batch_frame(scenario, 0)
    bad = tmp_path / "bad-1.csv"
    df.astype({"sessions": str}).assign(sessions=lambda d: d["sessions"].where(
        d.index != 7, "lots")).to_csv(bad, index=False)
    missing = tmp_path / "bad-2.csv"
    df.drop(columns=["plan"]).to_csv(missing, index=False)
    rows_before = st.event_count("stream-shop")
    with pytest.raises(PassportError, match=r"bad-1\.csv.*sessions.*a number"):
        ingest_batch(st, m, bad, "bad-1", lateness=pd.Timedelta(0))
    with pytest.raises(PassportError, match=r"bad-2\.csv.*no column 'plan'"):
        ingest_batch(st, m, missing, "bad-2", lateness=pd.Timedelta(0))
    with pytest.raises(UsageError, match="batch id '../x' is not valid"):
        ingest_batch(st, m, bad, "../x", lateness=pd.Timedelta(0))
    n_ledger = st.con.execute("SELECT count(*) FROM wb_meta.stream_ledger").fetchone()[0]
    assert (st.event_count("stream-shop"), n_ledger) == (rows_before, 0)
    st.close()
