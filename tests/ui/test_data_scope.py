"""The timeline's band belongs to the scope drawn (issue 17 item 7).

A divergence found in a slice (a generated outage in one country, seeded)
carries that slice's detection; the timeline of "everything" must draw the
total's own band, not the slice's band under the total's line.
"""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def found_in_slice(tmp_path_factory):
    import workbench as wb
    from workbench.synth import generate_incident

    path = generate_incident("external", 11, tmp_path_factory.mktemp("scope") / "pp")
    truth = json.loads((path / "truth.json").read_text())
    inv = wb.investigate(path, metric=truth["metric"], artifact_dir=None, verify=False)
    assert inv.divergence["scope"] == truth["slice"]  # found in the slice, not the total
    return inv


def test_everything_draws_the_totals_band(found_in_slice):
    from workbench.ui.data import InvestigationData

    inv = found_in_slice
    data = InvestigationData(inv)
    whole, part = data.timeline({}), data.timeline(inv.divergence["scope"])
    assert whole.attrs["band_scope"] == {} and part.attrs["band_scope"] == inv.divergence["scope"]
    # the slice's band is the investigation's detection; the total's is its own
    np.testing.assert_allclose(part["expected"].to_numpy(),
                               inv.detection.expected["expected"].to_numpy())
    onset = data.onset.tz_localize(None)
    before = whole[whole["ts"] < onset].tail(24 * 7)
    inside = ((before["observed"] >= before["lower"]) & (before["observed"] <= before["upper"]))
    assert inside.mean() > 0.8  # the total's line sits in the total's band
    ratio = (before["expected"] / before["observed"]).median()
    assert ratio == pytest.approx(1.0, abs=0.05)
