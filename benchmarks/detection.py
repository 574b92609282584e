"""Detection and data-quality audits: false alarms on quiet passports, and scale.

Two parts:

1. **Quiet passports** (fresh seeds): ``investigate`` on generated passports
   with no incident must answer ``none``; the false-alarm rate is the share that
   do not (any verdict other than ``none``).
2. **Scale**: a generated 10M-row *unit-level* passport (one row per session,
   8 dimensions with up to 5,000 values, 21 days) is validated, ingested into
   DuckDB, audited (gaps, duplicates, integrity, late data) and its metric
   detected; seconds per step and peak memory (RSS of the measuring process,
   which does nothing else) are reported.

Onset accuracy and data-quality verdicts per family come from
``benchmarks/incidents.py`` (same generator, same scoring).

Usage::

    python benchmarks/detection.py [--quiet-n 30] [--rows 10000000] [--seed S]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def quiet_rate(n: int, base: int, jobs: int) -> dict:
    from incidents import run_one
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as ex:
        recs = list(ex.map(run_one, [("quiet", base + k) for k in range(n)]))
    alarms = [r for r in recs if r["verdict"] != "none"]
    return {"n": n, "false_alarms": len(alarms), "false_alarm_rate": len(alarms) / n,
            "none_right": 1 - len(alarms) / n,
            "secs_per_passport": float(np.mean([r["secs"] for r in recs])),
            "alarms": [{"seed": r["seed"], "verdict": r["verdict"], "onset": r["onset"]}
                       for r in alarms]}


def make_unit_passport(path: Path, rows: int, seed: int) -> None:
    """10M sessions x 8 dimensions; conversion halves in (top country, os_1), about 10%
    of the traffic, for the last 48 hours (visible in the total)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    start = np.datetime64("2026-11-01T00:00:00")
    hours = 21 * 24
    # traffic follows a daily cycle: draw hours by weight, then seconds within the hour
    w = 1 + 0.5 * np.sin(2 * np.pi * (np.arange(hours) % 24) / 24)
    h = rng.choice(hours, size=rows, p=w / w.sum())
    ts = start + (h * 3600 + rng.integers(0, 3600, rows)).astype("timedelta64[s]")
    cards = {"city": 5000, "country": 50, "device": 400, "os": 4, "browser": 12,
             "plan": 4, "channel": 20, "app_version": 60}
    cols = {}
    for d, k in cards.items():
        p = rng.zipf(1.3, rows) % k
        cols[d] = pa.DictionaryArray.from_arrays(pa.array(p.astype(np.int32)),
                                                 pa.array([f"{d}_{i}" for i in range(k)]))
    country_of_city = rng.integers(0, 50, 5000)  # hierarchy: city -> country
    city_codes = np.asarray(cols["city"].indices)
    cols["country"] = pa.DictionaryArray.from_arrays(
        pa.array(country_of_city[city_codes].astype(np.int32)),
        pa.array([f"country_{i}" for i in range(50)]))
    rate = np.full(rows, 0.04)
    top = int(country_of_city[1])  # the country of the most frequent city (zipf's mode)
    hit = (np.asarray(cols["country"].indices) == top) & (np.asarray(cols["os"].indices) == 1) & \
        (h >= hours - 48)
    rate[hit] *= 0.5
    table = pa.table({"ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", "UTC")),
                      **cols, "sessions": pa.array(np.ones(rows, dtype=np.int64)),
                      "conversions": pa.array((rng.random(rows) < rate).astype(np.int64))})
    pq.write_table(table, path / "events.parquet", row_group_size=1 << 20)
    (path / "changes.jsonl").write_text(json.dumps({
        "id": "c1", "ts": "2026-11-20T00:00:00Z", "kind": "flag", "target": "x",
        "description": "scale test", "scope": {"country": f"country_{top}", "os": "os_1"}}) + "\n")
    dims = [d for d in cards if d != "country"]
    (path / "passport.yaml").write_text(
        "name: scale-10m\ntime_column: ts\ngrain: 1h\n"
        f"dimensions: [{', '.join(dims)}]\nhierarchies: {{country: city}}\n"
        "measures: {sessions: {}, conversions: {}}\n"
        "metrics:\n  conversion_rate: {ratio: [conversions, sessions], better: higher}\n"
        "  sessions: {sum: sessions}\n")


def measure_scale(path: Path) -> dict:
    """Run in a fresh process: validate, ingest, audit, detect; time each step."""
    import pandas as pd

    from workbench.detect import detect_divergence
    from workbench.passport import load_passport
    from workbench.quality import audit_quality
    from workbench.store import Store, metric_series, time_range

    out = {}
    t = time.perf_counter()
    pp = load_passport(path)
    out["validate_secs"] = time.perf_counter() - t
    t = time.perf_counter()
    with Store(path / "s.duckdb") as st:
        st.ingest(pp)
    out["ingest_secs"] = time.perf_counter() - t
    with Store(path / "s.duckdb", read_only=True) as st:
        sp = st.passport()
        t = time.perf_counter()
        rep = audit_quality(st.con, sp)
        out["audit_secs"] = time.perf_counter() - t
        out["findings"] = [f.check for f in rep.findings]
        t = time.perf_counter()
        spec = sp.manifest.metric("conversion_rate")
        ser = metric_series(st.con, sp, spec).frame
        lo, hi = time_range(st.con, sp)
        idx = pd.date_range(lo.floor("1h"), hi.floor("1h"), freq="1h")
        r = detect_divergence(ser.set_index("ts")[["num", "den", "rows"]].reindex(idx),
                              kind="ratio", better="higher")
        out["detect_secs"] = time.perf_counter() - t
        out["significant"] = bool(r.significant)
        out["onset"] = None if r.onset is None else str(r.onset)
    out["total_secs"] = sum(v for k, v in out.items() if k.endswith("_secs"))
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quiet-n", type=int, default=30)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.measure:
        print(json.dumps(measure_scale(Path(a.measure))))
        return 0
    base = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "little")
    res = {"base_seed": base}
    print(f"quiet passports: {a.quiet_n} (base seed {base})", file=sys.stderr)
    res["quiet"] = quiet_rate(a.quiet_n, base, a.jobs)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "scale"
        t = time.perf_counter()
        make_unit_passport(p, a.rows, base)
        gen = time.perf_counter() - t
        print(f"generated {a.rows:,} unit rows in {gen:.1f}s; measuring", file=sys.stderr)
        r = subprocess.run([sys.executable, __file__, "--measure", str(p)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        res["scale"] = {"rows": a.rows, **json.loads(r.stdout.strip().splitlines()[-1])}
    q, s = res["quiet"], res["scale"]
    print("| part | figure |\n|---|---|")
    print(f"| quiet passports | {q['n']} |")
    print(f"| false-alarm rate | {q['false_alarm_rate']:.1%} ({q['false_alarms']}) |")
    print(f"| `none` right | {q['none_right']:.1%} (issue asks >= 95%) |")
    print(f"| s per quiet passport | {q['secs_per_passport']:.2f} |")
    for k in ("validate_secs", "ingest_secs", "audit_secs", "detect_secs", "total_secs"):
        print(f"| {s['rows']:,} rows: {k.replace('_secs', '')} | {s[k]:.1f} s |")
    print(f"| {s['rows']:,} rows: peak RSS | {s['peak_rss_gb']:.2f} GB |")
    print(f"| drop in (top country, os_1) detected | {s['significant']} (onset {s['onset']}) |")
    out = RESULTS / "detection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
