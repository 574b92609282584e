"""UI latency: a click on a slice until the timeline shows it, in a real browser.

    .venv/bin/python benchmarks/ui_latency.py [--rounds 2] [--skip-large]
                                              [--rows 10080000] [--seed 20261124]

For each passport (the bundled demo, and a generated one of about 10M rows) the
script starts the served workbench (``python -m workbench.ui.app``, what
``workbench serve`` runs) on a free 127.0.0.1 port, opens it in Chromium and, for
every slice of the ranked list, clicks it and waits until the Bokeh plot's title
names the slice and its data source has changed; then clicks "Everything" and
waits for the whole metric again. "Cold" is the first click on a slice in the
page, "warm" a later one. A slice's timeline costs one DuckDB query and a seasonal
baseline fit; the served app computes the timelines of the listed slices in the
background once the list is shown (and caches them), so a cold click finds its
timeline ready unless it comes before that work reaches it. The clicks start as
soon as the first page is up, while the server also precomputes the replay steps
(in a child process at a lower priority). Latency is measured from just before the
click to the moment the predicate holds in the page (so it includes the websocket
round trip and BokehJS rendering), and reported as p50 and p95 for cold and warm
clicks.

The server-side part alone (``InvestigationData.timeline`` for every slice, cold)
is measured too, and the time to build the large passport, ingest it and
investigate it.

Writes ``benchmarks/results/ui_latency.json`` and prints a table.

The large passport: 21 days x 24 hours x 20,000 combinations of country (50, in
5 regions), platform/app version/browser (10), plan (4) and channel (10) =
10,080,000 rows, Poisson sessions with daily seasonality, binomial conversions,
and an incident like the demo's: flag ``new_checkout_flow`` cuts conversion on
iOS 5.2 by 40% from the onset, among ~300 unrelated changes. Seeded, so the same
``--seed`` gives the same rows.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from workbench.ui.harness import free_port, start_process, stop_process  # noqa: E402
DEMO = REPO / "sample_data" / "demo"
OUT = REPO / "benchmarks" / "results" / "ui_latency.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

TITLE_AND_DATA_JS = """([frag, before]) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  let title = false, data = null;
  for (const d of docs) for (const m of (d.all_models || [])) {
    if (m && m.constructor && m.constructor.__name__ === "Title" && m.text &&
        m.text.startsWith(frag)) title = true;
    const s = m && m.data;
    if (data === null && s && s.observed && s.expected && s.lower && s.observed.length)
      data = Array.from(s.observed).slice(-48).join(",");
  }
  return title && data !== null && data !== before;
}"""
DATA_JS = """() => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || [])) {
    const s = m && m.data;
    if (s && s.observed && s.expected && s.lower && s.observed.length)
      return Array.from(s.observed).slice(-48).join(",");
  }
  return null;
}"""


# --------------------------------------------------------------------------- data
def build_large_passport(out: Path, *, seed: int, days: int = 21) -> dict:
    """Write a ~10M-row passport with a known incident; return its facts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    regions = ["EU", "NA", "LATAM", "APAC", "MEA"]
    countries = [f"C{i:02d}" for i in range(50)]
    country_region = [regions[i % 5] for i in range(50)]
    pav = [("ios", "5.0", "app"), ("ios", "5.1", "app"), ("ios", "5.2", "app"),
           ("android", "5.0", "app"), ("android", "5.1", "app"), ("android", "5.2", "app"),
           ("web", "web", "chrome"), ("web", "web", "safari"), ("web", "web", "firefox"),
           ("web", "web", "edge")]
    plans = ["free", "plus", "pro", "team"]
    channels = ["direct", "seo", "sem", "email", "social", "affiliate", "push", "display",
                "referral", "app_store"]
    combos = np.array(np.meshgrid(np.arange(50), np.arange(10), np.arange(4), np.arange(10),
                                  indexing="ij")).reshape(4, -1)  # country, pav, plan, channel
    n_combo = combos.shape[1]
    hours = days * 24
    start = pd.Timestamp("2026-11-01", tz="UTC")
    onset_h = hours - 58  # like the demo: the last ~2.5 days diverge
    onset = start + pd.Timedelta(hours=onset_h)

    # Traffic per combination (fixed), per hour (daily and weekly seasonality).
    w_country = rng.gamma(2.0, 1.0, 50)
    w_pav = np.array([0.3, 0.8, 1.2, 0.4, 1.0, 1.4, 2.5, 1.2, 0.6, 0.3])
    w_plan = np.array([3.0, 1.0, 0.4, 0.2])
    w_channel = rng.gamma(2.0, 1.0, 10)
    base = (w_country[combos[0]] * w_pav[combos[1]] * w_plan[combos[2]] *
            w_channel[combos[3]])
    base = base / base.mean() * 1.6  # mean sessions per row and hour
    hod = np.arange(hours) % 24
    dow = (np.arange(hours) // 24) % 7
    season = (1 + 0.6 * np.sin((hod - 8) / 24 * 2 * np.pi)) * (1 + 0.1 * (dow >= 5))
    p_base = 0.035 * (1 + 0.3 * (combos[1] < 3)) * (1 + 0.5 * (combos[2] > 0))

    n = hours * n_combo
    ts = np.repeat(np.arange(hours, dtype=np.int64), n_combo)
    idx = np.tile(np.arange(n_combo, dtype=np.int32), hours)
    lam = base[idx] * season[ts]
    sessions = rng.poisson(lam).astype(np.int32)
    p = p_base[idx].copy()
    hit = (combos[1][idx] == 2) & (ts >= onset_h)  # iOS 5.2 after the flag
    p[hit] *= 0.6
    conversions = rng.binomial(sessions, np.clip(p, 0, 1)).astype(np.int32)
    revenue = (conversions * rng.gamma(4.0, 12.0, n)).astype(np.float32)
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)

    def dict_col(codes, labels):
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels))

    c_idx, pav_idx = combos[0][idx], combos[1][idx]
    table = pa.table({
        "ts": pa.array((start + pd.to_timedelta(ts, unit="h")).as_unit("us")),
        "region": dict_col(np.array([regions.index(r) for r in country_region])[c_idx],
                           regions),
        "country": dict_col(c_idx, countries),
        "platform": dict_col(np.array([["ios", "android", "web"].index(x[0]) for x in pav])
                             [pav_idx], ["ios", "android", "web"]),
        "app_version": dict_col(np.array([["5.0", "5.1", "5.2", "web"].index(x[1])
                                          for x in pav])[pav_idx], ["5.0", "5.1", "5.2", "web"]),
        "browser": dict_col(np.array([["app", "chrome", "safari", "firefox", "edge"]
                                      .index(x[2]) for x in pav])[pav_idx],
                            ["app", "chrome", "safari", "firefox", "edge"]),
        "plan": dict_col(combos[2][idx], plans),
        "channel": dict_col(combos[3][idx], channels),
        "sessions": pa.array(sessions), "conversions": pa.array(conversions),
        "revenue": pa.array(revenue),
    })
    pq.write_table(table, out / "events.parquet", row_group_size=1 << 20)
    del table

    # Change log: the culprit and ~300 unrelated changes (none of them near the onset
    # in the culprit's scope).
    kinds = ["deploy", "config", "flag", "infra"]
    rows = []
    for i in range(300):
        h = int(rng.integers(0, hours))
        if abs(h - onset_h) <= 1:
            h += 5
        scope = {} if rng.random() < 0.5 else {"region": regions[int(rng.integers(0, 5))]}
        rows.append({"id": f"chg-{i:04d}", "ts": (start + pd.Timedelta(hours=h)).isoformat(),
                     "kind": kinds[i % 4], "target": f"svc-{i % 23}",
                     "description": "unrelated change", "scope": scope, "rollout": None,
                     "author": f"dev{i % 9}"})
    rows.append({"id": "chg-9999", "ts": onset.isoformat(), "kind": "flag",
                 "target": "new_checkout_flow", "description": "Enable new_checkout_flow "
                 "for ios 5.2", "scope": {"platform": "ios", "app_version": "5.2"},
                 "rollout": 100.0, "author": "bench"})
    with open(out / "changes.jsonl", "w") as f:
        for r in sorted(rows, key=lambda r: r["ts"]):
            f.write(json.dumps(r) + "\n")
    (out / "passport.yaml").write_text(f"""\
name: bench-10m
time_column: ts
grain: 1h
dimensions: [country, platform, app_version, browser, plan, channel]
hierarchies:
  region: country
measures:
  sessions: {{}}
  conversions: {{}}
  revenue: {{unit: EUR}}
metrics:
  conversion_rate: {{ratio: [conversions, sessions], better: higher}}
  sessions: {{sum: sessions, better: higher}}
sources:
  events: {{origin: benchmarks/ui_latency.py seed {seed}, transform: ["generated"]}}
  changes: {{origin: benchmarks/ui_latency.py}}
""")
    return {"rows": int(n), "combinations": int(n_combo), "hours": hours, "seed": seed,
            "onset": onset.isoformat(), "culprit": "chg-9999",
            "generate_s": round(t_gen, 1), "write_s": round(time.perf_counter() - t0, 1),
            "parquet_mb": round((out / "events.parquet").stat().st_size / 1e6, 1)}


