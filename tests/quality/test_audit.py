"""Data-quality audits: gaps, duplicates, impossible values, late data, repair."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.passport import load_passport
from workbench.quality import audit_quality, correct_series
from workbench.quality.audit import QualityConfig
from workbench.store import Store, metric_series

from ..conftest import make_events, write_passport


def _store(tmp_path, ev, name="p"):
    path = write_passport(tmp_path / name, ev, fmt="parquet")
    st = Store(tmp_path / f"{name}.duckdb")
    st.ingest(load_passport(path))
    return st


def test_clean_data_has_no_findings(tmp_path, rng):
    with _store(tmp_path, make_events(rng, hours=24 * 10)) as st:
        assert audit_quality(st.con, st.passport()).findings == ()


def test_region_gap_found_once_at_the_coarsest_level(tmp_path, rng):
    ev = make_events(rng, hours=24 * 10)
    gap = (ev.region == "EU") & (ev.ts >= "2026-11-08T14:00Z") & (ev.ts < "2026-11-08T20:00Z")
    with _store(tmp_path, ev[~gap]) as st:
        rep = audit_quality(st.con, st.passport())
        gaps = rep.of("completeness")
        assert len(gaps) == 1
        g = gaps[0]
        assert g.slice == {"region": "EU"} and g.buckets == 6
        assert g.start == pd.Timestamp("2026-11-08T14:00Z")
        assert "region=EU" in g.detail and g.puts_at_risk


def test_whole_feed_gap_is_one_finding(tmp_path, rng):
    ev = make_events(rng, hours=24 * 10)
    gap = (ev.ts >= "2026-11-05T03:00Z") & (ev.ts < "2026-11-05T05:00Z")
    with _store(tmp_path, ev[~gap]) as st:
        gaps = audit_quality(st.con, st.passport()).of("completeness")
        assert len(gaps) == 1 and gaps[0].slice == {} and gaps[0].buckets == 2


def test_the_gap_scan_is_bounded_by_its_work_not_by_the_span(tmp_path, rng):
    """Issue 19: the scan lays out buckets x values; past its bounds it says so and skips."""
    ev = make_events(rng, hours=24 * 10)
    gap = (ev.region == "EU") & (ev.ts >= "2026-11-08T14:00Z") & (ev.ts < "2026-11-08T20:00Z")
    with _store(tmp_path, ev[~gap]) as st:
        for cfg, what in ((QualityConfig(max_buckets=100), "the whole span (240 buckets"),
                          (QualityConfig(max_cells=500), "country: 240 buckets x 4 values")):
            found = audit_quality(st.con, st.passport(), config=cfg).of("completeness")
            skipped = [f for f in found if f.severity == "info"]
            assert skipped and what in skipped[0].detail, [f.detail for f in found]
        found = audit_quality(st.con, st.passport(), config=QualityConfig(max_cells=500))
        assert not [f for f in found.of("completeness") if f.slice]  # nothing half-scanned


def test_duplicated_batch_found_and_repaired(tmp_path, rng):
    ev = make_events(rng, hours=24 * 10)
    dup = ev[(ev.ts >= "2026-11-09T00:00Z") & (ev.ts < "2026-11-09T04:00Z")]
    with _store(tmp_path, pd.concat([ev, dup])) as st:
        sp = st.passport()
        rep = audit_quality(st.con, sp)
        d = rep.of("duplicates")
        assert len(d) == 1 and d[0].buckets == 4
        assert f"{len(dup)} duplicated fact rows" in d[0].detail
        assert d[0].slice == {}  # the whole feed was loaded twice: no slice to name
        spec = sp.manifest.metric("sessions")
        ser = metric_series(st.con, sp, spec).frame
        fixed = correct_series(ser, rep, spec).set_index("ts")["num"]
        truth = ev.groupby("ts")["sessions"].sum()
        np.testing.assert_allclose(fixed.to_numpy(), truth.to_numpy())


def test_duplicated_batch_is_placed_in_its_slice(tmp_path, rng):
    ev = make_events(rng, hours=24 * 10)
    dup = ev[(ev.region == "EU") & (ev.ts >= "2026-11-09T00:00Z") & (ev.ts < "2026-11-09T04:00Z")]
    with _store(tmp_path, pd.concat([ev, dup])) as st:
        (d,) = audit_quality(st.con, st.passport()).of("duplicates")
        assert d.slice == {"region": "EU"}
        assert "in region=EU" in d.detail


def test_gap_repair_fills_from_the_baseline(tmp_path, rng):
    ev = make_events(rng, hours=24 * 21)
    gap = (ev.region == "NA") & (ev.ts >= "2026-11-20T10:00Z") & (ev.ts < "2026-11-20T16:00Z")
    with _store(tmp_path, ev[~gap]) as st:
        sp = st.passport()
        spec = sp.manifest.metric("sessions")
        rep = audit_quality(st.con, sp)
        (g,) = rep.of("completeness")
        ser = metric_series(st.con, sp, spec).frame
        na = metric_series(st.con, sp, spec, filter={"region": "NA"}).frame.set_index("ts")
        fill = pd.concat([na[["num", "den"]].shift(freq=pd.Timedelta(days=7 * k))
                          for k in (1, 2)]).groupby(level=0).mean()
        fixed = correct_series(ser, rep, spec,
                               gap_fill={(g.start, (("region", "NA"),)): fill}).set_index("ts")
        truth = ev.groupby("ts")["sessions"].sum()
        window = (truth.index >= g.start) & (truth.index < g.end)
        rel = fixed["num"][window].sum() / truth[window].sum() - 1
        assert abs(rel) < 0.05  # the filled volume is within 5% of what was lost


def test_impossible_values(tmp_path, rng):
    ev = make_events(rng, hours=24 * 3)
    ev.loc[5, "conversions"] = ev.loc[5, "sessions"] + 10
    # a negative denominator is refused when the passport loads (issue 19); a negative
    # numerator row, a correction, is allowed and reported here
    ev.loc[7, "conversions"] = -3
    with _store(tmp_path, ev) as st:
        f = audit_quality(st.con, st.passport()).of("integrity")
        details = " | ".join(x.detail for x in f)
        assert "1 rows have a negative conversions" in details
        assert "conversions above sessions" in details


def test_incomplete_tail_is_late_data(tmp_path, rng):
    ev = make_events(rng, hours=24 * 15)
    last = ev.ts >= ev.ts.max() - pd.Timedelta("1h")
    keep = ~last | (rng.random(len(ev)) < 0.5)  # half the rows of the last 2 hours not yet in
    with _store(tmp_path, ev[keep]) as st:
        f = audit_quality(st.con, st.passport()).of("late_data")
        assert len(f) == 1 and f[0].buckets == 2
        assert "may still be arriving" in f[0].detail


def test_late_batch_is_reported(tmp_path, rng):
    ev = make_events(rng, hours=24 * 4)
    early, late = ev[ev.ts < "2026-11-04"], ev[ev.ts >= "2026-11-04"]
    path = write_passport(tmp_path / "p", late, fmt="parquet")
    b = tmp_path / "old.parquet"
    early.to_parquet(b, index=False)
    with Store(tmp_path / "s.duckdb") as st:
        st.ingest(load_passport(path), batch_files=[b])
        f = audit_quality(st.con, st.passport()).of("late_data")
        assert any("late-arriving data was merged" in x.detail for x in f)
