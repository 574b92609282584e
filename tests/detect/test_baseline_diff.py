"""Baselines that say who moved them (issue 17 item 5).

A generated shop (seeded) where flag chg-1 lowers iOS conversion by 40% from
day 8, and a harmless DE config change lands the same day: the baseline fitted
after the flag expects less than the one fitted before, and the diff names
chg-1 with most of the move and chg-2 with little of it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ..conftest import make_events, write_passport

START = pd.Timestamp("2026-10-05", tz="UTC")  # a Monday: both periods hold whole weeks


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from workbench.passport import load_passport
    from workbench.store import Store
    from workbench.store.baselines import fit_baseline

    rng = np.random.default_rng(1705)
    ev = make_events(rng, start=str(START.date()), hours=24 * 21)
    t_flag = START + pd.Timedelta(days=7, hours=10)
    hit = (ev["platform"] == "ios") & (ev["ts"] >= t_flag)
    ev.loc[hit, "conversions"] = rng.binomial(ev.loc[hit, "sessions"], 0.024)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    changes = [
        {"id": "chg-1", "ts": iso(t_flag), "kind": "flag", "target": "new_flow",
         "description": "new checkout on iOS", "scope": {"platform": "ios"}, "rollout": 100,
         "author": "ana"},
        {"id": "chg-2", "ts": iso(t_flag + pd.Timedelta("2h")), "kind": "config",
         "target": "search.rank", "description": "ranking weights", "scope": {"country": "DE"},
         "author": "bo"},
        {"id": "chg-0", "ts": iso(START - pd.Timedelta("1D")), "kind": "deploy",
         "target": "api", "description": "before both periods", "scope": {}, "author": "bo"},
    ]
    path = write_passport(tmp_path_factory.mktemp("bl") / "shop", ev, changes=changes)
    db = path / "store.duckdb"
    with Store(db) as st:
        st.ingest(load_passport(path))
        fit_baseline(st, "tiny-shop", "conversion_rate", period=(START, START + pd.Timedelta("7D")))
        fit_baseline(st, "tiny-shop", "conversion_rate",
                     period=(START + pd.Timedelta("14D"), START + pd.Timedelta("21D")))
    return path, db


def test_the_flag_moved_the_baseline(store):
    from workbench.detect.baseline_diff import baseline_movers

    _, db = store
    mv = baseline_movers(db, metric="conversion_rate", v_from=1, v_to=2)
    first, second = mv.movers[0], mv.movers[1]
    assert [m["change_id"] for m in mv.movers] == ["chg-1", "chg-2"]  # chg-0: before both
    assert mv.total["move"] < 0 and first["contribution"] < 0
    assert 0.8 <= first["share"] <= 1.2 and abs(second["share"]) < 0.2
    assert first["relative_change"] == pytest.approx(-0.4, abs=0.06)
    # DE as a whole fell (its iOS rows did), its rows outside iOS held
    assert second["relative_change"] < -0.05 and abs(second["own_relative_change"]) < 0.06
    assert first["own_relative_change"] == pytest.approx(-0.4, abs=0.06)
    assert "chg-1 (flag new_flow, platform=ios)" in mv.summary()


def test_the_emitted_sql_gives_the_numbers(store):
    import duckdb

    from workbench.detect.baseline_diff import baseline_movers

    _, db = store
    mv = baseline_movers(db, metric="conversion_rate", v_from=1, v_to=2)
    m = mv.movers[0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        (na, da), = con.execute(m["sql"]["a"]).fetchall()
        (nb, dbb), = con.execute(m["sql"]["b"]).fetchall()
    finally:
        con.close()
    assert na / da == pytest.approx(m["a_value"]) and nb / dbb == pytest.approx(m["b_value"])


def test_cli_diff_by_versions_names_who_moved_it(store):
    path, db = store
    wb = [sys.executable, "-m", "workbench.cli", "baselines", "diff", "--db", str(db)]
    r = subprocess.run(wb + ["--metric", "conversion_rate", "--from", "1", "--to", "2",
                             "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["moved_by"]["movers"][0]["change_id"] == "chg-1"
    assert d["slices"]  # the per-slice diff of before stays
    txt = subprocess.run(wb + ["--metric", "conversion_rate", "--from", "1", "--to", "2"],
                         capture_output=True, text=True)
    assert txt.returncode == 0 and "moved by:" in txt.stdout and "chg-1" in txt.stdout
    bad = subprocess.run(wb + ["--metric", "conversion_rate", "--from", "1", "--to", "7"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no version 7" in bad.stderr and "stored versions: 1, 2" \
        in bad.stderr and "Traceback" not in bad.stderr
