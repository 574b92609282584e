"""Batch scale benchmark (issue 18): the same investigation on DuckDB and on Spark local.

Run with the project's venv::

    .venv/bin/python benchmarks/scale.py --quick                # 1M rows, both engines
    .venv/bin/python benchmarks/scale.py --sizes 10000000       # 10M rows, both engines
    .venv/bin/python benchmarks/scale.py --sizes 100000000 --engines duckdb

The passport is issue 18's unit-level one (``benchmarks/localization.py``,
:func:`make_unit10m_passport`: one row per session, 8 dimensions with up to
5,000 values, a flag scoped to platform=ios AND app_version=5.3 that halves
conversion). It is generated in chunks of at most 10M rows, each an event file
of the passport's ``events/`` folder (one chunk in memory at a time), under
the system temp folder (:func:`make_chunked_passport`). Each chunk is one ingest batch, so the store's
facts are appended batch by batch (DuckDB with its memory limit and spill
folder set: ``WORKBENCH_DUCKDB_MEMORY_LIMIT``, ``WORKBENCH_DUCKDB_TEMP``).

Per size, measured in the same run:

* ``grouping_sets_secs``: one DuckDB ``GROUP BY GROUPING SETS ((d1), ..., (d8))``
  over the Parquet files (the reference of issue 18);
* per engine, ``from_files``: ``workbench investigate PASSPORT --metric
  conversion_rate --json`` as a fresh command (interpreter start, ingest and
  DoWhy verification included) on a new store: wall seconds, the answer's
  timings, peak resident set of the process tree (``VmHWM``, the JVM included
  for Spark), verdict, top slice, top cause;
* ``stored`` (DuckDB): the same command again on the stored passport; the
  investigation's own work is ``timings.total - timings.verify - ingest``.

Results are merge-written under the ``batch`` key of ``benchmarks/results/scale.json``
(the ``stream`` key belongs to the streaming benchmark). Numbers come from a shared,
loaded 2-core machine: ``load_avg_1m`` is recorded with every size.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from localization import UNIT_DIMS, make_unit10m_passport  # noqa: E402

RESULTS = HERE / "results" / "scale.json"
CHUNK = 10_000_000
TRUTH = {"platform": "ios", "app_version": "5.3"}


def make_chunked_passport(path: Path, n_rows: int, seed: int = 18,
                          reuse: Path | None = None) -> dict:
    """Issue 18's passport, ``n_rows`` rows in event files of at most :data:`CHUNK` rows.

    Chunk 0 comes from :func:`make_unit10m_passport` (with one city -> country map
    for every chunk, so the hierarchy holds across files). Each further chunk keeps
    the sessions' attributes of chunk 0 but draws, from its own seed, a new time
    within the same hour and a new conversion from the same model (5%, halved for
    ios on 5.3 from the flag's switch-on): statistically a new day of the same
    population, at a fraction of the generator's cost (it is linear in rows and
    reads one chunk at a time). ``reuse``: a passport of ``CHUNK`` rows or more
    made by this function with the same seed, whose first chunk is copied.
    """
    country_of_city = np.random.default_rng(seed).integers(0, 50, 5000).astype(np.int32)
    (path / "events").mkdir(parents=True, exist_ok=True)
    first = path / "events" / "part-000.parquet"
    rows0 = min(CHUNK, n_rows)
    if reuse is not None:  # chunk 0 of a smaller passport of the same seed: the same rows
        shutil.copy(reuse / "events" / "part-000.parquet", first)
        for f in ("passport.yaml", "changes.jsonl"):
            shutil.copy(reuse / f, path / f)
        t = pq.read_table(first)
    else:
        part = path / "_chunk0"
        make_unit10m_passport(part, rows0, seed)
        t = pq.read_table(part / "events.parquet")
        city = t["city"].combine_chunks()
        country = pa.DictionaryArray.from_arrays(
            pa.array(country_of_city[city.indices.to_numpy()]),
            pa.array([f"country_{i}" for i in range(50)]))
        t = t.set_column(t.schema.get_field_index("country"), "country", country)
        pq.write_table(t, first, row_group_size=1 << 20)
        for f in ("passport.yaml", "changes.jsonl"):
            shutil.copy(part / f, path / f)
        shutil.rmtree(part)
        del city, country
    done, k = rows0, 1
    if done < n_rows:
        micros = t["ts"].cast(pa.int64()).to_numpy()
        hour = micros - micros % 3_600_000_000
        switch_on = int(np.datetime64("2026-11-01T00:00:00", "us").astype(np.int64)) \
            + (14 * 24 - 36) * 3_600_000_000
        hit = ((t["platform"].combine_chunks().indices.to_numpy() == 0)
               & (t["app_version"].combine_chunks().indices.to_numpy() == 0))
        p = np.where(hit & (hour >= switch_on), 0.025, 0.05)
        del micros
    while done < n_rows:
        rows = min(CHUNK, n_rows - done)
        rng = np.random.default_rng(seed + k)
        new_ts = hour[:rows] + rng.integers(0, 3_600_000_000, rows)
        conv = (rng.random(rows) < p[:rows]).astype(np.int64)
        tk = t.slice(0, rows)
        tk = tk.set_column(tk.schema.get_field_index("ts"), "ts",
                           pa.array(new_ts, pa.int64()).cast(pa.timestamp("us", "UTC")))
        tk = tk.set_column(tk.schema.get_field_index("conversions"), "conversions",
                           pa.array(conv))
        pq.write_table(tk, path / "events" / f"part-{k:03d}.parquet", row_group_size=1 << 20)
        del tk, new_ts, conv
        done += rows
        k += 1
    return dict(TRUTH)


def grouping_sets_secs(path: Path, repeat: int = 3) -> float:
    """One GROUPING SETS scan over the Parquet files (all single-dimension group-bys):
    the median of ``repeat`` runs, the first warming the file cache as the command's
    own load does (on a shared machine one run swung from 0.5 s to 1.6 s)."""
    import duckdb

    from workbench.store.sql import bound_connection, lit, q

    con = bound_connection(duckdb.connect())
    sets = ", ".join(f"({q(d)})" for d in UNIT_DIMS)
    sql = (f"SELECT {', '.join(q(d) for d in UNIT_DIMS)}, sum(sessions), sum(conversions), "
           f"count(*) FROM read_parquet({lit(str(path / 'events' / '*.parquet'))}) "
           f"GROUP BY GROUPING SETS ({sets})")
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        runs.append(time.perf_counter() - t)
    con.close()
    return float(np.median(runs))


def _tree_hwm_gb(pid: int, peak: dict) -> None:
    """Poll the process tree of ``pid``; keep the largest sum of resident sets seen."""
    import psutil

    try:
        root = psutil.Process(pid)
        while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
            total = 0
            for p in [root] + root.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak["gb"] = max(peak.get("gb", 0.0), total / 1024 ** 3)
            time.sleep(0.2)
    except psutil.Error:
        return


def run_command(path: Path, db: Path, engine: str) -> dict:
    """``workbench investigate`` as a fresh command; seconds, peak RSS of its tree, answer."""
    cmd = [str(Path(sys.executable).with_name("workbench")), "investigate", str(path),
           "--metric", "conversion_rate", "--json", "--no-artifact", "--db", str(db),
           "--engine", engine]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak: dict = {}
    watcher = threading.Thread(target=_tree_hwm_gb, args=(proc.pid, peak), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    secs = time.perf_counter() - t
    watcher.join(timeout=5)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    a = json.loads(out)
    timings = {k: round(float(v), 3) for k, v in a.get("timings", {}).items()}
    own = timings.get("total", 0.0) - timings.get("verify", 0.0) - timings.get("ingest", 0.0)
    top = a["slices"][0]["filter"] if a.get("slices") else None
    return {"secs": round(secs, 2), "peak_gb": round(peak.get("gb", 0.0), 3),
            "timings": timings, "own_work_secs": round(own, 3), "verdict": a["verdict"],
            "top_slice": top, "top_cause": a["causes"][0]["change_id"] if a.get("causes") else None,
            "right_answer": top == TRUTH and a["verdict"] == "change"
            and bool(a.get("causes")) and a["causes"][0]["change_id"] == "flag-checkout-v2"}


def run_size(n_rows: int, engines: list[str], root: Path, stored: bool = True) -> dict:
    path = root / f"unit_{n_rows}"
    t = time.perf_counter()
    if not (path / "passport.yaml").is_file():
        smaller = root / f"unit_{CHUNK}"
        make_chunked_passport(path, n_rows, reuse=smaller if n_rows > CHUNK and
                              (smaller / "passport.yaml").is_file() else None)
    out = {"rows": n_rows, "files": len(list((path / "events").glob("*.parquet"))),
           "secs_generate": round(time.perf_counter() - t, 1),
           "grouping_sets_secs": round(grouping_sets_secs(path), 3), "engines": {}}
    for engine in engines:
        db = root / f"unit_{n_rows}_{engine}.duckdb"
        db.unlink(missing_ok=True)
        res = {"from_files": run_command(path, db, engine)}
        if engine == "duckdb" and stored:
            res["stored"] = run_command(path, db, engine)
        db.unlink(missing_ok=True)
        out["engines"][engine] = res
        print(json.dumps({engine: res}), flush=True)
    gs = out["grouping_sets_secs"]
    if "duckdb" in out["engines"] and gs > 0:
        d = out["engines"]["duckdb"]
        out["own_work_over_gs"] = round(d.get("stored", d["from_files"])["own_work_secs"] / gs, 1)
        out["command_from_files_over_gs"] = round(d["from_files"]["secs"] / gs, 1)
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    out["commit"] = _commit()
    return out


def _commit() -> str:
    """The code measured: the checkout's commit, ``+dirty`` with uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--",
                                "../workbench"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def merge_write(batch: dict, path: Path = RESULTS) -> None:
    """Update the ``batch`` key of ``scale.json``, keeping every other key (``stream``)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    old = data.get("batch", {})
    old.update(batch)
    data["batch"] = old
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M rows, both engines")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 100_000_000])
    ap.add_argument("--engines", nargs="+", default=["duckdb", "spark"],
                    choices=["duckdb", "spark"])
    ap.add_argument("--from-files-only", action="store_true",
                    help="skip the second DuckDB run on the stored passport")
    ap.add_argument("--dir", help="keep generated passports here (default: a temp folder)")
    a = ap.parse_args(argv)
    sizes = [1_000_000] if a.quick else a.sizes
    tmp = None
    if a.dir:
        root = Path(a.dir)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="wb-scale-")
        root = Path(tmp.name)
    results = {}
    try:
        for n in sizes:
            key = "quick" if a.quick else f"rows_{n}"
            results[key] = run_size(n, a.engines, root, stored=not a.from_files_only)
            merge_write({key: results[key], "measured": (
                "benchmarks/scale.py on a shared 2-core machine (other engineers' jobs "
                "running: see load_avg_1m); seconds are wall time of a fresh "
                "`workbench investigate --json --no-artifact` command, peak_gb the largest "
                "summed RSS of its process tree sampled every 0.2 s (the JVM included for "
                "Spark)")})
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
