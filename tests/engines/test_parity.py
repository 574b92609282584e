"""The same investigation on DuckDB and on Spark (issue 18): same store, same answer."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import workbench as wb
from workbench.store.sql import q
from workbench.store import Store, schema_name

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"


def _answer(passport, db, engine):
    with wb.set_options(engine=engine):
        return wb.investigate(passport, metric="conversion_rate", db=db, artifact_dir=None,
                              verify=False).to_dict()


@pytest.fixture(scope="module")
def answers(spark_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    duck = _answer(DEMO, tmp / "duck.duckdb", "duckdb")
    jobs_before = spark_session.sparkContext.statusTracker().getJobIdsForGroup()
    spark = _answer(DEMO, tmp / "spark.duckdb", "spark")
    jobs = spark_session.sparkContext.statusTracker().getJobIdsForGroup()
    return duck, spark, tmp, len(jobs) - len(jobs_before)


def test_spark_and_duckdb_give_the_same_answer(answers):
    duck, spark, _, jobs = answers
    assert jobs > 0  # the ingest scan ran as Spark jobs
    assert duck["verdict"] == spark["verdict"] == "change"
    assert duck["slices"][0]["filter"] == spark["slices"][0]["filter"]
    assert duck["causes"][0]["change_id"] == spark["causes"][0]["change_id"]
    assert duck["divergence"]["onset"] == spark["divergence"]["onset"]
    assert spark["divergence"]["observed"] == pytest.approx(duck["divergence"]["observed"],
                                                            rel=1e-9)


def _both(tmp, read) -> dict:
    """``read(con, schema)`` on the DuckDB-ingested and on the Spark-ingested store."""
    schema = schema_name("shop-web-2026-11")
    got = {}
    for name in ("duck", "spark"):
        con = duckdb.connect(str(tmp / f"{name}.duckdb"), read_only=True)
        try:
            got[name] = read(con, schema)
        finally:
            con.close()
    return got


def test_both_engines_store_the_same_facts(answers):
    _, _, tmp, _ = answers
    got = _both(tmp, lambda con, schema: {
        "facts": con.execute(
            f"SELECT ts, country, platform, app_version, browser, plan, region, "
            f"sum(sessions), sum(conversions), sum(revenue), count(*) "
            f"FROM {q(schema)}.{q('events')} "
            f"GROUP BY ALL ORDER BY ALL").df(),
        "dict": con.execute(f"SELECT code, value FROM {q(schema)}.{q('dict_app_version')} "
                            f"ORDER BY code").df(),
        "batch": con.execute(f"SELECT rows, min_ts, max_ts FROM "
                             f"{q('wb_meta')}.{q('batches')}").df()})
    pd.testing.assert_frame_equal(got["duck"]["dict"], got["spark"]["dict"])
    pd.testing.assert_frame_equal(got["duck"]["batch"], got["spark"]["batch"])
    pd.testing.assert_frame_equal(got["duck"]["facts"], got["spark"]["facts"],
                                  check_exact=False, rtol=1e-12)
    assert len(got["spark"]["facts"]) > 10_000


def test_both_engines_keep_the_same_quality_counts(answers):
    """The audit's counts taken at ingest (issue 18) do not depend on the engine that scanned."""
    _, _, tmp, _ = answers

    def counts(con, schema):
        tables = sorted(r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name LIKE 'qc_%'", [schema]).fetchall())
        return {t: con.execute(f"SELECT * EXCLUDE (batch) FROM {q(schema)}.{q(t)} "
                               f"ORDER BY ALL").df() for t in tables}

    got = _both(tmp, counts)
    assert sorted(got["duck"]) == sorted(got["spark"]) and len(got["duck"]) == 3
    for t, df in got["duck"].items():
        assert len(df), t
        pd.testing.assert_frame_equal(df, got["spark"][t], check_exact=False, rtol=1e-12)


def test_a_second_batch_is_coded_against_the_stored_dictionary(spark_session, tmp_path):
    """New values get the next codes; known values keep theirs (both engines alike)."""
    pp_dir = tmp_path / "pp"
    shutil.copytree(DEMO, pp_dir)
    ev = pd.read_parquet(pp_dir / "events.parquet")
    late = ev.tail(500).copy()
    late["ts"] = late["ts"] + pd.Timedelta(hours=1)
    late.loc[late.index[:7], "browser"] = "lynx"
    batch = tmp_path / "late.parquet"
    late.to_parquet(batch)
    dicts = {}
    for engine in ("duckdb", "spark"):
        with wb.set_options(engine=engine), Store(tmp_path / f"{engine}.duckdb") as st:
            st.ingest(wb.load_passport(pp_dir))
            rep = st.ingest(wb.load_passport(pp_dir), batch_files=[batch])
            assert [b.status for b in rep.batches] == ["duplicate", "loaded"]
            schema = st.passport().schema
            dicts[engine] = st.con.execute(
                f"SELECT code, value FROM {q(schema)}.{q('dict_browser')} ORDER BY code").df()
            n = st.con.execute(f"SELECT count(*) FROM {q(schema)}.{q('events')} e JOIN "
                               f"{q(schema)}.{q('dict_browser')} d ON d.code = e.browser "
                               f"WHERE d.value = ?", ["lynx"]).fetchone()[0]
            assert n == 7
    pd.testing.assert_frame_equal(dicts["duckdb"], dicts["spark"])
    assert dicts["spark"]["value"].iloc[-1] == "lynx"


def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_the_command_line_runs_on_spark(spark_session, tmp_path):
    """`workbench investigate DEMO --engine spark --json` (its own JVM, local[2])."""
    pp = tmp_path / "demo"
    shutil.copytree(DEMO, pp)
    r = _cli("investigate", str(pp), "--metric", "conversion_rate", "--engine", "spark",
             "--json", "--no-verify", "--no-artifact", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    answer = json.loads(r.stdout)
    assert answer["verdict"] == "change"
    assert (pp / ".workbench" / "store.duckdb").is_file()
