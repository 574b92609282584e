"""Benchmarks of ``workbench.experiments``: sequential error, CUPED, SRM diagnosis, the demo loop.

Run with the project's venv::

    .venv/bin/python benchmarks/experiments.py             # full run
    .venv/bin/python benchmarks/experiments.py --quick     # smoke run

Writes ``benchmarks/results/experiments.json`` with

* ``sequential_false_positive_rate`` - share of simulated A/A experiments (2,000 by default)
  in which the always-valid interval of the readout excluded 0 at *any* of the looks (one
  look after every hourly batch, 48 batches), with ``alpha``; the same runs read with a
  fixed-horizon 95% interval at every look give ``peeking_false_positive_rate`` for
  contrast. Units are heterogeneous (gamma propensity and activity) and the variance is the
  delta-method estimate over units, as in the readout. Vectorized over runs and units.
* ``cuped_variance_reduction`` - on the demo: a 50% rollback of chg-0431 watched for 6
  simulated hours (decisions held until the end), the readout's variance reduction from
  the pre-period covariate.
* ``srm_diagnosis_accuracy`` - generated experiments with a known cause (a bucketing bug in
  one app version, telemetry loss in one browser, a start-time skew), at random strengths;
  a diagnosis is right when both the cause class and the place (version, browser, or the
  early hours) are right.
* ``hours_to_decision`` - the demo rollback of the top hypothesis through ``workbench loop``
  (several world seeds): hours until confirmed; the same for the second-ranked cause
  (refuted).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.experiments.sequential import mixture_halfwidth  # noqa: E402
from workbench.experiments.srm import diagnose_srm  # noqa: E402

DEMO = ROOT / "sample_data" / "demo"


def aa_false_positives(runs: int, batches: int, units: int, seed: int, alpha: float) -> dict:
    """A/A runs watched after every batch: how often does each interval exclude 0 at some look?"""
    rng = np.random.default_rng(seed)
    shape = (runs, units)
    arm = rng.random(shape) < 0.5
    prop = rng.gamma(2.0, 0.5, shape)
    act = rng.gamma(2.0, 0.5, shape)
    p = np.clip(0.04 * prop, 0, 1)
    s = np.zeros(shape)
    y = np.zeros(shape)
    seq_hit = np.zeros(runs, bool)
    fixed_hit = np.zeros(runs, bool)
    tau = 0.004  # a 10% relative effect on a 4% rate: the size the readout is tuned for
    for _ in range(batches):
        sb = rng.poisson(act)
        s += sb
        y += rng.binomial(sb, p)
        est = np.zeros(runs)
        var = np.zeros(runs)
        for a, sign in ((arm, 1.0), (~arm, -1.0)):
            n = np.maximum(a.sum(1), 2)
            ss, yy = np.where(a, s, 0.0), np.where(a, y, 0.0)
            r = yy.sum(1) / np.maximum(ss.sum(1), 1)
            mean_s = np.maximum(ss.sum(1) / n, 1e-9)
            lin = np.where(a, (y - r[:, None] * s) / mean_s[:, None], 0.0)
            v = ((lin ** 2).sum(1) - lin.sum(1) ** 2 / n) / (n - 1) / n
            est += sign * r
            var += v
        seq_hit |= np.abs(est) > mixture_halfwidth(var, alpha=alpha, tau=tau)
        fixed_hit |= np.abs(est) > 1.959964 * np.sqrt(var)
    return {"sequential_false_positive_rate": float(seq_hit.mean()),
            "peeking_false_positive_rate": float(fixed_hit.mean()),
            "aa_runs": runs, "looks_per_run": batches, "units_per_run": units}


def srm_cases(n_cases: int, seed: int) -> float:
    """Accuracy of :func:`diagnose_srm` on generated experiments with a known cause."""
    rng = np.random.default_rng(seed)
    right = 0
    kinds = ("assignment", "log_processing", "execution")
    for i in range(n_cases):
        kind = kinds[i % 3]
        n = int(rng.integers(20000, 60000))
        e = pd.DataFrame({
            "unit_id": np.arange(n), "experiment": f"e{i}",
            "variant": rng.choice(["control", "treatment"], n),
            "app_version": rng.choice(["5.0", "5.1", "5.2", "web"], n, p=[.2, .3, .3, .2]),
            "browser": rng.choice(["app", "chrome", "safari", "firefox", "edge"], n),
            "platform": rng.choice(["ios", "android", "web"], n),
            "ts": pd.Timestamp("2026-11-01", tz="UTC")
            + pd.to_timedelta(rng.uniform(0, 24 * 7, n), unit="h")})
        strength = rng.uniform(0.15, 0.5)
        if kind == "assignment":
            where = {"app_version": str(rng.choice(["5.0", "5.1", "5.2"]))}
            bug = (e.app_version == where["app_version"]) & (rng.random(n) < strength)
            e.loc[bug, "variant"] = "control"
        elif kind == "log_processing":
            where = {"browser": str(rng.choice(["chrome", "safari", "firefox"]))}
            lost = (e.browser == where["browser"]) & (e.variant == "treatment") \
                & (rng.random(n) < strength)
            e = e[~lost]
        else:
            lag = rng.uniform(6, 20)
            where = {"time": lag}
            e = e[~((e.variant == "treatment")
                    & (e.ts < e.ts.min() + pd.Timedelta(hours=float(lag))))]
        d = diagnose_srm(e)[0]
        if kind == "execution":
            ok = d.cause == "execution" and "time" in d.where
        else:
            ok = d.cause == kind and d.where == where
        right += bool(ok)
    return right / n_cases


def demo_loops(seeds: list[int], work: Path) -> dict:
    """The demo loop through the CLI verb's Python twin, for the top two causes."""
    from workbench.cli_loop import close_loop

    out = {"confirmed_hours": [], "refuted_hours": [], "statuses": []}
    for seed in seeds:
        for cause, key in (("chg-0431", "confirmed_hours"), ("chg-0430", "refuted_hours")):
            r = close_loop(DEMO, metric="conversion_rate", cause=cause, hours=6,
                           audit=work / "audit.jsonl", workdir=work / "loop", seed=seed)
            out["statuses"].append([cause, seed, r.status, r.hours_to_decision])
            if r.status == ("confirmed" if cause == "chg-0431" else "refuted"):
                out[key].append(r.hours_to_decision)
    return out


