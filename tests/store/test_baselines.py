"""Versioned baselines: recalibrating twice gives three versions, never overwritten."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import StoreError
from workbench.passport import load_passport
from workbench.store import Store
from workbench.store.baselines import (diff_baselines, fit_baseline, list_baselines,
                                       load_baseline)

from ..conftest import make_events, write_passport


@pytest.fixture
def store(tmp_path, rng):
    ev = make_events(rng, start="2026-10-26", hours=24 * 28)
    # the ios conversion rate improves in the last week (a fix shipped): the
    # recalibrated baseline must see it
    late = (ev.ts >= "2026-11-16") & (ev.platform == "ios")
    ev.loc[late, "conversions"] = rng.binomial(ev.loc[late, "sessions"], 0.06)
    path = write_passport(tmp_path / "p", ev, fmt="parquet")
    st = Store(tmp_path / "s.duckdb")
    st.ingest(load_passport(path))
    yield st
    st.close()


def test_recalibrate_twice_gives_three_versions_and_a_diff(store):
    b1 = fit_baseline(store, "tiny-shop", "conversion_rate",
                      period=("2026-10-26", "2026-11-09"), note="first fit")
    b2 = fit_baseline(store, "tiny-shop", "conversion_rate",
                      period=("2026-11-02", "2026-11-16"), note="recalibrated")
    b3 = fit_baseline(store, "tiny-shop", "conversion_rate",
                      period=("2026-11-09", "2026-11-23"), note="after the ios fix")
    assert [b.version for b in (b1, b2, b3)] == [1, 2, 3]
    assert b2.parent == b1.id and b3.parent == b2.id and b1.parent is None
    lst = list_baselines(store.con, passport="tiny-shop")
    assert lst["version"].tolist() == [1, 2, 3]
    assert lst["period_start"].dt.strftime("%Y-%m-%d").tolist() == \
        ["2026-10-26", "2026-11-02", "2026-11-09"]
    # the first version is unchanged by the recalibrations
    again = load_baseline(store.con, b1.id)
    pd.testing.assert_frame_equal(again.cells, b1.cells)
    d = diff_baselines(store.con, b1.id, b3.id)
    top = d.slices.iloc[0]
    assert top["slice"] in ("platform=ios", "(all)=(all)")
    ios = d.slices.set_index("slice").loc["platform=ios"]
    assert ios["a_value"] == pytest.approx(0.04, abs=0.004)
    assert ios["b_value"] == pytest.approx(0.05, abs=0.004)  # one of two weeks at 6%
    web = d.slices.set_index("slice").loc["platform=web", "relative_change"]
    assert abs(web) < 0.05
    text = d.summary()
    assert "v1" in text and "v3" in text and "platform=ios" in text
    assert "2026-10-26" in text and "2026-11-09" in text


def test_refit_same_period_reuses_version(store):
    b1 = fit_baseline(store, "tiny-shop", "sessions", period=("2026-10-26", "2026-11-09"))
    b1b = fit_baseline(store, "tiny-shop", "sessions", period=("2026-10-26", "2026-11-09"))
    assert b1b.id == b1.id
    assert len(list_baselines(store.con, metric="sessions")) == 1


def test_cube_is_an_xarray_dataset(store):
    b = fit_baseline(store, "tiny-shop", "conversion_rate", period=("2026-10-26", "2026-11-09"))
    ds = b.cube
    assert set(ds.sizes) == {"slice", "hour_of_week"} and ds.sizes["hour_of_week"] == 168
    assert "platform=ios" in ds["slice"].values and "(all)=(all)" in ds["slice"].values
    assert (ds["weeks"].sel(slice="(all)=(all)") == 2).all()
    exp = b.expected(pd.date_range("2026-11-16", periods=24, freq="1h", tz="UTC"))
    assert np.isfinite(exp["value_mean"]).all()


def test_errors(store, tmp_path):
    fit_baseline(store, "tiny-shop", "conversion_rate", period=("2026-10-26", "2026-11-09"))
    with pytest.raises(StoreError, match="no baseline 'nope'; stored: bl-tiny-shop"):
        load_baseline(store.con, "nope")
    with pytest.raises(StoreError, match="must be after"):
        fit_baseline(store, "tiny-shop", "sessions", period=("2026-11-09", "2026-11-01"))
