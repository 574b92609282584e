"""Loading and validating passports: formats, normalization, provenance."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.errors import PassportError
from workbench.passport import load_passport, parse_manifest

from ..conftest import make_events, write_passport


def test_loads_csv_passport_with_provenance(tiny_passport):
    p = load_passport(tiny_passport)
    assert p.name == "tiny-shop"
    assert p.manifest.metric("conversion_rate").kind == "ratio"
    assert p.manifest.all_dimensions == ("country", "platform", "region")
    ev = [x for x in p.provenance if x.table == "events"][0]
    assert ev.rows == 72 * 4 * 3
    assert ev.origin == "warehouse.tiny"
    assert "group by hour" in ev.transform
    assert len(ev.sha256) == 64
    assert list(p.changes["id"]) == ["chg-1", "chg-2"]
    assert p.changes.loc[0, "scope"] == {"platform": "ios"}
    assert p.changes.loc[1, "scope"] == {}
    assert str(p.changes["ts"].dt.tz) == "UTC"


def test_parquet_and_csv_give_the_same_normalized_events(tmp_path, rng):
    import duckdb

    ev = make_events(rng, hours=5)
    a = load_passport(write_passport(tmp_path / "a", ev, fmt="csv"))
    b = load_passport(write_passport(tmp_path / "b", ev, fmt="parquet"))
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    qa = con.execute(a.events_sql() + " ORDER BY ALL").df()
    qb = con.execute(b.events_sql() + " ORDER BY ALL").df()
    pd.testing.assert_frame_equal(qa, qb)
    assert qa["sessions"].sum() == ev["sessions"].sum()


def test_empty_dimension_value_is_its_own_value(tmp_path, rng):
    import duckdb

    ev = make_events(rng, hours=2)
    ev.loc[0, "platform"] = None
    p = load_passport(write_passport(tmp_path / "p", ev))
    con = duckdb.connect()
    vals = set(con.execute(f"SELECT DISTINCT platform FROM ({p.events_sql()})").df()["platform"])
    assert "(null)" in vals and len(vals) == 4


def test_changes_in_csv_with_json_scope(tmp_path, rng):
    path = write_passport(tmp_path / "p", make_events(rng, hours=3), changes=[])
    (path / "changes.jsonl").unlink()
    pd.DataFrame({"id": ["a"], "ts": ["2026-11-01T01:00:00Z"], "kind": ["config"],
                  "target": ["k"], "description": ["d"],
                  "scope": [json.dumps({"country": ["DE", "FR"]})], "rollout": [None],
                  "author": ["x"]}).to_csv(path / "changes.csv", index=False)
    p = load_passport(path)
    assert p.changes.loc[0, "scope"] == {"country": ["DE", "FR"]}


def test_empty_change_log_is_valid(tmp_path, rng):
    path = write_passport(tmp_path / "p", make_events(rng, hours=3), changes=[])
    assert len(load_passport(path).changes) == 0


def test_manifest_rejects_ratio_of_unknown_measure(tmp_path, rng):
    bad = (tmp_path / "p")
    write_passport(bad, make_events(rng, hours=2))
    text = (bad / "passport.yaml").read_text().replace("[conversions, sessions]",
                                                        "[orders, sessions]")
    (bad / "passport.yaml").write_text(text)
    with pytest.raises(PassportError, match="metrics.conversion_rate.*'orders'.*measures are"):
        parse_manifest(bad)


def test_bad_grain(tmp_path, rng):
    bad = write_passport(tmp_path / "p", make_events(rng, hours=2))
    (bad / "passport.yaml").write_text((bad / "passport.yaml").read_text()
                                       .replace("grain: 1h", "grain: soon"))
    with pytest.raises(PassportError, match="grain"):
        load_passport(bad)


def test_broken_hierarchy_is_located(tmp_path, rng):
    ev = make_events(rng, hours=2)
    ev.loc[0, "region"] = "NA"  # DE under NA once, EU otherwise
    with pytest.raises(PassportError, match="hierarchy region > country is broken"):
        load_passport(write_passport(tmp_path / "p", ev))


def test_experiments_optional_table(tmp_path, rng):
    path = write_passport(tmp_path / "p", make_events(rng, hours=2))
    pd.DataFrame({"ts": ["2026-11-01T00:00:00Z"] * 2, "unit_id": ["u1", "u2"],
                  "experiment": ["e"] * 2, "variant": ["a", "b"]}).to_csv(
        path / "experiments.csv", index=False)
    p = load_passport(path)
    assert len(p.experiments) == 2
    assert [x.table for x in p.provenance].count("experiments") == 1
