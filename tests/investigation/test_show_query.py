"""Show me the query (issue 17 item 6): each finding's ``sql`` reproduces its numbers.

The demo is investigated into a temporary store; every slice, cause effect and
data-quality finding that carries ``sql`` is run against the stored DuckDB file
(a fresh read-only connection, as a reader would) and gives the same numbers.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ..conftest import make_events, write_passport

DEMO_METRIC = "conversion_rate"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import workbench as wb

    inv = wb.investigate(wb.sample_passport("demo"), metric=DEMO_METRIC, artifact_dir=None,
                         verify=False, db=tmp_path_factory.mktemp("sq") / "s.duckdb")
    con = duckdb.connect(inv.db, read_only=True)
    yield inv, con
    con.close()


def test_slices_carry_sql_giving_their_numbers(demo):
    inv, con = demo
    shown = [s for s in inv.slices if "sql" in s]
    assert shown and shown[0] is inv.slices[0]
    for s in shown:
        r = con.execute(s["sql"]).df().iloc[0]
        assert r["obs_num"] / r["obs_den"] == pytest.approx(s["observed"], rel=1e-9)
        assert r["base_num"] / r["base_den"] == pytest.approx(s["baseline"], rel=1e-9)


def test_effects_carry_sql_giving_their_estimates(demo):
    from workbench.events import did_effect

    inv, con = demo
    shown = [c for c in inv.causes if "sql" in c]
    assert shown and shown[0]["change_id"] == inv.causes[0]["change_id"]
    grain = pd.Timedelta("1h")
    for c in shown:
        ex, un = (con.execute(c["sql"][k]).df() for k in ("exposed", "unexposed"))
        for f in (ex, un):
            f["ts"] = pd.to_datetime(f["ts"], utc=True)
        eff = did_effect(ex, un, pd.Timestamp(c["ts"]).floor(grain), "ratio")
        assert eff.estimate == pytest.approx(c["effect"]["estimate"], abs=1e-6)
        assert eff.t_stat == pytest.approx(c["effect"]["t_stat"], abs=1e-4)


def test_srm_finding_carries_sql_giving_its_counts(demo):
    inv, con = demo
    srm = [d for d in inv.data_quality if d["check"] == "srm"]
    assert srm and all("sql" in d for d in srm)
    for d in srm:
        got = dict(con.execute(d["sql"]).fetchall())
        assert got == {k: int(v) for k, v in d["experiment"]["counts"].items()}


def test_audit_findings_carry_the_sql_of_their_check(tmp_path, rng):
    from workbench.passport import load_passport
    from workbench.quality import audit_quality
    from workbench.store import Store

    ev = make_events(rng, hours=24 * 8)
    hours = ev["ts"].between(ev["ts"].min() + pd.Timedelta("100h"),
                             ev["ts"].min() + pd.Timedelta("103h"))
    ev = pd.concat([ev, ev[hours & (ev["country"] == "FR")]], ignore_index=True)
    gone = ev["ts"].between(ev["ts"].min() + pd.Timedelta("140h"),
                            ev["ts"].min() + pd.Timedelta("150h")) & (ev["country"] == "BR")
    path = write_passport(tmp_path / "pp", ev[~gone].reset_index(drop=True))
    with Store(tmp_path / "s.duckdb") as st:
        st.ingest(load_passport(path))
        rep = audit_quality(st.con, st.passport("tiny-shop"))
        found = {f.check: f.to_dict() for f in rep.findings}
        assert {"duplicates", "completeness"} <= set(found)
        dup = st.con.execute(found["duplicates"]["sql"]).df()
        assert len(dup) and np.isfinite(dup.select_dtypes("number").to_numpy(float)).all()
        gaps = st.con.execute(found["completeness"]["sql"]).df()
        assert len(gaps)


def test_the_sql_of_a_series_is_the_store_s_own(demo):
    from workbench.investigation.showsql import series_sql
    from workbench.store import Store, metric_series

    inv, _ = demo
    with Store(inv.db, read_only=True) as st:
        sp = st.passport(inv.passport)
        spec = sp.manifest.metric(DEMO_METRIC)
        kw = dict(filter={"platform": "ios"}, negate=True, start="2026-11-10", end="2026-11-12")
        assert series_sql(sp, spec, **kw) == metric_series(st.con, sp, spec, **kw).sql
