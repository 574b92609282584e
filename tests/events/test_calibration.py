"""Confidence that means frequency: the Platt map, its fit and the shipped file (issue 14)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.events.calibration import CalibrationMap, calibration_map, fit_platt


def test_the_fit_recovers_a_known_map_and_keeps_the_order():
    rng = np.random.default_rng(5)
    raw = rng.uniform(0.001, 0.999, 4000)
    truth = CalibrationMap(a=0.6, b=-0.4)
    right = rng.random(4000) < truth(raw)  # outcomes drawn at the true calibrated rate
    fit = fit_platt(raw, right, version=3, fitted_on={"families": ["x"]})
    assert fit.a == pytest.approx(0.6, abs=0.08) and fit.b == pytest.approx(-0.4, abs=0.12)
    p = fit(np.sort(raw))
    assert np.all(np.diff(p) >= 0) and fit.version == 3
    # calibrated: in each tenth of the calibrated confidence, the share right matches
    q = fit(raw)
    for lo in np.arange(0.1, 0.9, 0.2):
        m = (q >= lo) & (q < lo + 0.2)
        assert abs(right[m].mean() - q[m].mean()) < 0.06


def test_identity_and_refusals():
    ident = CalibrationMap()
    assert ident.identity and np.array_equal(ident([0.2, 0.9]), [0.2, 0.9])
    with pytest.raises(ValueError, match="both outcomes"):
        fit_platt([0.1] * 30, [0] * 30, version=1, fitted_on={})
    with pytest.raises(ValueError, match="at least 20"):
        fit_platt([0.1, 0.9], [0, 1], version=1, fitted_on={})


def test_the_shipped_map_is_versioned_and_says_what_it_was_fitted_on():
    from importlib import resources

    cmap = calibration_map()
    f = resources.files("workbench.events").joinpath("calibration.json")
    if not f.is_file():
        assert cmap.identity
        return
    d = json.loads(f.read_text("utf-8"))
    assert cmap.version == d["version"] >= 1 and cmap.a > 0  # monotone increasing
    fitted = cmap.fitted_on
    assert fitted["causes"] >= 100 and fitted["families"]
    from workbench.synth import FAMILIES, HELDOUT_FAMILIES

    assert set(fitted["families"]) <= set(FAMILIES)  # tuning families only
    assert not set(fitted["families"]) & set(HELDOUT_FAMILIES)
