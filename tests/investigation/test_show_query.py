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
                         verify=True, db=tmp_path_factory.mktemp("sq") / "s.duckdb")
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
    shown = [c for c in inv.causes if "exposed" in c.get("sql", {})]
    assert shown and shown[0]["change_id"] == inv.causes[0]["change_id"]
    assert all(("exposed" in c.get("sql", {})) == bool(c["effect"] and c["scope"])
               for c in inv.causes)
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


def _series(con, sql: str) -> pd.DataFrame:
    f = con.execute(sql).df()
    f["ts"] = pd.to_datetime(f["ts"], utc=True)
    return f


def test_verification_carries_the_sql_of_its_unit_table(demo):
    inv, con = demo
    verified = [c for c in inv.causes if c.get("verification")]
    assert verified and all("verification" in c["sql"] for c in verified)
    for c in verified:
        v = inv.verification.by_id(c["change_id"])
        assert c["sql"]["verification"] == v.sql
        raw = con.execute(c["sql"]["verification"]).df()
        assert len(raw) >= v.n_rows > 0
        # a global change has no unexposed rows: why its verification is untestable
        assert set(raw["exposed"]) == ({0, 1} if c["scope"] else {1})


def test_sibling_comparison_carries_sql_giving_its_estimate(tmp_path):
    """A generated nested decoy (seeded): the change inside the diverging slice is
    compared with its siblings; the two emitted series give the DDD's estimate."""
    import json

    import workbench as wb
    from workbench.events import did_effect
    from workbench.synth import generate_incident

    path = generate_incident("nested_decoy", 1, tmp_path / "pp")
    metric = json.loads((path / "truth.json").read_text())["metric"]
    inv = wb.investigate(path, metric=metric, artifact_dir=None, verify=False)
    nested = [c for c in inv.causes if c.get("siblings")]
    assert nested
    con = duckdb.connect(inv.db, read_only=True)
    try:
        for c in nested:
            ex, sib = (_series(con, c["sql"][k]) for k in ("exposed_in_slice", "siblings"))
            eff = did_effect(ex, sib, pd.Timestamp(c["ts"]).floor("1h"), "sum")
            assert eff.estimate == pytest.approx(c["siblings"]["estimate"], abs=1e-6)
    finally:
        con.close()


def test_verification_answer_carries_the_sql_of_its_data(demo):
    """``verification`` in the JSON answer: each verified cause, the counterfactual and the
    mechanism attribution carry the statement of the rows they were computed from."""
    inv, con = demo
    ver = inv.to_dict()["verification"]
    tested = [v for v in ver["causes"] if v["n_rows"]]
    assert tested
    for v in tested:
        assert v["sql"] == inv.verification.by_id(v["change_id"]).sql
        assert len(con.execute(v["sql"]).df()) >= v["n_rows"]
    cf = ver["counterfactual"]
    # the scope's own rows and the donors', one statement each
    target, donors = (con.execute(q).df() for q in cf["sql"].split(";\n"))
    series = pd.to_datetime([r["ts"] for r in cf["series"]], utc=True)
    assert set(series) <= set(pd.to_datetime(target["ts"], utc=True))
    assert len(donors)
    att = ver["attribution"]
    rows = con.execute(att["sql"]).df()
    assert len(rows) >= att["n_old"] + att["n_new"] > 0
