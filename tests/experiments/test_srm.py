"""Sample-ratio mismatch: detected when present, localized, quiet when absent."""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.experiments import check_srm


def _assign(rng, n, p_a, platform=None):
    return pd.DataFrame({"unit_id": [f"u{i}" for i in range(n)], "experiment": "exp",
                         "variant": np.where(rng.random(n) < p_a, "a", "b"),
                         "platform": platform if platform is not None else
                         rng.choice(["ios", "android", "web"], n)})


def test_balanced_split_is_not_flagged(rng):
    flags = [check_srm(_assign(rng, 4000, 0.5))[0].mismatch for _ in range(50)]
    assert sum(flags) == 0  # alpha 0.0005: a flag in 50 null runs would be a defect


def test_mismatch_found_and_localized(rng):
    ok = _assign(rng, 6000, 0.5)
    # ios units lose half their 'b' assignments (a logging bug in one client)
    bad = ok[~((ok.platform == "ios") & (ok.variant == "b") & (rng.random(len(ok)) < 0.5))]
    r = check_srm(bad)[0]
    assert r.mismatch and r.p_value < 1e-6
    assert r.worst_slice == {"platform": "ios"}
    assert "concentrated in platform=ios" in r.detail()


def test_design_shares_are_respected(rng):
    df = _assign(rng, 5000, 0.9)
    assert check_srm(df, design={"exp": {"a": 0.9, "b": 0.1}})[0].mismatch is False
    assert check_srm(df)[0].mismatch is True


def test_repeated_units_count_once(rng):
    df = _assign(rng, 2000, 0.5)
    dup = pd.concat([df, df[df.variant == "a"]])  # re-logged 'a' units
    assert check_srm(dup)[0].counts == check_srm(df)[0].counts


def _exp(rng, n=30000):
    return pd.DataFrame({
        "unit_id": np.arange(n), "experiment": "e", "variant": rng.choice(["a", "b"], n),
        "app_version": rng.choice(["5.0", "5.1", "5.2"], n),
        "browser": rng.choice(["chrome", "safari", "firefox"], n),
        "ts": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 72, n),
                                                                      unit="h")})


def test_diagnosis_names_the_cause_class(rng):
    from workbench.experiments import diagnose_srm

    e = _exp(rng)
    loss = e[~((e.browser == "safari") & (e.variant == "b") & (rng.random(len(e)) < 0.3))]
    d = diagnose_srm(loss)[0]
    assert (d.cause, d.where) == ("log_processing", {"browser": "safari"})
    assert d.p_without > 0.0005 and "telemetry loss" in d.detail
    e = _exp(rng)
    late = e[~((e.variant == "b") & (e.ts < e.ts.min() + pd.Timedelta(hours=6)))]
    d = diagnose_srm(late)[0]
    assert d.cause == "execution" and "time" in d.where
    assert diagnose_srm(_exp(rng))[0].mismatch is False
