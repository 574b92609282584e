"""Retraining: versioned fits, the drift report, and the answer's ``divergence.model``."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import workbench as wb
from workbench.passport import load_passport
from workbench.store import Store
from workbench.store.baselines import list_baselines
from workbench.stream.ledger import ingest_batch, init_stream_tables
from workbench.stream.model import latest_model, model_status, retrain
from workbench.stream.sample import write_batch

#: ``divergence.model`` (issue 18), absent on the demo (never retrained): frozen here
MODEL_KEYS = {"id": str, "version": int, "fitted_at": str, "age_hours": float,
              "max_age_hours": float, "stale": bool, "reasons": list, "drift_test": dict}


def _fed(sc, tmp_path, hours):
    """A store with the history and ``hours`` stream batches (the flag at hour 6)."""
    db = tmp_path / "s.duckdb"
    pp = load_passport(sc.passport)
    with Store(db) as st:
        st.ingest(pp)
        init_stream_tables(st, pp.manifest)
        first = retrain(st, "stream-shop", "conversion_rate")
        for k in range(hours):
            ingest_batch(st, pp.manifest, write_batch(sc, k, tmp_path / "d"), f"b{k}",
                         lateness=pd.Timedelta(0))
    return db, first


def test_each_fit_is_a_new_version_with_a_drift_report(scenario, tmp_path):
    db, first = _fed(scenario, tmp_path, 30)
    assert first.previous is None and first.model.version == 1
    assert "first model" in first.summary()
    with Store(db) as st:
        second = retrain(st, "stream-shop", "conversion_rate")
        third = retrain(st, "stream-shop", "conversion_rate")  # no data since: no test
        versions = list_baselines(st.con, metric="conversion_rate")
        stored = st.con.execute("SELECT count(*), count(*) FILTER (WHERE drift) FROM "
                                "wb_meta.model_drift").fetchone()
    assert (second.model.version, second.previous.id) == (2, first.model.id)
    t = second.drift["test"]
    # 24 grains after the flag cut ios conversion by 60%: the residuals moved
    assert t["n_after"] == 30 and t["p_value"] < 1e-6 and second.drift["drift"] is True
    assert t["mean_shift"] < 0
    ch = second.drift["changes"]
    assert ch["level"]["after"] < ch["level"]["before"]
    assert set(ch) == {"level", "amplitude", "noise_sd"}
    assert third.drift["test"]["p_value"] is None and third.drift["drift"] is False
    assert "DRIFT" in second.summary() and "not run" in third.summary()
    assert list(versions["version"]) == [1, 2, 3] and stored == (3, 1)


def test_a_model_is_stale_past_its_age_or_after_drift(scenario, tmp_path):
    db, first = _fed(scenario, tmp_path, 4)  # before the flag: no drift yet
    with Store(db, read_only=True) as st:
        sp = st.passport("stream-shop")
        m = latest_model(st.con, sp, "conversion_rate")
        fresh = model_status(st.con, sp, "conversion_rate", now=m.fitted_at
                             + pd.Timedelta(hours=1))
        old = model_status(st.con, sp, "conversion_rate", max_age_hours=6,
                           now=m.fitted_at + pd.Timedelta(hours=30))
        assert model_status(st.con, sp, "sessions") is None  # never fitted
    assert fresh["stale"] is False and fresh["reasons"] == []
    assert old["stale"] is True and "more than the allowed 6 h" in old["reasons"][0]
    db2, _ = _fed(scenario, tmp_path / "later", 20)  # 14 hours after the flag
    with Store(db2, read_only=True) as st:
        sp = st.passport("stream-shop")
        m = latest_model(st.con, sp, "conversion_rate")
        drifted = model_status(st.con, sp, "conversion_rate", now=m.fitted_at)
    assert drifted["stale"] is True and "drifts from it" in drifted["reasons"][0]


def test_the_answer_says_which_model_and_whether_stale(scenario, tmp_path):
    db, _ = _fed(scenario, tmp_path, 12)
    with wb.set_options(model_max_age_hours=0.0001):
        inv = wb.investigate(scenario.passport, metric="conversion_rate", db=db,
                             artifact_dir=None, verify=False)
    model = json.loads(inv.to_json())["divergence"]["model"]
    assert {k: type(v) for k, v in model.items()} == MODEL_KEYS
    assert model["version"] == 1 and model["stale"] is True
    assert model["fitted_at"].endswith("Z")
    assert inv.divergence.model["id"] == model["id"]
    with pytest.raises(wb.errors.UsageError, match="model_max_age_hours"):
        wb.set_options(model_max_age_hours=-1)


def test_retrain_command(scenario, tmp_path):
    db, _ = _fed(scenario, tmp_path, 8)
    cmd = [sys.executable, "-m", "workbench.cli", "retrain", str(scenario.passport),
           "--db", str(db)]
    out = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert [r["model"]["metric"] for r in reports] == ["conversion_rate", "sessions"]
    assert reports[0]["model"]["version"] == 2 and reports[1]["previous"] is None
    bad = subprocess.run(cmd + ["--metric", "nope"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr
