"""Measure the seasonal detector on simulated series; prints a table.

Run: ``python tests/detect/simulate.py [--n 200] [--calibrate]`` (not part of
pytest). Every scenario uses seeded series from ``detect_sim.simulate_series``
(hourly, 21 days, daily + weekly seasonality, trend, AR(1) model error,
Poisson / binomial noise). Columns:

- ``signif``: share of series flagged significant;
- ``n>=5sd``: incidents whose oracle z over the window is at least 5;
- ``found``: share of those flagged significant;
- ``onset+-2``: share of those with the onset within 2 buckets of the truth
  (a miss counts as a failure);
- ``end ok``: share of those whose reported end is right: the last bucket for
  a persistent shift, within 1 bucket of the truth for an episode;
- ``window+-1`` (the 6-hour drop): onset and end both within 1 bucket;
- ``onset+-2 5-10sd`` etc.: onset accuracy by oracle z of the incident.

For reference, the best possible onset accuracy -- least squares on white
Gaussian noise around a *known* baseline, a step lasting 72 buckets -- is
within 2 buckets in 36% of cases at 5 sd, 72% at 10 sd, 90% at 15 sd and 97%
at 20 sd (4,000 simulations each): a long shift of 5 sd in total is only
~0.6 sd per bucket and cannot be pinned to 2 buckets by any method.

``--calibrate`` simulates null series and prints the ``scan_tests_per_bucket``
that makes the false-alarm rate equal to ``alpha`` (the default in
:class:`workbench.detect.DetectConfig` was set this way).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from detect_sim import simulate_series  # noqa: E402  (script run: its folder is on sys.path)

from workbench.detect import DetectConfig, detect_divergence  # noqa: E402

GRAIN = pd.Timedelta("1h")

# name: (seed base, simulate_series keyword arguments)
SCENARIOS = {
    "quiet ratio (100-20k/h)": (1000, dict(kind="ratio", incident="none")),
    "quiet sum (100-20k/h)": (2000, dict(kind="sum", incident="none")),
    "quiet ratio, den ~50/h": (3000, dict(kind="ratio", incident="none", level=50.0)),
    "quiet sum, ~5/h": (4000, dict(kind="sum", incident="none", level=5.0)),
    "shift ratio 2-60%": (5000, dict(kind="ratio", incident="shift")),
    "shift sum 2-60%": (6000, dict(kind="sum", incident="shift")),
    "episode sum 3-10h": (7000, dict(kind="sum", incident="episode")),
    "episode ratio (num) 3-10h": (8000, dict(kind="ratio", incident="episode")),
    "sum -40% for 6h": (9000, dict(kind="sum", incident="episode", effect=-0.4, duration=6)),
}


def run_scenario(seed0, kwargs, n, config):
    rows, times, cpu = [], [], []
    for i in range(n):
        rng = np.random.default_rng(seed0 + i)
        frame, truth = simulate_series(rng, **kwargs)
        t0, c0 = time.perf_counter(), time.process_time()
        res = detect_divergence(frame, kind=truth.kind, better="higher", grain=GRAIN,
                                config=config)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        row = {"significant": res.significant, "sigma": truth.sigma, "score": res.score,
               "p": res.p_value, "onset_err": np.nan, "end_err": np.nan,
               "end_is_last": False}
        if truth.onset is not None and res.significant:
            row["onset_err"] = (res.onset - truth.onset) / GRAIN
            row["end_err"] = (res.end - truth.end) / GRAIN
            row["end_is_last"] = res.end == frame.index[-1]
        rows.append(row)
    return pd.DataFrame(rows), np.asarray(times), np.asarray(cpu)


def summarize(name, kwargs, df):
    out = {"scenario": name, "n": len(df), "signif": df.significant.mean()}
    incident = kwargs.get("incident")
    if incident != "none":
        clear = df[df.sigma >= 5]
        out["n>=5sd"] = len(clear)
        out["found"] = clear.significant.mean() if len(clear) else np.nan
        out["onset+-2"] = (clear.onset_err.abs() <= 2).mean() if len(clear) else np.nan
        if incident == "shift":
            out["end ok"] = clear.end_is_last.mean() if len(clear) else np.nan
        else:
            out["end ok"] = (clear.end_err.abs() <= 1).mean() if len(clear) else np.nan
        if kwargs.get("duration") == 6:
            both = (df.onset_err.abs() <= 1) & (df.end_err.abs() <= 1)
            out["window+-1"] = both.mean()
        for lo, hi in ((5, 10), (10, 20), (20, np.inf)):
            band = df[(df.sigma >= lo) & (df.sigma < hi)]
            label = f"onset+-2 {lo}-{hi}sd" if np.isfinite(hi) else f"onset+-2 >={lo}sd"
            out[label] = (band.onset_err.abs() <= 2).mean() if len(band) else np.nan
    return out


def calibrate(n, config):
    from scipy.special import ndtr

    zs = []
    for name, (seed0, kwargs) in SCENARIOS.items():
        if kwargs["incident"] != "none":
            continue
        df, _, _ = run_scenario(seed0 + 50_000, kwargs, n, config)
        zs.append(df.score.abs().to_numpy())
    z = np.concatenate(zs)
    z_crit = float(np.quantile(z, 1.0 - config.alpha))
    p_local = 2.0 * ndtr(-z_crit)
    n_scan = int(np.ceil(config.scan / GRAIN))
    k = np.log1p(-config.alpha) / np.log1p(-p_local) / n_scan
    print(f"null series: {len(z)}; {1 - config.alpha:.0%} quantile of |score| = {z_crit:.3f}")
    print(f"scan_tests_per_bucket giving alpha={config.alpha}: {k:.2f} "
          f"(n_scanned={n_scan}; current {config.scan_tests_per_bucket})")
    for kk in (0.5, 1.0, 1.5, 2.0, 3.0):
        p = -np.expm1(kk * n_scan * np.log1p(-2.0 * ndtr(-z)))
        print(f"  k={kk}: false-alarm rate {np.mean(p < config.alpha):.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="simulations per scenario")
    ap.add_argument("--calibrate", action="store_true")
    args = ap.parse_args(argv)
    config = DetectConfig()
    if args.calibrate:
        calibrate(args.n, config)
        return
    table, all_times, all_cpu = [], [], []
    for name, (seed0, kwargs) in SCENARIOS.items():
        df, times, cpu = run_scenario(seed0, kwargs, args.n, config)
        all_times.append(times)
        all_cpu.append(cpu)
        table.append(summarize(name, kwargs, df))
    t = pd.DataFrame(table).set_index("scenario")
    pct = [c for c in t.columns if c in ("signif", "found", "end ok", "window+-1")
           or c.startswith("onset+-2")]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(t.assign(**{c: (100 * t[c]).round(1) for c in pct}).to_string(na_rep="-"))
    times, cpu = np.concatenate(all_times)[1:], np.concatenate(all_cpu)[1:]
    print(f"\nper call on {21 * 24} hourly buckets ({len(times)} calls): wall median "
          f"{1e3 * np.median(times):.1f} ms, p95 {1e3 * np.quantile(times, 0.95):.1f} ms, max "
          f"{1e3 * times.max():.1f} ms; CPU median {1e3 * np.median(cpu):.1f} ms, p95 "
          f"{1e3 * np.quantile(cpu, 0.95):.1f} ms (wall time depends on machine load)")


if __name__ == "__main__":
    main()
