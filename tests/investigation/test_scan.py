"""Scanning a passport: the incident is the first story; a quiet passport has none."""
from __future__ import annotations

import json

from workbench.investigation.scan import scan_passport
from workbench.synth import generate_incident


def test_scan_finds_the_incident_first(tmp_path):
    p = generate_incident("scoped_change", 11, tmp_path / "p")
    truth = json.loads((p / "truth.json").read_text())
    rep = scan_passport(p, metrics=["conversion_rate"])
    assert rep.groups, rep.summary()
    lead = rep.groups[0].lead
    assert lead.score < 0
    # the lead slice is one of the truth's conditions (scan is single-dimension)
    assert any(lead.slice == {k: v} for k, v in truth["slice"].items())
    onset = rep.groups[0].onset
    assert abs((onset - __import__("pandas").Timestamp(truth["onset"])).total_seconds()) <= 3 * 3600
    assert rep.to_dict()["divergences"][0]["lead"]["metric"] == "conversion_rate"


def test_scan_of_a_quiet_passport_is_quiet(tmp_path):
    p = generate_incident("quiet", 12, tmp_path / "q")
    rep = scan_passport(p, metrics=["conversion_rate"])
    assert rep.groups == (), rep.summary()
    assert "nothing diverged" in rep.summary()
