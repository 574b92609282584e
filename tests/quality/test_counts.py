"""The audit read from the counts kept at ingest equals the audit that scans the facts."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.passport import load_passport
from workbench.quality import audit_quality
from workbench.store import Store
from workbench.store import qcounts

from ..conftest import make_events, write_passport


def _scanned(st, sp):
    """The audit with the counts tables gone (the scan of the facts, as before issue 18)."""
    g = int(sp.manifest.grain_td.total_seconds())
    for t in (qcounts.presence_table(g), qcounts.keys_table(g), qcounts.counts_table(g)):
        st.con.execute(f'DROP TABLE {sp.schema}."{t}"')
    assert not qcounts.has_tables(st.con, sp.schema, g)
    return audit_quality(st.con, sp)


def _defective(rng):
    ev = make_events(rng, hours=24 * 15)
    gap = (ev.region == "EU") & (ev.ts >= "2026-11-08T14:00Z") & (ev.ts < "2026-11-08T20:00Z")
    dup = ev[(ev.region == "NA") & (ev.ts >= "2026-11-09T00:00Z") & (ev.ts < "2026-11-09T04:00Z")]
    ev = pd.concat([ev[~gap], dup], ignore_index=True)
    ev.loc[5, "conversions"] = ev.loc[5, "sessions"] + 10
    ev.loc[7, "conversions"] = -3
    last = ev.ts >= ev.ts.max() - pd.Timedelta("1h")
    return ev[~last | (rng.random(len(ev)) < 0.5)].reset_index(drop=True)


@pytest.mark.parametrize("split", ["one", "disjoint", "overlapping", "spans"])
def test_counts_give_the_findings_of_the_scan(tmp_path, rng, split, monkeypatch):
    """Gaps, duplicates (also across batches sharing buckets), integrity and late data;
    ``spans``: repeats counted in spans of whole buckets, as a large batch is."""
    if split == "spans":
        monkeypatch.setattr(qcounts, "KEYS_CHUNK", 2_000)
    ev = _defective(rng)
    extra = []
    if split not in ("one", "spans"):
        # a second batch: later days (disjoint), or NA's duplicated block (overlapping:
        # its repeats sit in another batch than the rows they repeat)
        cut = (ev.ts >= "2026-11-12") if split == "disjoint" else (
            (ev.region == "NA") & (ev.ts >= "2026-11-09T00:00Z") & (ev.ts < "2026-11-09T02:00Z"))
        b = tmp_path / "b2.parquet"
        ev[cut].to_parquet(b, index=False)
        extra, ev = [b], ev[~cut]
    path = write_passport(tmp_path / "p", ev, fmt="parquet")
    with Store(tmp_path / "s.duckdb") as st:
        st.ingest(load_passport(path), batch_files=extra)
        sp = st.passport()
        fast = audit_quality(st.con, sp)
        g = int(sp.manifest.grain_td.total_seconds())
        spans = st.con.execute(f'SELECT count(*), count(DISTINCT (batch, b)) FROM '
                               f'{sp.schema}."{qcounts.keys_table(g)}"').fetchone()
        assert spans[0] == spans[1]  # a bucket is never split between spans
        checks = {f.check for f in fast.findings}
        assert {"completeness", "duplicates", "integrity", "late_data"} <= checks, checks
        slow = _scanned(st, sp)
    assert [f.to_dict() for f in fast.findings] == [f.to_dict() for f in slow.findings]
    pd.testing.assert_frame_equal(fast.duplicate_buckets, slow.duplicate_buckets)


def test_replaced_batch_takes_its_counts_along(tmp_path, rng):
    """A file whose content changed replaces its batch: its old counts go with it."""
    ev = make_events(rng, hours=24 * 10)
    path = write_passport(tmp_path / "p", ev, fmt="parquet")
    with Store(tmp_path / "s.duckdb") as st:
        st.ingest(load_passport(path))
        ev2 = ev.copy()
        ev2.loc[3, "conversions"] = -1
        write_passport(tmp_path / "p", ev2, fmt="parquet")
        st.ingest(load_passport(path))
        sp = st.passport()
        (f,) = audit_quality(st.con, sp).of("integrity")
        assert "1 rows have a negative conversions" in f.detail
        g = int(sp.manifest.grain_td.total_seconds())
        n = st.con.execute(f'SELECT n FROM {sp.schema}."{qcounts.counts_table(g)}" '
                           "WHERE \"check\" = 'rows'").fetchall()
        assert n == [(len(ev),)]  # one active batch counted, the replaced one gone


@pytest.mark.parametrize("metric", ["conversion_rate", "sessions"])
def test_baseline_profile_from_the_counts_equals_the_scan(tmp_path, rng, metric):
    """The baseline cube read from the sums kept at ingest is the scan's, cell for cell;
    a period not on bucket boundaries is scanned."""
    from workbench.store.baselines import profile_sql

    ev = make_events(rng, hours=24 * 15)
    path = write_passport(tmp_path / "p", ev.iloc[: len(ev) // 2], fmt="parquet")
    b = tmp_path / "b2.parquet"
    ev.iloc[len(ev) // 2:].to_parquet(b, index=False)
    with Store(tmp_path / "s.duckdb") as st:
        st.ingest(load_passport(path), batch_files=[b])
        sp = st.passport()
        spec = sp.manifest.metric(metric)
        period = (pd.Timestamp("2026-11-02T00:00Z"), pd.Timestamp("2026-11-13T00:00Z"))
        sql = profile_sql(sp, spec, period, con=st.con)
        assert ".events" not in sql and "qc_presence" in sql
        fast = st.con.execute(sql).df()
        odd = (period[0] + pd.Timedelta("30min"), period[1])
        assert ".events" in profile_sql(sp, spec, odd, con=st.con)
        _scanned(st, sp)
        sql = profile_sql(sp, spec, period, con=st.con)
        assert ".events" in sql
        slow = st.con.execute(sql).df()
    assert len(fast) > 24 * 7 and set(fast["dimension"]) == {"(all)", "country", "platform",
                                                              "region"}
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