# --------------------------------------------------------------------------- server
def start_server(passport: Path, db: Path, log: Path, env: dict):
    return start_process([sys.executable, "-m", "workbench.ui.app", str(passport), "--db",
                          str(db), "--port", str(free_port())], env=env,
                         ready=r"serving .* at (http://\S+)", log=log, cwd=REPO)


# --------------------------------------------------------------------------- measure
def click_latencies(url: str, rounds: int, metric: str, load_timeout: float,
                    settle: float = 0.0) -> dict:
    from playwright.sync_api import expect, sync_playwright

    cold, warm, back = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        t0 = time.perf_counter()
        page.goto(url)
        expect(page.locator(".wb-hypotheses").get_by_text("#1 ")).to_be_visible(
            timeout=load_timeout * 1000)
        page.wait_for_function(TITLE_AND_DATA_JS, arg=[f"{metric} · everything", ""],
                               timeout=load_timeout * 1000)
        first_page = time.perf_counter() - t0
        time.sleep(1.0 + settle)
        rows = page.locator(".wb-slices").get_by_role("button")
        labels = [t.strip() for t in rows.all_inner_texts() if "=" in t][:12]
        seen = set()
        for _ in range(rounds):
            for label in labels:
                before = page.evaluate(DATA_JS)
                btn = page.locator(".wb-slices").get_by_role("button", name=label, exact=True)
                t = time.perf_counter()
                btn.click()
                page.wait_for_function(TITLE_AND_DATA_JS,
                                       arg=[f"{metric} · {label}", before or ""],
                                       timeout=60_000)
                dt = time.perf_counter() - t
                (warm if label in seen else cold).append(dt)
                seen.add(label)
                before = page.evaluate(DATA_JS)
                t = time.perf_counter()
                page.get_by_role("button", name="Everything").click()
                page.wait_for_function(TITLE_AND_DATA_JS,
                                       arg=[f"{metric} · everything", before or ""],
                                       timeout=60_000)
                back.append(time.perf_counter() - t)
        browser.close()
    return {"first_page_s": round(first_page, 2), "slices": labels,
            "cold_s": cold, "warm_s": warm, "everything_s": back}


