"""Role stories with the counterfactual sentence, from the one render module (issue 17, M16).

The demo (flag new_checkout_flow on iOS 5.2) investigated once with verification;
each role's story carries the counterfactual total of the JSON answer, and the
CLI prints the product manager's with ``--role pm``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.investigation.render import ROLES, counterfactual_sentence, narrate

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from workbench.investigation import investigate

    return investigate(DEMO, metric="conversion_rate", artifact_dir=None,
                       db=tmp_path_factory.mktemp("roles") / "s.duckdb")


def _figures(total: dict) -> list[str]:
    """The estimate and interval as the sentence rounds them (three significant figures)."""
    from workbench.investigation.render import _rounded

    lo, hi = sorted((abs(total["lo"]), abs(total["hi"])))
    return [_rounded(total["estimate"]), _rounded(lo), _rounded(hi)]


def test_the_answer_carries_the_counterfactual(demo):
    a = demo.to_dict()
    cf = a["verification"]["counterfactual"]
    assert cf["change_id"] == "chg-0431" == a["causes"][0]["change_id"]
    assert cf["scope"] == {"platform": "ios", "app_version": "5.2"}
    s = cf["series"]
    assert len(s) > 48 and all(r["ts"].endswith("Z") for r in s)
    post = [r for r in s if r["ts"] >= cf["onset"]]
    # without the flag, iOS 5.2 would have converted more than it did, in most hours
    assert sum(r["counterfactual"] > r["observed"] for r in post) > 0.9 * len(post)
    assert all(r["lo"] <= r["counterfactual"] <= r["hi"] for r in s)
    t = cf["total"]
    assert t["unit"] == "conversions" and t["lo"] < t["estimate"] < t["hi"] < 0
    assert t["hours"] == 58


@pytest.mark.parametrize("role", ROLES)
def test_every_role_tells_the_counterfactual(demo, role):
    story = narrate(demo, role)
    total = demo.to_dict()["verification"]["counterfactual"]["total"]
    for fig in _figures(total):
        assert fig in story, (fig, story)
    assert "new_checkout_flow" in story and "58 hours" in story and "more conversions" in story


def test_no_sentence_without_a_blamed_change(demo):
    import dataclasses

    assert counterfactual_sentence(dataclasses.replace(demo, verdict="external")) is None
    assert counterfactual_sentence(dataclasses.replace(demo, verification=None)) is None


def test_cli_role_pm_prints_the_story(tmp_path):
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(DEMO),
                        "--metric", "conversion_rate", "--db", str(tmp_path / "s.duckdb"),
                        "--no-artifact", "-q", "--role", "pm"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("### Conversion rate is down")
    assert "**Without the change**: Without flag new_checkout_flow on" in r.stdout
    assert "more conversions (" in r.stdout and "over the 58 hours" in r.stdout
