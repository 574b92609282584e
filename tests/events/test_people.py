"""Hypotheses from people (issue 17 item 4): tested and ranked with the change log.

A generated external incident (an outage outside the change log, seeded) is
investigated with a person's hypothesis: the true slice and window rank first
and no change is blamed; the same label with a wrong window or a wrong slice
does not rank first.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from workbench.errors import UsageError
from workbench.events.people import coerce_hypotheses, parse_hypothesis, with_people

SEED = 11  # an external incident whose outage hits one country's sessions


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    from workbench.synth import generate_incident

    path = generate_incident("external", SEED, tmp_path_factory.mktemp("outage") / "pp")
    truth = json.loads((path / "truth.json").read_text())
    assert truth["verdict"] == "external" and truth["slice"]
    return path, truth


def _investigate(path, truth, hyp):
    import workbench as wb

    return wb.investigate(path, metric=truth["metric"], artifact_dir=None, verify=False,
                          hypotheses=[hyp])


def _other_value(path, dim: str, value: str) -> str:
    import pyarrow.parquet as pq

    vals = sorted(set(pq.read_table(path / "events.parquet", columns=[dim]).column(0)
                      .to_pylist()) - {value})
    return vals[len(vals) // 2]


def test_the_true_outage_ranks_first_and_blames_no_change(outage):
    path, truth = outage
    hyp = {"label": "ISP outage", "slice": truth["slice"], "start": truth["window"][0],
           "end": truth["window"][1], "author": "ana"}
    inv = _investigate(path, truth, hyp)
    top = inv.causes[0]
    assert top["origin"] == "person" and top["target"] == "ISP outage"
    assert top["scope"] == truth["slice"] and top["kind"] == "external"
    assert top["posterior"] >= 0.5 and top["status"] == "supported"
    assert inv.verdict == "external"  # no change of the log is blamed
    assert all(c["origin"] == "change_log" for c in inv.causes[1:])
    assert all(c["confidence"] < 0.5 for c in inv.causes)  # the contract for non-change verdicts
    assert not any(c["status"] == "supported" for c in inv.causes[1:])
    assert top["effect"] is not None and top["effect"]["estimate"] * truth["effect"] > 0
    assert inv.params["hypotheses"][0]["label"] == "ISP outage"
    d = json.loads(inv.to_json())
    assert d["causes"][0]["origin"] == "person"


def test_reopen_tests_the_persons_hypothesis_again(outage, tmp_path):
    import workbench as wb
    from workbench.investigation.run import reopen

    path, truth = outage
    hyp = {"label": "ISP outage", "slice": truth["slice"], "start": truth["window"][0],
           "end": truth["window"][1], "author": "ana"}
    lib = tmp_path / "library"
    inv = wb.investigate(path, metric=truth["metric"], artifact_dir=lib, verify=False,
                         hypotheses=[hyp])
    again = reopen(lib, inv.investigation_id)
    assert again.causes[0]["change_id"] == inv.causes[0]["change_id"]
    assert again.causes[0]["origin"] == "person"
    assert again.params["hypotheses"] == inv.params["hypotheses"]


def test_a_wrong_window_does_not_rank_first(outage):
    path, truth = outage
    start = pd.Timestamp(truth["window"][0]) - pd.Timedelta("18h")
    inv = _investigate(path, truth, {"label": "ISP outage", "slice": truth["slice"],
                                     "start": start, "end": start + pd.Timedelta("6h")})
    mine = [c for c in inv.causes if c["origin"] == "person"]
    assert mine and inv.causes[0]["origin"] != "person"
    assert mine[0]["confidence"] < 0.2


def test_a_wrong_slice_does_not_rank_first(outage):
    path, truth = outage
    (dim, value), = truth["slice"].items()
    other = {dim: _other_value(path, dim, value)}
    inv = _investigate(path, truth, {"label": "ISP outage", "slice": other,
                                     "start": truth["window"][0], "end": truth["window"][1]})
    mine = [c for c in inv.causes if c["origin"] == "person"]
    assert mine and mine[0]["scope"] == other
    assert inv.causes[0]["origin"] != "person" and mine[0]["confidence"] < 0.2


def test_cli_hypothesis_runs_and_bad_syntax_exits_2(outage, tmp_path):
    path, truth = outage
    (dim, value), = truth["slice"].items()
    spec = f"ISP outage;{dim}={value};{truth['window'][0]};{truth['window'][1]}"
    wb = [sys.executable, "-m", "workbench.cli", "investigate", str(path), "--metric",
          truth["metric"], "--no-artifact", "--no-verify", "-q", "--json"]
    r = subprocess.run(wb + ["--hypothesis", spec], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["causes"][0]["origin"] == "person"
    bad = subprocess.run(wb + ["--hypothesis", f"ISP outage;{dim}{value};2026-01-01;x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and "not DIM=VAL" in bad.stderr
    unknown = subprocess.run(wb + ["--hypothesis", f"x;nodim=1;{truth['window'][0]};"
                                   f"{truth['window'][1]}"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown dimension(s) nodim" in unknown.stderr


@pytest.mark.parametrize("text, needle", [
    ("only;three;fields", "expected 4 fields"),
    (";region=EU;2026-11-18T12:00Z;2026-11-18T14:00Z", "label is empty"),
    ("x;region=EU;yesterday;2026-11-18T14:00Z", "START 'yesterday' is not a time"),
    ("x;region=EU;2026-11-18T14:00Z;2026-11-18T12:00Z", "must be after START"),
])
def test_parse_rejects_with_one_clear_message(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_hypothesis(text)


def test_forms_agree_and_rows_join_the_log():
    a = parse_hypothesis("CDN outage;region=APAC,platform=ios;2026-11-18T12:00;"
                         "2026-11-18T14:00Z")
    b, = coerce_hypotheses([{"label": "CDN outage", "slice": {"region": "APAC",
                                                               "platform": "ios"},
                             "start": "2026-11-18T12:00Z", "end": "2026-11-18 14:00+00:00"}])
    assert a.id == b.id and a.id.startswith("hyp-cdn-outage-")
    with pytest.raises(UsageError, match="given twice"):
        coerce_hypotheses([a, b])
    log = pd.DataFrame({"id": ["chg-1"], "ts": [pd.Timestamp("2026-11-18T13:00Z")],
                        "kind": ["flag"], "target": ["f"], "scope": [{}], "rollout": [None]})
    out = with_people(log, [a])
    assert list(out["id"]) == [a.id, "chg-1"]  # sorted by time
    assert list(out["origin"]) == ["person", "change_log"]
    assert out.loc[0, "until"] == pd.Timestamp("2026-11-18T14:00Z")
    assert pd.isna(out.loc[1, "until"])