def server_side(db: Path, passport: str, metric: str, labels: list[str]) -> list[float]:
    """Cold ``timeline()`` per slice in this process (query + baseline fit)."""
    from workbench.store import Store
    from workbench.ui.data import InvestigationData, parse_slice

    from workbench.investigation import investigate
    inv = investigate(passport, metric=metric, db=db, artifact_dir=None)
    out = []
    data = InvestigationData(inv)
    for label in labels:
        t = time.perf_counter()
        data.timeline(parse_slice(label))
        out.append(time.perf_counter() - t)
    del Store
    return out


def pct(xs, q) -> float | None:
    return round(float(np.percentile(xs, q)) * 1000, 1) if xs else None


def summarize(name: str, rows: int, clicks: dict, server: list[float], extra: dict) -> dict:
    all_clicks = clicks["cold_s"] + clicks["warm_s"]
    return {"passport": name, "rows": rows, **extra,
            "first_page_s": clicks["first_page_s"], "n_slices": len(clicks["slices"]),
            "click_ms": {"all": {"n": len(all_clicks), "p50": pct(all_clicks, 50),
                                 "p95": pct(all_clicks, 95)},
                         "cold": {"n": len(clicks["cold_s"]), "p50": pct(clicks["cold_s"], 50),
                                  "p95": pct(clicks["cold_s"], 95)},
                         "warm": {"n": len(clicks["warm_s"]), "p50": pct(clicks["warm_s"], 50),
                                  "p95": pct(clicks["warm_s"], 95)},
                         "back_to_everything": {"n": len(clicks["everything_s"]),
                                                "p50": pct(clicks["everything_s"], 50),
                                                "p95": pct(clicks["everything_s"], 95)}},
            "server_timeline_ms": {"n": len(server), "p50": pct(server, 50),
                                   "p95": pct(server, 95)}}


