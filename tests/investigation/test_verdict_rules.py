"""The verdict rules that turn a rate-vs-mix decomposition into ``mix_shift`` or not."""
from __future__ import annotations

from types import SimpleNamespace

from workbench.investigation.hypothesis import is_mix_shift as _is_mix_shift


def _rm(total, rate, mix, hint="rate"):
    return SimpleNamespace(total_change=total, rate_effect=rate, mix_effect=mix,
                           mix_share=mix / total if total else 0.0, verdict_hint=hint)


def test_mix_carrying_the_change_with_still_rates_is_a_mix_shift():
    assert _is_mix_shift(_rm(-0.004, -0.0002, -0.0038))


def test_rates_moving_with_the_change_are_not_a_mix_shift():
    assert not _is_mix_shift(_rm(-0.004, -0.002, -0.002))
    assert not _is_mix_shift(_rm(-0.004, -0.0012, -0.0038 + 0.001))


def test_rates_moving_against_the_change_do_not_hide_a_mix_shift():
    # the mix explains more than all of the drop; rates rose a little meanwhile
    assert _is_mix_shift(_rm(-0.004, +0.001, -0.005))
    # the same with a large opposing rate effect: the mix still carries the drop
    assert _is_mix_shift(_rm(-0.004, +0.003, -0.007))


def test_the_localizers_hint_is_accepted():
    assert _is_mix_shift(_rm(-0.004, -0.002, -0.002, hint="mix_shift"))
    assert not _is_mix_shift(_rm(0.0, 0.0, 0.0))


def test_concentration_slice_names_the_value_holding_the_divergence():
    import numpy as np
    import pandas as pd

    from workbench.investigation.slicing import _concentration_slice

    rng = np.random.default_rng(7)
    rows = [(p, c) for p in ("web", "ios", "android") for c in ("DE", "FR", "US", "BR")]
    lf = pd.DataFrame(rows * 5, columns=["platform", "country"])
    lf["base_den"] = rng.integers(900, 1100, len(lf)).astype(float)
    lf["obs_den"] = lf["base_den"]
    lf["base_num"] = lf["base_den"] * 0.04
    drop = np.where(lf["platform"] == "web", 0.75, 1.0)  # web converts 25% less
    lf["obs_num"] = lf["obs_den"] * 0.04 * drop
    sl = _concentration_slice(lf, ["platform", "country"], "ratio")
    assert sl["filter"] == {"platform": "web"}
    assert sl["explained_share"] == 1.0 and sl["observed"] < sl["baseline"]
    assert sl["source"].startswith("concentration")
    flat = lf.assign(obs_num=lf["obs_den"] * 0.04 * 0.9)  # everything moved alike
    assert _concentration_slice(flat, ["platform", "country"], "ratio") is None
