"""``benchmarks/incidents.py --fit-calibration``: fit on tuning families, ship only what helps.

The map is fitted on the tuning families' causes and judged on the held-out
ones; it is written only when it lowers their expected calibration error.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from workbench.events.calibration import CalibrationMap

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "incidents.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_incidents", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _records(rng, n: int, *, heldout: bool, truth: CalibrationMap, start: int = 0) -> list[dict]:
    """Incidents of one cause each, the culprit with probability ``truth(confidence)``."""
    conf = np.round(rng.uniform(0.02, 0.98, n), 4)
    right = rng.random(n) < truth(conf)
    return [{"family": "nested_decoy" if heldout else "scoped_change", "seed": start + i,
             "heldout": heldout, "verdict": "change", "truth_culprits": ["c"],
             "causes": [["c" if r else "x", float(p)]]} for i, (p, r) in
            enumerate(zip(conf, right))]


def _write(tmp_path, name, recs) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"incidents": recs, "base_seed": 1, "scale": 0.5}))
    return path


def test_a_map_that_lowers_the_heldout_error_is_written(bench, tmp_path):
    rng = np.random.default_rng(14)
    overconfident = CalibrationMap(a=0.4, b=-0.5)  # what the confidences really mean
    runs = [_write(tmp_path, "a.json", _records(rng, 1500, heldout=False, truth=overconfident)),
            _write(tmp_path, "b.json", _records(rng, 1500, heldout=True, truth=overconfident,
                                                start=10_000))]
    dest = tmp_path / "calibration.json"
    assert bench.fit_calibration(runs, tmp_path / "fit.json", tmp_path, map_path=dest) == 0
    rep = json.loads((tmp_path / "fit.json").read_text())
    assert rep["incidents"] == {"tuning": 1500, "heldout": 1500}
    assert rep["map"]["shipped"] and dest.is_file()
    assert rep["map"]["a"] == pytest.approx(0.4, abs=0.1)
    assert rep["map"]["b"] == pytest.approx(-0.5, abs=0.15)
    assert rep["calibration_heldout_mapped"]["ece"] < rep["calibration_heldout"]["ece"]
    assert (tmp_path / "incidents_calibration_reliability_heldout.png").stat().st_size > 1000


def test_a_map_that_does_not_help_the_heldout_families_is_not_written(bench, tmp_path):
    rng = np.random.default_rng(15)
    # tuning confidences distorted, held-out ones already calibrated: the map fitted on
    # the tuning families would move the held-out ones away from the truth
    runs = [_write(tmp_path, "a.json", _records(rng, 1500, heldout=False,
                                                truth=CalibrationMap(a=0.4, b=-0.5))),
            _write(tmp_path, "b.json", _records(rng, 1500, heldout=True, truth=CalibrationMap(),
                                                start=10_000))]
    dest = tmp_path / "calibration.json"
    assert bench.fit_calibration(runs, tmp_path / "fit.json", tmp_path, map_path=dest) == 0
    rep = json.loads((tmp_path / "fit.json").read_text())
    assert not rep["map"]["shipped"] and not dest.exists()
    assert rep["calibration_heldout_mapped"]["ece"] >= rep["calibration_heldout"]["ece"]


def test_replaying_a_map_renormalizes_and_caps_as_the_ranking_does(bench):
    rec = {"verdict": "external", "causes": [["a", 0.6], ["b", 0.3]]}
    up = CalibrationMap(a=1.0, b=2.0)  # pushes both up: their sum passes 1
    out = bench._mapped([rec], up)[0]["causes"]
    p = up(np.array([0.6, 0.3]))
    p = p / p.sum()
    assert [c[0] for c in out] == ["a", "b"]
    assert out[0][1] == pytest.approx(min(p[0], 0.49), abs=1e-4)  # not a change: below 0.5
    assert out[1][1] == pytest.approx(min(p[1], 0.49), abs=1e-4)