def run_one(name: str, passport: Path, work: Path, rounds: int, extra: dict,
            load_timeout: float, settle: float = 0.0) -> dict:
    db = work / f"{name}.duckdb"
    env = {**os.environ, "WORKBENCH_INVESTIGATIONS": str(work / "library")}
    if not db.exists() and name != "demo":
        # Ingest and investigate once, timed, before the server reads the store.
        from workbench.investigation import investigate
        t = time.perf_counter()
        inv = investigate(str(passport), metric="conversion_rate", db=db, artifact_dir=None)
        extra["investigate_s"] = round(time.perf_counter() - t, 1)
        extra["investigate_timings_s"] = {k: round(v, 2) for k, v in inv.timings.items()}
        extra["top_cause"] = inv.causes[0]["change_id"] if inv.causes else None
        del inv
    proc, url = start_server(passport, db, work / f"{name}-server.log", env)
    try:
        clicks = click_latencies(url, rounds, "conversion_rate", load_timeout, settle)
    finally:
        stop_process(proc)
    server = server_side(db, str(passport), "conversion_rate", clicks["slices"])
    return summarize(name, extra.pop("rows", 0), clicks, server, extra)


def print_table(results: list[dict]) -> None:
    hdr = (f"{'passport':10s} {'rows':>11s} {'clicks':>6s} {'p50 ms':>8s} {'p95 ms':>8s} "
           f"{'cold p50':>9s} {'cold p95':>9s} {'warm p50':>9s} {'warm p95':>9s} "
           f"{'server p50':>10s} {'1st page s':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        c = r["click_ms"]
        print(f"{r['passport']:10s} {r['rows']:>11,d} {c['all']['n']:>6d} {c['all']['p50']:>8} "
              f"{c['all']['p95']:>8} {c['cold']['p50']:>9} {c['cold']['p95']:>9} "
              f"{c['warm']['p50']:>9} {c['warm']['p95']:>9} "
              f"{r['server_timeline_ms']['p50']:>10} {r['first_page_s']:>10}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="clicks per slice (first is cold)")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--skip-large", action="store_true", help="only the demo passport")
    ap.add_argument("--workdir", help="keep the generated passport and stores here")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after the first page before clicking (the server "
                         "precomputes the replay steps in the background meanwhile)")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="wb-ui-bench-") as t:
        work = Path(a.workdir or t)
        work.mkdir(parents=True, exist_ok=True)
        n_demo = int(pd.read_parquet(DEMO / "events.parquet", columns=["sessions"]).shape[0])
        results.append(run_one("demo", DEMO, work, a.rounds, {"rows": n_demo}, 120, a.settle))
        if not a.skip_large:
            big = work / "bench-10m"
            if (big / "events.parquet").exists():
                facts = json.loads((big / "facts.json").read_text())
            else:
                facts = build_large_passport(big, seed=a.seed)
                (big / "facts.json").write_text(json.dumps(facts))
            results.append(run_one("10M", big, work, a.rounds,
                                   {"rows": facts["rows"], "build": facts}, 600, a.settle))
    print_table(results)
    doc = {"benchmark": "ui_latency", "settle_s": a.settle, "what": "click on a ranked slice until the Bokeh "
           "timeline shows it (title and data), in Chromium against the served app",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "platform": platform.platform()},
           "date": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
           "results": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
