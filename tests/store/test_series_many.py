"""Several slices' series from one scan: the frames one-slice queries give (the ranking's cache)."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.passport import load_passport
from workbench.store import Store, metric_series
from workbench.store.queries import metric_series_many

from ..conftest import make_events, write_passport


@pytest.mark.parametrize("metric", ["conversion_rate", "sessions"])
def test_many_slices_in_one_scan_equal_one_query_each(tmp_path, rng, metric):
    ev = make_events(rng)
    # a slice absent from some hours: those buckets are absent from its series too
    ev = ev[~((ev["platform"] == "web") & (ev["country"] == "DE") & (ev["ts"].dt.hour < 6))]
    pp = load_passport(write_passport(tmp_path / "p", ev))
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        st.ingest(pp)
    filters = [{"platform": "ios"}, {"platform": ["web", "android"], "country": "DE"},
               {"platform": "web", "country": "DE"}, {"region": "EU"}]
    start, end = pd.Timestamp("2026-11-01T05:00Z"), pd.Timestamp("2026-11-03T20:00Z")
    with Store(db, read_only=True) as st:
        sp = st.passport()
        spec = sp.manifest.metric(metric)
        many = metric_series_many(st.con, sp, spec, filters, start=start, end=end)
        assert len(many) == len(filters)
        for f, got in zip(filters, many):
            one = metric_series(st.con, sp, spec, filter=f, start=start, end=end).frame
            pd.testing.assert_frame_equal(got, one)
        web_de = many[2]
        # hours 0-5 are missing: 05:00 of the first day, then six on each of the next two
        assert len(web_de) == len(many[0]) - 13
        assert metric_series_many(st.con, sp, spec, []) == []
