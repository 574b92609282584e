"""Inputs that used to pass ``validate`` and then break ``investigate`` (or the machine).

Each is now one located line, exit 2, from ``validate`` already: whatever validates,
investigates or fails with a located message.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.errors import PassportError

from ..conftest import make_events, write_passport
from .conftest import WB, one_located_line, run


def _rows(path):
    return (path / "events.csv").read_text().splitlines()


def _write_rows(path, lines):
    (path / "events.csv").write_text("\n".join(lines) + "\n")


def _set_cell(good, row: int, col: int, value: str) -> None:
    """Set one CSV cell: data ``row`` (1-based; line ``row + 1``), column index ``col``."""
    lines = _rows(good)
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    _write_rows(good, lines)


def _far_future(good):
    lines = _rows(good)
    lines[17] = "9999-12-31T23:00:00Z" + lines[17][20:]
    _write_rows(good, lines)


def test_a_far_future_time_stamp_is_a_located_validate_error(good):
    _far_future(good)
    one_located_line(run("validate", good), "events.csv (line 18)", "row 17", "column 'ts'",
                     "'9999-12-31T23:00:00Z' is outside the plausible range",
                     "WORKBENCH_TIME_MAX")


def test_investigate_on_a_far_future_stamp_stays_small(good, tmp_path):
    """Peak RSS of the ``investigate`` process, measured by a parent that waits for it alone."""
    _far_future(good)
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "sys.stderr.write(r.stderr)\n"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", probe, *WB, "investigate", str(good),
                        "--metric", "conversion_rate", "--json", "-q", "--out",
                        str(tmp_path / "lib")], capture_output=True, text=True, cwd=tmp_path,
                       timeout=600)
    code, rss_kib = map(int, r.stdout.split())
    print(f"investigate on a far-future stamp: exit {code}, peak RSS {rss_kib / 1024:.0f} MiB")
    assert code == 2 and "outside the plausible range" in r.stderr
    assert rss_kib < 1024 * 1024


def test_the_default_range_ends_with_tomorrow(monkeypatch):
    from workbench.passport.load import time_bounds

    monkeypatch.delenv("WORKBENCH_TIME_MAX", raising=False)
    monkeypatch.delenv("WORKBENCH_TIME_MIN", raising=False)
    lo, hi = time_bounds()
    now = pd.Timestamp.now(tz="UTC")
    assert lo == pd.Timestamp("1970-01-01", tz="UTC")
    assert now + pd.Timedelta("1D") <= hi <= now + pd.Timedelta("2D")
    monkeypatch.setenv("WORKBENCH_TIME_MAX", "soon")
    with pytest.raises(PassportError, match="WORKBENCH_TIME_MAX='soon': expected a timestamp"):
        time_bounds()


def test_the_time_range_is_configurable(good):
    lines = _rows(good)
    lines[3] = "1960-01-01T00:00:00Z" + lines[3][20:]
    _write_rows(good, lines)
    one_located_line(run("validate", good), "row 3", "1960-01-01")
    env = dict(__import__("os").environ, WORKBENCH_TIME_MIN="1950-01-01")
    r = run("validate", good, env=env)
    assert r.returncode == 0, r.stderr


def test_deeply_nested_json_in_the_change_log(good):
    deep = "[" * 100_000 + "]" * 100_000
    with open(good / "changes.jsonl", "a") as f:
        f.write('{"id": "x", "ts": "2026-11-02T00:00:00Z", "kind": "flag", "target": "t", '
                f'"description": "d", "scope": {deep}}}\n')
    one_located_line(run("validate", good), "changes.jsonl, line 3", "nests JSON values "
                     "too deeply")


def test_an_out_of_range_parquet_time_stamp(tmp_path, rng):
    ev = make_events(rng, hours=24)
    p = write_passport(tmp_path / "pq", ev, fmt="parquet")
    t = pa.table(pq.read_table(p / "events.parquet"))
    ts = t.column("ts").cast(pa.timestamp("us", tz="UTC")).to_pylist()
    import datetime as dt
    ts[5] = dt.datetime(3000, 1, 1, tzinfo=dt.timezone.utc)
    t = t.set_column(t.schema.get_field_index("ts"), "ts",
                     pa.array(ts, type=pa.timestamp("us", tz="UTC")))
    pq.write_table(t, p / "events.parquet")
    one_located_line(run("validate", p), "events.parquet", "row 6", "column 'ts'",
                     "3000-01-01", "outside the plausible range")
    one_located_line(run("investigate", p, "--metric", "sessions", "-q", "--out", tmp_path / "lib"),
                     "events.parquet", "row 6")


def test_a_utf8_bom_before_the_header(good):
    data = (good / "events.csv").read_bytes()
    (good / "events.csv").write_bytes(b"\xef\xbb\xbf" + data)
    r = run("validate", good)
    assert r.returncode == 0, r.stderr


def test_negative_sessions(good):
    _set_cell(good, 9, 4, "-3")
    one_located_line(run("validate", good), "events.csv (line 10)", "row 9",
                     "column 'sessions'", "got '-3'", "expected a number >= 0",
                     "denominator of a ratio")


def test_a_negative_bucket_sum(good):
    df = pd.read_csv(good / "events.csv")
    df.loc[df["ts"] == df["ts"].iloc[12], "conversions"] = -1
    df.to_csv(good / "events.csv", index=False)
    one_located_line(run("validate", good), "events.csv", "column 'conversions'",
                     "sums to -12 over the 1h bucket from 2026-11-01T01:00:00Z",
                     "expected a sum >= 0")


def test_an_all_empty_measure(good):
    df = pd.read_csv(good / "events.csv")
    df["conversions"] = ""
    df.to_csv(good / "events.csv", index=False)
    one_located_line(run("validate", good), "events.csv", "column 'conversions'",
                     "holds no values in any row")


def test_an_infinite_measure(good):
    _set_cell(good, 4, 5, "inf")
    one_located_line(run("validate", good), "row 4", "column 'conversions'", "got 'inf'",
                     "expected a finite number")


def test_infinity_in_a_message_is_shown_as_written(good):
    """JSON's ``Infinity`` as a rollout used to print ``np.float64(inf)``."""
    with open(good / "changes.jsonl", "a") as f:
        f.write('{"id": "chg-9", "ts": "2026-11-02T00:00:00Z", "kind": "flag", "target": '
                '"t", "description": "d", "scope": {}, "rollout": Infinity}\n')
    line = one_located_line(run("validate", good), "changes.jsonl (line 3)",
                            "column 'rollout'", "got inf;")
    assert "np." not in line