def demo_cuped(work: Path) -> float:
    """CUPED on the demo: 6 hours of a 50% rollback of the culprit, no early stop."""
    from workbench.experiments.loop import run_loop
    from workbench.passport import load_passport

    pp = load_passport(DEMO)
    cause = {"change_id": "chg-0431", "scope": {"platform": "ios", "app_version": "5.2"},
             "ts": "2026-11-18T14:00:00Z", "confidence": 0.5}
    r = run_loop(pp, metric="conversion_rate", cause=cause, hours=6, workdir=work / "cuped",
                 audit=work / "audit.jsonl", min_hours=6, seed=1)
    return float(r.readout["comparisons"][0]["variance_reduction"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "experiments.json"))
    a = ap.parse_args(argv)
    alpha = 0.05
    t0 = time.perf_counter()
    res: dict = {"alpha": alpha}
    res.update(aa_false_positives(300 if a.quick else 2000, 48, 400, seed=20261207, alpha=alpha))
    print(f"A/A: sequential {res['sequential_false_positive_rate']:.4f}, peeking "
          f"{res['peeking_false_positive_rate']:.4f} ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    res["srm_diagnosis_accuracy"] = srm_cases(30 if a.quick else 150, seed=7)
    res["srm_cases"] = 30 if a.quick else 150
    print(f"SRM diagnosis accuracy {res['srm_diagnosis_accuracy']:.3f}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        res["cuped_variance_reduction"] = demo_cuped(work)
        print(f"CUPED on the demo: variance -{res['cuped_variance_reduction']:.1%}", flush=True)
        loops = demo_loops([0] if a.quick else [0, 1, 2], work)
    conf = loops["confirmed_hours"]
    res["hours_to_decision"] = float(statistics.median(conf)) if conf else None
    res["hours_to_refutation"] = (float(statistics.median(loops["refuted_hours"]))
                                  if loops["refuted_hours"] else None)
    res["demo_loops"] = loops["statuses"]
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["machine"] = "2 shared cores, loaded by other runs; figures other than seconds do not " \
                     "depend on load"
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
