"""Score ``workbench investigate`` on freshly generated incidents of every family.

Each incident is a passport written by :mod:`workbench.synth` with its ground
truth (``truth.json``) beside it. Seeds are fresh on every run (drawn from the
OS) unless ``--seed`` is given; the seeds used are written to the results so
any run can be reproduced. Nothing here is tuned to a seed.

Figures:

- verdict accuracy (all incidents);
- top-1 culprit accuracy (incidents caused by a change: the top cause is one
  of the truth's change ids);
- top-slice exact match (incidents with a truth slice: the first slice selects
  exactly the truth's leaves; ``{browser: edge}`` matches ``{platform: web,
  browser: edge}`` when edge exists only on the web);
- false blame (incidents not caused by a change: any cause at confidence >= 0.5);
- onset error in grains (incidents with an onset: median, 95th percentile,
  share within 2 grains);
- seconds per incident (investigate only, generation excluded);
- the naive ranking beside ours: "blame the latest change before the onset"
  (what a dashboard with change markers invites), given the *true* onset so
  it is not handicapped by detection: its top-1 culprit accuracy and its
  false blame (it blames whenever any change precedes the onset).

Usage::

    python benchmarks/incidents.py [--n 5] [--seed S] [--jobs 2] [--families a,b] [--scale 0.2]
                                   [--heldout] [--png PATH]

Tuning and held-out families
----------------------------
``workbench.synth.FAMILIES`` are the tuning families: every constant of the
ranking and of the verdict rules was chosen on their seeds. ``--heldout`` adds
``workbench.synth.HELDOUT_FAMILIES`` (:mod:`workbench.synth._heldout`), written
after the method from the failure patterns of issue 14 and never tuned on; the
two groups are reported apart (``tuning``, ``heldout``, ``calibration_tuning``,
``calibration_heldout``). A verdict is right when it is one the truth accepts
(``accept_verdicts``: a late tail may answer ``none`` or ``data_quality``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(args: tuple) -> dict:
    family, seed, scale, effect_scale = (*args, 1.0, 1.0)[:4]
    from workbench.investigation import investigate
    from workbench.synth import generate_incident

    with tempfile.TemporaryDirectory() as tmp:
        path = generate_incident(family, seed, Path(tmp) / "p", scale=scale,
                                 effect_scale=effect_scale)
        truth = json.loads((Path(path) / "truth.json").read_text())
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            inv = investigate(path, metric=truth["metric"], db=Path(tmp) / "s.duckdb",
                              artifact_dir=None)
            err = None
        except Exception as exc:  # a crash is a miss, and is reported
            inv, err = None, f"{type(exc).__name__}: {exc}"
        # CPU seconds of the process (DuckDB's threads included): on a shared machine the
        # wall time says as much about the neighbours' load as about the method
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        same = False if inv is None else _same_leaves(
            path, truth.get("slice"), inv.slices[0]["filter"] if inv.slices else None)
        naive = _naive_latest(path, truth.get("onset"))
    rec = {"family": family, "seed": seed, "truth_verdict": truth["verdict"],
           "heldout": bool(truth.get("heldout")), "scale": scale,
           "effect_scale": effect_scale,
           "accept_verdicts": truth.get("accept_verdicts") or [truth["verdict"]],
           "truth_missing_share": truth.get("details", {}).get("missing_share"),
           "naive_top_cause": naive,
           "truth_onset": truth.get("onset"), "truth_slice": truth.get("slice"),
           "truth_culprits": truth.get("culprit_ids", []), "secs": secs, "cpu_secs": cpu,
           "error": err}
    if inv is None:
        rec["slice_same_leaves"] = False
        rec.update(verdict=None, onset=None, top_slice=None, top_cause=None,
                   top_conf=None, max_conf=0.0)
        return rec
    causes = inv.causes
    rec["slice_same_leaves"] = same
    rec.update(verdict=inv.verdict, onset=inv.divergence.get("onset"),
               top_slice=inv.slices[0]["filter"] if inv.slices else None,
               top_cause=causes[0]["change_id"] if causes else None,
               top_conf=causes[0]["confidence"] if causes else None,
               max_conf=max((c["confidence"] for c in causes), default=0.0),
               causes=[[c["change_id"], c["confidence"]] for c in causes],
               stability=(inv.ranking.stability if inv.ranking is not None else None),
               late_missing_share=(inv.divergence.get("late_data") or {}).get("missing_share"),
               next_step=inv.params.get("next_step"))
    return rec


def _naive_latest(path, onset: str | None) -> str | None:
    """The change a "latest change before the onset" rule blames (None: no onset or no change)."""
    if not onset:
        return None
    ch = pd.read_json(Path(path) / "changes.jsonl", lines=True)
    if ch.empty:
        return None
    ts = pd.to_datetime(ch["ts"], utc=True)
    before = ch[ts <= pd.Timestamp(onset)]
    if before.empty:
        return None
    # latest first; among changes logged in the same hour the last one logged
    order = before.assign(_ts=ts[before.index]).sort_values("_ts", kind="stable")
    return str(order["id"].iloc[-1])


def _same_leaves(path, a: dict | None, b: dict | None) -> bool:
    """Do two slice filters select the same leaves of the passport's facts?

    ``{platform: web, browser: edge}`` and ``{browser: edge}`` name one slice
    when edge exists only on the web; an exact-dict comparison would call the
    shorter, equally correct answer wrong.
    """
    if not a or b is None:
        return False
    import pyarrow.parquet as pq

    cols = sorted(set(a) | set(b))
    leaves = pq.read_table(Path(path) / "events.parquet", columns=cols).to_pandas()
    leaves = leaves.drop_duplicates()

    def mask(f):
        m = np.ones(len(leaves), dtype=bool)
        for k, v in f.items():
            m &= leaves[k].astype(str).isin(v if isinstance(v, list) else [str(v)]).to_numpy()
        return m

    return bool(np.array_equal(mask(a), mask(b)))


def score(recs: list[dict], grain_hours: float = 1.0) -> dict:
    df = pd.DataFrame(recs)

    def onset_err(r):
        if not r["truth_onset"] or not r["onset"]:
            return np.nan
        return abs((pd.Timestamp(r["onset"]) - pd.Timestamp(r["truth_onset"]))
                   / pd.Timedelta(hours=grain_hours))

    df["onset_err"] = df.apply(onset_err, axis=1)
    if "accept_verdicts" not in df:
        df["accept_verdicts"] = df["truth_verdict"].apply(lambda v: [v])
    if "heldout" not in df:
        df["heldout"] = False
    df["verdict_ok"] = df.apply(lambda r: r["verdict"] in r["accept_verdicts"], axis=1)
    df["culprit_ok"] = df.apply(lambda r: r["top_cause"] in (r["truth_culprits"] or []), axis=1)
    df["slice_ok"] = df["slice_same_leaves"].fillna(False).astype(bool)
    df["false_blame"] = (df["truth_verdict"] != "change") & (df["max_conf"] >= 0.5)
    if "naive_top_cause" not in df:
        df["naive_top_cause"] = None
    df["naive_ok"] = df.apply(lambda r: r["naive_top_cause"] in (r["truth_culprits"] or []), axis=1)
    df["naive_blame"] = (df["truth_verdict"] != "change") & df["naive_top_cause"].notna()

    def block(d: pd.DataFrame) -> dict:
        ch = d[d["truth_verdict"] == "change"]
        sl = d[d["truth_slice"].apply(lambda x: isinstance(x, dict) and bool(x))]
        nc = d[d["truth_verdict"] != "change"]
        on = d["onset_err"].dropna()
        has_onset = d[d["truth_onset"].apply(lambda x: isinstance(x, str) and bool(x))]
        return {
            "n": int(len(d)),
            "verdict_acc": float(d["verdict_ok"].mean()) if len(d) else None,
            "top1_culprit_acc": float(ch["culprit_ok"].mean()) if len(ch) else None,
            "top_slice_exact": float(sl["slice_ok"].mean()) if len(sl) else None,
            "false_blame": float(nc["false_blame"].mean()) if len(nc) else None,
            "naive_top1_culprit_acc": float(ch["naive_ok"].mean()) if len(ch) else None,
            "naive_false_blame": float(nc["naive_blame"].mean()) if len(nc) else None,
            "onset_within_2": (float((has_onset["onset_err"] <= 2).mean())
                               if len(has_onset) else None),
            "onset_err_median": float(on.median()) if len(on) else None,
            "onset_err_p95": float(on.quantile(0.95)) if len(on) else None,
            "secs_per_incident": float(d["secs"].mean()),
            "secs_median": float(d["secs"].median()),
            "cpu_secs_median": (float(d["cpu_secs"].median()) if "cpu_secs" in d else None),
            "errors": int(d["error"].notna().sum()),
        }

    out = {"overall": block(df), "per_family": {f: block(g) for f, g in df.groupby("family")}}
    held = df["heldout"].astype(bool)
    # tuning families and held-out families apart: every constant of the method was
    # chosen on the tuning families; the held-out ones measure what it learned
    out["tuning"] = block(df[~held]) if (~held).any() else None
    out["heldout"] = block(df[held]) if held.any() else None
    out["calibration"] = calibration(recs)
    out["calibration_tuning"] = calibration([r for r in recs if not r.get("heldout")])
    out["calibration_heldout"] = calibration([r for r in recs if r.get("heldout")])
    stab = [r.get("stability") for r in recs if r.get("stability") is not None]
    out["top_cause_stability"] = float(np.mean(stab)) if stab else None
    return out


def calibration(recs: list[dict], bins=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0001)) -> dict:
    """Reliability of the confidences: every listed cause is a forecast that it is the culprit.

    Expected calibration error (ECE) weights each bin's |mean confidence - share
    right| by its count (Naeini et al., AAAI 2015; Guo et al., ICML 2017).
    """
    conf, right = _pairs(recs)
    if not len(conf):
        return {"n": 0}
    table, ece = [], 0.0
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (conf >= lo) & (conf < hi)
        if not m.any():
            continue
        mc, acc = float(conf[m].mean()), float(right[m].mean())
        ece += m.sum() / len(conf) * abs(mc - acc)
        table.append({"bin": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n": int(m.sum()),
                      "mean_confidence": mc, "share_right": acc})
    m = (conf >= 0.1) & (conf <= 0.9)
    # the same error over the causes between 0.1 and 0.9 only: the overall one is
    # dominated by the many causes near 0, which are easy to get right
    ece_mid = None
    if m.any():
        ece_mid = 0.0
        for lo, hi in zip(bins[:-1], bins[1:]):
            k = m & (conf >= lo) & (conf < hi)
            if k.any():
                ece_mid += k.sum() / m.sum() * abs(float(conf[k].mean()) - float(right[k].mean()))
    return {"n": int(len(conf)), "n_between_0.1_and_0.9": int(m.sum()), "ece": float(ece),
            "ece_mid": ece_mid, "reliability": table}


def _pairs(recs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(conf, cid in (r.get("truth_culprits") or []))
             for r in recs for cid, conf in (r.get("causes") or [])]
    return (np.array([p[0] for p in pairs], dtype=float),
            np.array([p[1] for p in pairs], dtype=float))


def _load_records(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """Incident records of results files (``--out``) or streams (``--stream``), and their runs.

    An incident seen twice (same family, seed, scale and effect scale) counts once.
    """
    recs, runs, seen = [], [], set()
    for path in paths:
        path = Path(path)
        if path.suffix == ".jsonl":
            got = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            runs.append({"file": path.name, "incidents": len(got)})
        else:
            res = json.loads(path.read_text())
            got = res["incidents"]
            runs.append({"file": path.name, "incidents": len(got),
                         **{k: res.get(k) for k in ("base_seed", "scale", "effect_scale")}})
        for r in got:
            key = (r["family"], r["seed"], r.get("scale"), r.get("effect_scale"))
            if key not in seen:
                seen.add(key)
                recs.append(r)
    return recs, runs


def _mapped(recs: list[dict], cmap) -> list[dict]:
    """The records with ``cmap`` applied to their causes' confidences, as the ranking would.

    :func:`workbench.events.rank._calibrated` maps the posteriors and renormalizes
    when they sum above 1; a verdict other than ``change`` caps every cause below
    0.5. This replays that on the recorded confidences (an offline estimate: the
    ranking's own thresholds see the uncalibrated posterior either way).
    """
    out = []
    for r in recs:
        causes = r.get("causes") or []
        if causes:
            p = cmap(np.array([c[1] for c in causes], dtype=float))
            if p.sum() > 1.0:
                p = p / p.sum()
            if r.get("verdict") != "change":
                p = np.minimum(p, 0.49)
            causes = [[c[0], round(float(q), 4)] for c, q in zip(causes, p)]
        out.append({**r, "causes": causes})
    return out


def fit_calibration(paths: list[Path], out: Path, png_dir: Path,
                    map_path: Path | None = None) -> int:
    """Fit the Platt map on the tuning families' causes; judge it on the held-out ones.

    The map is written into the package (``workbench/events/calibration.json``)
    only when it lowers the held-out expected calibration error; either way the
    figures go to ``out`` and the reliability diagrams (held-out, tuning) to
    ``png_dir``. Held-out incidents never fit the map: they judge it.
    ``map_path``: where the map goes (default: the package's file).
    """
    from workbench.events.calibration import calibration_map, fit_platt

    old = calibration_map()
    if not old.identity:
        print("the shipped map is not the identity: fit on runs made without it",
              file=sys.stderr)
        return 2
    recs, runs = _load_records(paths)
    tune = [r for r in recs if not r.get("heldout")]
    held = [r for r in recs if r.get("heldout")]
    conf, right = _pairs(tune)
    fams = sorted({r["family"] for r in tune})
    report = {"runs": runs, "incidents": {"tuning": len(tune), "heldout": len(held)},
              "calibration_tuning": calibration(tune),
              "calibration_heldout": calibration(held)}
    try:
        cmap = fit_platt(conf, right, version=old.version + 1, fitted_on={
            "families": fams, "incidents": len(tune), "causes": int(len(conf)),
            "causes_between_0.1_and_0.9": int(((conf >= 0.1) & (conf <= 0.9)).sum()),
            "runs": runs})
    except ValueError as exc:
        cmap = None
        report["map"] = {"fitted": False, "why": str(exc)}
    if cmap is not None:
        after = calibration(_mapped(held, cmap))
        before = report["calibration_heldout"]
        better = bool(after.get("n")) and after["ece"] < before.get("ece", np.inf)
        report["calibration_heldout_mapped"] = after
        report["map"] = {"fitted": True, "a": cmap.a, "b": cmap.b, "shipped": better,
                         "why": ("it lowers the held-out ECE" if better else
                                 "not shipped: it does not lower the held-out ECE "
                                 f"({after.get('ece', float('nan')):.4f} against "
                                 f"{before.get('ece', float('nan')):.4f} without it)")}
        if better:
            dest = map_path or (Path(__file__).resolve().parent.parent / "workbench" /
                                "events" / "calibration.json")
            dest.write_text(cmap.to_json(), encoding="utf-8")
            print(f"wrote {dest}")
    for key, name in (("calibration_heldout", "heldout"), ("calibration_tuning", "tuning")):
        png = png_dir / f"incidents_calibration_reliability_{name}.png"
        if reliability_png(report[key], png, f"Reliability of cause confidences, {name} "
                                               "families (reduced evidence)"):
            report[f"png_{name}"] = png.name
    out.write_text(json.dumps(report, indent=1, default=str))
    for key in ("calibration_tuning", "calibration_heldout", "calibration_heldout_mapped"):
        cal = report.get(key) or {}
        if cal.get("n"):
            print(f"{key}: {cal['n']} causes, {cal['n_between_0.1_and_0.9']} between 0.1 and "
                  f"0.9: ECE {cal['ece']:.4f} (between 0.1 and 0.9: {cal['ece_mid']:.4f})")
    print(f"map: {report['map']}\nwrote {out}")
    return 0


def reliability_png(cal: dict, path: Path, title: str) -> Path | None:
    """Draw the reliability diagram (mean confidence against share right, per bin)."""
    if not cal.get("n"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = cal["reliability"]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    ax.plot([b["mean_confidence"] for b in tab], [b["share_right"] for b in tab], "o-",
            color="C0", label="causes, per confidence bin")
    for b in tab:
        ax.annotate(str(b["n"]), (b["mean_confidence"], b["share_right"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence given")
    ax.set_ylabel("share that is the culprit")
    ax.set_title(f"{title}\nECE {cal['ece']:.3f}, {cal['n']} causes, "
                 f"{cal['n_between_0.1_and_0.9']} between 0.1 and 0.9", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(x, pct=True):
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.0%}" if pct else f"{x:.2f}"


def print_table(res: dict) -> None:
    cols = ["n", "verdict_acc", "top1_culprit_acc", "naive_top1_culprit_acc", "top_slice_exact",
            "false_blame", "naive_false_blame", "onset_within_2", "onset_err_median",
            "secs_per_incident"]
    head = ["family", "n", "verdict", "top1 cause", "naive top1", "top slice", "false blame",
            "naive blame", "onset<=2", "onset err", "s/inc"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    rows = list(res["per_family"].items()) + [("ALL", res["overall"])]
    rows += [(f"ALL {g}", res[g]) for g in ("tuning", "heldout") if res.get(g)]
    for fam, b in rows:
        vals = [str(b["n"])] + [_fmt(b.get(c)) for c in cols[1:8]] + \
               [_fmt(b["onset_err_median"], False), _fmt(b["secs_per_incident"], False)]
        print("| " + " | ".join([fam] + vals) + " |")
    for key in ("calibration", "calibration_tuning", "calibration_heldout"):
        cal = res.get(key, {})
        if not cal.get("n"):
            continue
        print(f"\n{key}: {cal['n']} listed causes ({cal['n_between_0.1_and_0.9']} between 0.1 "
              f"and 0.9): ECE {cal['ece']:.3f}")
        print("| confidence bin | n | mean confidence | share right |\n|---|---|---|---|")
        for b in cal["reliability"]:
            print(f"| {b['bin']} | {b['n']} | {b['mean_confidence']:.2f} | {b['share_right']:.2f} |")
    print(f"\nMedian investigate time {res['overall']['secs_median']:.2f} s per passport "
          "(wall time with the workers running side by side; --jobs 1 for a quiet figure)")
    if res["overall"].get("cpu_secs_median") is not None:
        print(f"Median CPU time {res['overall']['cpu_secs_median']:.2f} s per passport "
              f"(load average {res.get('loadavg_1_5_15', {}).get('start', ['?'])[0]} at the "
              "start)")
    if res.get("top_cause_stability") is not None:
        print(f"Top cause unchanged under resampling: {res['top_cause_stability']:.0%} of draws")
    print("\nReference: none published for these families. 'naive' blames the latest change "
          "before the true onset (the dashboard-with-change-markers habit).")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5, help="incidents per family (default 5)")
    ap.add_argument("--seed", type=int, help="base seed (default: fresh from the OS)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--families", help="comma-separated subset")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="traffic volume multiplier (below 1: weaker evidence, for calibration)")
    ap.add_argument("--effect-scale", default="1",
                    help="comma-separated powers on the incidents' multipliers, cycled over "
                         "the seeds (below 1: weaker effects, ambiguous evidence, for "
                         "calibration)")
    ap.add_argument("--stream", help="also append each incident's record here (JSON lines) "
                                     "as it finishes, so a long run can be read part way")
    ap.add_argument("--fit-calibration", metavar="RESULTS", nargs="+",
                    help="results files (--out) or streams (--stream): fit the Platt map on "
                         "their tuning families' causes, judge it on their held-out ones, "
                         "write the figures to --out and the diagrams beside it, and the map "
                         "to workbench/events/calibration.json only when it lowers the "
                         "held-out ECE (no incidents run)")
    ap.add_argument("--out", default=str(RESULTS / "incidents.json"))
    ap.add_argument("--png", help="write the reliability diagram (PNG) here")
    ap.add_argument("--heldout", action="store_true",
                    help="run the held-out families too (default: the tuning families only)")
    a = ap.parse_args(argv)
    if a.fit_calibration:
        out = Path(a.out) if a.out != str(RESULTS / "incidents.json") else \
            RESULTS / "incidents_calibration_fit.json"
        return fit_calibration([Path(x) for x in a.fit_calibration], out, out.parent)
    from workbench.synth import FAMILIES, HELDOUT_FAMILIES

    fams = a.families.split(",") if a.families else \
        list(FAMILIES) + (list(HELDOUT_FAMILIES) if a.heldout else [])
    base = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "little")
    eff = [float(x) for x in a.effect_scale.split(",")]
    jobs = [(f, base + 1000 * i + k, a.scale, eff[k % len(eff)])
            for i, f in enumerate(fams) for k in range(a.n)]
    print(f"{len(jobs)} incidents ({a.n} per family, base seed {base}), {a.jobs} workers",
          file=sys.stderr)
    t0 = time.perf_counter()
    load_start = os.getloadavg()  # the machine is shared: timings read beside its load
    recs = []
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        for i, r in enumerate(ex.map(run_one, jobs), 1):
            recs.append(r)
            if a.stream:
                with open(a.stream, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r, default=str) + "\n")
            ok = "ok " if r["verdict"] in r["accept_verdicts"] else "MISS"
            print(f"[{i:3d}/{len(jobs)}] {ok} {r['family']:19s} seed {r['seed']:9d} "
                  f"truth {r['truth_verdict']:12s} got {str(r['verdict']):12s} "
                  f"top {str(r['top_cause']):10s} {r['secs']:.1f}s"
                  + (f"  ERROR {r['error']}" if r["error"] else ""), file=sys.stderr)
    res = score(recs)
    res["base_seed"] = base
    res["scale"] = a.scale
    res["effect_scale"] = eff
    res["wall_secs"] = time.perf_counter() - t0
    res["loadavg_1_5_15"] = {"start": list(load_start), "end": list(os.getloadavg())}
    res["cpu_count"] = os.cpu_count()
    res["incidents"] = recs
    res["jobs"] = a.jobs
    print_table(res)
    if a.png:
        reliability_png(res["calibration"], Path(a.png),
                        f"Reliability of cause confidences (scale {a.scale:g})")
        print(f"wrote {a.png}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
