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


# ---------------------------------------------------------------- issue 14: rules that agree
def _verdict(rm, top, *, dq=False, strict=False, sign=-1.0):
    from workbench.events.verdict import decide_verdict

    return decide_verdict(data_quality_explains=dq, strict_mix=strict, rm=rm,
                          divergence_sign=sign, top=top)


def test_mix_above_rate_is_a_mix_shift_unless_a_change_has_an_effect_of_its_own():
    rm = _rm(-0.004, -0.00116, -0.00284)  # mix share 71%, below the strict 75%
    coincident = {"confidence": 0.82, "own_effect": False}  # CI includes zero
    assert _verdict(rm, coincident) == "mix_shift"
    assert _verdict(rm, None) == "mix_shift"
    assert _verdict(rm, {"confidence": 0.9, "own_effect": True}) == "change"
    # the mix moving against the divergence explains none of it
    assert _verdict(_rm(-0.004, -0.005, +0.001), None) == "external"
    assert _verdict(rm, None, sign=+1.0) == "external"


def test_strict_mix_shift_and_data_quality_come_first():
    rm = _rm(-0.004, -0.0002, -0.0038)
    assert _verdict(rm, {"confidence": 0.95, "own_effect": True}, strict=True) == "mix_shift"
    assert _verdict(rm, {"confidence": 0.95, "own_effect": True}, dq=True) == "data_quality"


def test_a_named_change_needs_an_effect_of_its_own():
    assert _verdict(None, {"confidence": 0.7, "own_effect": True}) == "change"
    assert _verdict(None, {"confidence": 0.7, "own_effect": None}) == "change"  # global change
    assert _verdict(None, {"confidence": 0.7, "own_effect": False}) == "external"
    assert _verdict(None, {"confidence": 0.4, "own_effect": True}) == "external"
