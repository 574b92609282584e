"""Bad input: one located line on stderr, non-zero exit, no traceback, store unchanged.

Each case runs the real ``workbench`` command in a subprocess against a store
that already holds a good passport, and checks the store file is byte-identical
afterwards.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import make_events, write_passport

WB = [sys.executable, "-m", "workbench.cli"]


def run(*args, cwd=None):
    return subprocess.run(WB + [str(a) for a in args], capture_output=True, text=True, cwd=cwd)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_with_good(tmp_path, rng):
    good = write_passport(tmp_path / "good", make_events(rng, hours=48))
    db = tmp_path / "store.duckdb"
    r = run("ingest", good, "--db", db)
    assert r.returncode == 0, r.stderr
    return good, db


def _assert_one_clear_line(r, *needles):
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert err[0].startswith("workbench: error: ")
    for n in needles:
        assert n in err[0], err[0]


def _bad_copy(good: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    return bad


def test_missing_column(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    text = (bad / "events.csv").read_text().replace("sessions,", "visits,", 1)
    (bad / "events.csv").write_text(text)
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "events.csv", "no column 'sessions'", "measures",
                           "columns are: ts, region, country, platform, visits")
    assert digest(db) == before


def test_unparsable_timestamp(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    lines = (bad / "events.csv").read_text().splitlines()
    lines[5] = "2026-13-45T99:00:00Z" + lines[5][20:]
    (bad / "events.csv").write_text("\n".join(lines) + "\n")
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "events.csv (line 6)", "row 5", "column 'ts'",
                           "2026-13-45T99:00:00Z", "expected a timestamp")
    assert digest(db) == before


def test_undefined_metric(store_with_good, tmp_path):
    good, db = store_with_good
    before = digest(db)
    r = run("investigate", good, "--metric", "revenue", "--db", db, "--no-artifact")
    _assert_one_clear_line(r, "passport.yaml", "metric 'revenue' is not defined",
                           "conversion_rate, sessions")
    assert digest(db) == before


def test_malformed_scope(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    rows = [json.loads(x) for x in (bad / "changes.jsonl").read_text().splitlines()]
    rows[1]["scope"] = '{"platform": ios'
    (bad / "changes.jsonl").write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "changes.jsonl (line 2)", "column 'scope'", "not valid JSON")
    assert digest(db) == before


def test_scope_naming_unknown_dimension(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    rows = [json.loads(x) for x in (bad / "changes.jsonl").read_text().splitlines()]
    rows[0]["scope"] = {"os": "ios"}
    (bad / "changes.jsonl").write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "'os', which is not a dimension", "country, platform, region")


def test_empty_events_file(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    (bad / "events.csv").write_text("")
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "events.csv", "empty")
    assert digest(db) == before


def test_truncated_csv(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    data = (bad / "events.csv").read_text()
    (bad / "events.csv").write_text(data[: len(data) // 2])  # cut mid-line
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "events.csv, line", "truncated")
    assert digest(db) == before


def test_truncated_parquet(tmp_path, rng):
    good = write_passport(tmp_path / "pq", make_events(rng, hours=24), fmt="parquet")
    db = tmp_path / "s.duckdb"
    assert run("ingest", good, "--db", db).returncode == 0
    data = (good / "events.parquet").read_bytes()
    (good / "events.parquet").write_bytes(data[: len(data) // 2])
    before = digest(db)
    r = run("ingest", good, "--db", db)
    _assert_one_clear_line(r, "events.parquet", "cannot be read as Parquet")
    assert digest(db) == before


def test_manifest_names_missing_file(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    (bad / "passport.yaml").write_text((bad / "passport.yaml").read_text()
                                       + "files:\n  events: data/events_2026.csv\n")
    before = digest(db)
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "passport.yaml", "files.events", "data/events_2026.csv",
                           "does not exist")
    assert digest(db) == before


def test_sources_describe_a_missing_table(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    (bad / "passport.yaml").write_text((bad / "passport.yaml").read_text()
                                       + "  experiments: {origin: exp-service}\n")
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "sources.experiments", "experiments.parquet or experiments.csv")


def test_not_a_number_in_measure(store_with_good, tmp_path):
    good, db = store_with_good
    bad = _bad_copy(good, tmp_path)
    lines = (bad / "events.csv").read_text().splitlines()
    parts = lines[3].split(",")
    parts[4] = "lots"
    lines[3] = ",".join(parts)
    (bad / "events.csv").write_text("\n".join(lines) + "\n")
    r = run("ingest", bad, "--db", db)
    _assert_one_clear_line(r, "row 3", "column 'sessions'", "'lots'", "expected a number")


def test_missing_passport_dir(tmp_path):
    r = run("investigate", tmp_path / "nope", "--metric", "x")
    _assert_one_clear_line(r, "nope", "not a directory")


def test_bad_window(store_with_good):
    good, db = store_with_good
    r = run("investigate", good, "--metric", "sessions", "--window", "yesterday", "--db", db)
    _assert_one_clear_line(r, "--window", "START/END")
