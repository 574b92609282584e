"""The JSON answer of `workbench investigate` on the bundled demo: every field of the spec."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "sample_data" / "demo"
VERDICTS = {"change", "external", "data_quality", "mix_shift", "none"}


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(DEMO),
                        "--metric", "conversion_rate", "--json", "--db", str(tmp / "s.duckdb"),
                        "--out", str(tmp / "investigations")],
                       capture_output=True, text=True, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert "[workbench" in r.stderr  # progress on stderr, the answer alone on stdout
    return json.loads(r.stdout)


def test_every_field_of_the_spec(answer):
    truth = json.loads((DEMO / "truth.json").read_text())
    assert answer["metric"] == "conversion_rate"
    d = answer["divergence"]
    for k in ("onset", "window", "baseline", "observed", "relative_change"):
        assert k in d
    assert d["onset"] == truth["onset"]
    assert d["baseline"] > d["observed"] and d["relative_change"] < 0
    assert answer["verdict"] in VERDICTS and answer["verdict"] == "change"
    top = answer["slices"][0]
    assert top["filter"] == truth["slice"]
    assert set(top) >= {"filter", "explained_share", "baseline", "observed"}
    c = answer["causes"][0]
    assert c["change_id"] in truth["culprit_ids"]
    assert 0.5 <= c["confidence"] <= 1.0 and all(0 <= x["confidence"] <= 1
                                                  for x in answer["causes"])
    assert any("difference-in-differences" in e for e in c["evidence"])
    assert isinstance(answer["data_quality"], list)
    assert all({"check", "severity", "detail"} <= set(f) for f in answer["data_quality"])
    assert Path(answer["artifact"]).suffix == ".ipynb" and Path(answer["artifact"]).exists()


def test_extensions_of_the_answer(answer):
    assert answer["causes"][0]["status"] == "supported"
    assert answer["causes"][0]["next_step"].startswith("revert flag new_checkout_flow")
    assert answer["next_step"] == answer["causes"][0]["next_step"]
    assert "GROUP BY" in answer["queries"]["leaves"]
    assert {p["table"] for p in answer["provenance"]} >= {"events", "changes"}
    assert all(len(p["sha256"]) == 64 for p in answer["provenance"])
    assert answer["baseline"]["version"] >= 1
    assert answer["divergence"]["baseline_version"] == answer["baseline"]["id"]
