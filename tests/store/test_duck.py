"""The DuckDB store: ingest, append, duplicate batches, read-only readers, queries."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from workbench.errors import StoreError
from workbench.passport import load_passport
from workbench.store import (Store, dimension_breakdown, leaves, metric_series,
                             rows_by_bucket)

from ..conftest import make_events, write_passport


@pytest.fixture
def stored(tmp_path, tiny_passport):
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        rep = st.ingest(load_passport(tiny_passport))
    return db, tiny_passport, rep


def test_ingest_counts_and_provenance(stored):
    db, path, rep = stored
    assert rep.total_rows == 72 * 12 and rep.loaded_rows == 72 * 12
    assert [b.status for b in rep.batches] == ["loaded"]
    with Store(db, read_only=True) as st:
        sp = st.passport("tiny-shop")
        assert sp.manifest.metric("conversion_rate").denominator == "sessions"
        tables = {p["table"] for p in sp.provenance}
        assert tables == {"events", "changes"}
        ch = st.changes("tiny-shop")
        assert ch.loc[ch["id"] == "chg-1", "scope"].iloc[0] == {"platform": "ios"}


def test_dimensions_are_dictionary_encoded(stored):
    db, _, _ = stored
    with Store(db, read_only=True) as st:
        types = dict(st.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'p_tiny_shop' AND table_name = 'events'").fetchall())
        assert types["country"] == "INTEGER" and types["platform"] == "INTEGER"
        assert st.con.execute("SELECT count(*) FROM p_tiny_shop.dict_country").fetchone()[0] == 4
        decoded = st.con.execute("SELECT DISTINCT country FROM p_tiny_shop.events_v "
                                 "ORDER BY 1").df()["country"].tolist()
        assert decoded == ["BR", "DE", "FR", "US"]


def test_reingest_same_batch_is_not_double_counted(stored):
    db, path, _ = stored
    with Store(db) as st:
        rep = st.ingest(load_passport(path))
        assert [b.status for b in rep.batches] == ["duplicate"]
        assert rep.total_rows == 72 * 12


def test_append_later_batch_without_reloading(stored, tmp_path, rng):
    db, path, _ = stored
    later = make_events(rng, start="2026-11-04", hours=24)
    later.loc[later["country"] == "BR", "country"] = "AR"  # a value never seen before
    later.loc[later["country"] == "AR", "region"] = "LATAM"
    f = tmp_path / "batch2.csv"
    later.assign(ts=later["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(f, index=False)
    with Store(db) as st:
        rep = st.ingest(load_passport(path), batch_files=[f])
        st_rows = {b.file.split("/")[-1]: b.status for b in rep.batches}
        assert st_rows == {"events.csv": "duplicate", "batch2.csv": "loaded"}
        assert rep.total_rows == 72 * 12 + 24 * 12
        # the same batch again: detected
        rep2 = st.ingest(load_passport(path), batch_files=[f])
        assert all(b.status == "duplicate" for b in rep2.batches)
        assert rep2.total_rows == rep.total_rows
        # a copy of the batch under another name is the same content: still a duplicate
        g = tmp_path / "batch2-resent.csv"
        g.write_bytes(f.read_bytes())
        rep3 = st.ingest(load_passport(path), batch_files=[g])
        assert rep3.total_rows == rep.total_rows
        codes = st.con.execute("SELECT value FROM p_tiny_shop.dict_country ORDER BY code").df()
        assert codes["value"].tolist()[-1] == "AR"


def test_changed_file_replaces_its_batch(stored, rng):
    db, path, _ = stored
    ev = make_events(rng, hours=10)
    write_passport(path, ev)
    with Store(db) as st:
        rep = st.ingest(load_passport(path))
        assert rep.batches[0].status == "replaced"
        assert rep.total_rows == 10 * 12


def test_read_only_store_refuses_writes_and_missing_file(stored, tmp_path):
    db, path, _ = stored
    with Store(db, read_only=True) as st:
        with pytest.raises(StoreError, match="read-only"):
            st.ingest(load_passport(path))
        with pytest.raises(duckdb.Error):
            st.con.execute("DELETE FROM p_tiny_shop.events")
    with pytest.raises(StoreError, match="no such store"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_failed_ingest_rolls_back(stored, tmp_path, rng):
    db, path, _ = stored
    pp = load_passport(path)
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,region,country,platform,sessions,conversions\n"
                   "2026-11-05T00:00:00Z,EU,DE,ios,1,x\n")
    with Store(db) as st:
        before = st.event_count("tiny-shop")
        with pytest.raises(Exception, match="conversions"):
            st.ingest(pp, batch_files=[bad])
        assert st.event_count("tiny-shop") == before
        assert len(st.batches("tiny-shop")) == 1


def test_metric_series_matches_pandas(stored, rng):
    db, path, _ = stored
    ev = pd.read_csv(path / "events.csv", parse_dates=["ts"])
    with Store(db, read_only=True) as st:
        sp = st.passport()
        m = sp.manifest.metric("conversion_rate")
        r = metric_series(st.con, sp, m, filter={"region": "EU", "platform": ["ios", "web"]})
        assert "GROUP BY" in r.sql and "dict_region" in r.sql
        sub = ev[(ev.region == "EU") & ev.platform.isin(["ios", "web"])]
        exp = sub.groupby("ts")[["conversions", "sessions"]].sum()
        np.testing.assert_allclose(r.frame["num"].to_numpy(), exp["conversions"].to_numpy())
        np.testing.assert_allclose(r.frame["value"].to_numpy(),
                                   (exp["conversions"] / exp["sessions"]).to_numpy())
        neg = metric_series(st.con, sp, m, filter={"region": "EU"}, negate=True).frame
        assert neg["den"].sum() == ev[ev.region != "EU"]["sessions"].sum()


def test_dimension_breakdown_is_one_grouping_sets_statement(stored):
    db, path, _ = stored
    ev = pd.read_csv(path / "events.csv", parse_dates=["ts"])
    obs = (pd.Timestamp("2026-11-03T00:00Z"), pd.Timestamp("2026-11-04T00:00Z"))
    base = [(pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-02T00:00Z")),
            (pd.Timestamp("2026-11-02T00:00Z"), pd.Timestamp("2026-11-03T00:00Z"))]
    with Store(db, read_only=True) as st:
        sp = st.passport()
        r = dimension_breakdown(st.con, sp, sp.manifest.metric("conversion_rate"),
                                obs=obs, base=base)
        assert r.sql.count("GROUPING SETS") == 1 and r.sql.count("FROM p_tiny_shop.events") == 1
        df = r.frame.set_index(["dimension", "value"])
        assert set(df.index.get_level_values(0)) == {"country", "platform", "region"}
        o = ev[(ev.ts >= "2026-11-03") & (ev.ts < "2026-11-04")]
        b = ev[(ev.ts >= "2026-11-01") & (ev.ts < "2026-11-03")]
        assert df.loc[("platform", "ios"), "obs_den"] == o[o.platform == "ios"].sessions.sum()
        assert df.loc[("region", "EU"), "base_num"] == \
            pytest.approx(b[b.region == "EU"].conversions.sum() / 2)
        lv = leaves(st.con, sp, sp.manifest.metric("sessions"), obs=obs, base=base).frame
        assert len(lv) == 12 and lv["obs_num"].sum() == o.sessions.sum()


def test_rows_by_bucket_counts_duplicates(stored):
    db, _, _ = stored
    with Store(db, read_only=True) as st:
        sp = st.passport()
        r = rows_by_bucket(st.con, sp, "region").frame
        eu = r[r["value"] == "EU"]
        assert (eu["rows"] == 6).all() and (eu["distinct_rows"] == 6).all()