def _parquet(tmp_path, rng, **columns):
    ev = make_events(rng, hours=24)
    p = write_passport(tmp_path / "pq", ev, fmt="parquet")
    t = pq.read_table(p / "events.parquet")
    for name, arr in columns.items():
        t = t.set_column(t.schema.get_field_index(name), name, arr(len(t)))
    pq.write_table(t, p / "events.parquet")
    return p


def test_a_list_typed_dimension_in_parquet(tmp_path, rng):
    p = _parquet(tmp_path, rng, platform=lambda n: pa.array([["ios", "web"]] * n))
    one_located_line(run("validate", p), "events.parquet", "column 'platform'",
                     "not a list or a record")


def test_a_boolean_measure_in_parquet(tmp_path, rng):
    p = _parquet(tmp_path, rng, conversions=lambda n: pa.array(
        np.random.default_rng(3).random(n) < 0.5))
    one_located_line(run("validate", p), "events.parquet", "column 'conversions'",
                     "has type BOOLEAN", "expected numbers")


@pytest.mark.parametrize("case", ["negative", "empty_measure", "far_future"])
def test_what_validate_refuses_investigate_refuses_with_the_same_line(good, tmp_path, case):
    if case == "negative":
        _set_cell(good, 2, 4, "-1")
    elif case == "empty_measure":
        df = pd.read_csv(good / "events.csv")
        df["sessions"] = ""
        df.to_csv(good / "events.csv", index=False)
    else:
        _far_future(good)
    v = one_located_line(run("validate", good))
    i = one_located_line(run("investigate", good, "--metric", "conversion_rate", "-q",
                             "--out", tmp_path / "lib", "--json"))
    assert v == i
    assert json.dumps(v)  # plain text


def test_a_store_ingested_before_the_range_check_gives_a_located_error(tmp_path, rng,
                                                                        monkeypatch):
    """Issue 19 saw ``DateParseError`` (exit 70) on a stamp past year 9999 in a store; now a
    StoreError naming the passport."""
    import workbench.passport.load as load
    from workbench.errors import StoreError
    from workbench.store import Store, time_range

    p = _parquet(tmp_path, rng, ts=lambda n: pa.array(
        [1_794_000_000_000_000] * (n - 1) + [10**18], type=pa.timestamp("us", tz="UTC")))
    monkeypatch.setattr(load, "_check_time_bounds", lambda *a: None)  # as before the check
    pp = load.load_passport(p)
    with Store(tmp_path / "old.duckdb") as st:
        st.ingest(pp)
        with pytest.raises(StoreError, match="tiny-shop: the store holds time stamps from .* "
                                             "ingest the passport again"):
            time_range(st.con, st.passport())
