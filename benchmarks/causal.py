"""Score the causal verification (``workbench.causal``) on freshly generated incidents.

For each incident (families ``scoped_change``, ``staged_rollout``,
``latency_regression``, ``external`` by default) the benchmark generates a
passport with its ground truth, runs ``investigate``, then
``verify_top_causes`` on the top two causes (the divergence's onset, window,
direction and top slice as ``investigate`` found them), and scores:

- **culprit verified (ranked)**: among incidents whose top two causes include
  a true culprit, the share where that culprit is ``verified``;
- **culprit verified (given)**: the truth's first culprit row verified
  directly over the same window, whatever the ranking said (the verifier's
  own power, apart from the ranking's);
- **decoy verified** (false verification): among incidents whose top two
  causes include a change that is not a culprit, the share where the
  highest-ranked such decoy is ``verified``;
- **scoped decoy verified**: the same for the best-ranked decoy (top five)
  that has a scope: a global change is ``untestable`` by design, so this is
  the false-verification rate where verification can actually go wrong;
- **gcm mechanism right**: the mechanism the gcm attribution names is the
  one the family changed (conversions for a conversion drop, sessions for a
  traffic change, the latency sum for a latency regression);
- **seconds per verification** (one cause: estimate, five refuters,
  counterfactual) and per report (two causes plus gcm), DoWhy's import
  excluded (it is paid once per process).

Seeds are fresh on every run (from the OS) unless ``--seed`` is given, and are
written to the results. Nothing is tuned to a seed.

**Counterfactual timelines** (:mod:`workbench.causal.counterfactual`) are scored
apart, on conversion incidents whose generator writes the true no-change series
(``no_change.csv``: the conversions the slice's sampled sessions would have
made without the change): ``scoped_change``, ``staged_rollout`` (a ramp) and
``delayed_effect`` (the effect starts 2-5 h after the change). The given
culprit's counterfactual is computed in the truth's slice up to the end of the
data, and scored by

- **counterfactual_coverage**: share of buckets from the change on whose 95 %
  band covers the true no-change rate (target >= 0.90);
- **total_effect_within_10pct**: share of incidents whose total effect
  (observed minus counterfactual conversions) is within 10 % of the true one
  (observed minus the true no-change conversions; target >= 0.90).

The constants of :class:`~workbench.causal.counterfactual.CounterfactualConfig`
were chosen on the tuning seeds (``--cf-tuning-seed``, default 1000); the
figures written as ``counterfactual_coverage`` and ``total_effect_within_10pct``
are those of the held-out seeds (fresh unless ``--seed``), reported apart.

Usage::

    .venv/bin/python benchmarks/causal.py [--n 5] [--seed S] [--jobs 2] [--families a,b]
    .venv/bin/python benchmarks/causal.py --cf-only [--cf-n 8]   # counterfactuals only
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = ("scoped_change", "staged_rollout", "latency_regression", "external")


def _expected_mechanism(truth: dict) -> str | None:
    fam, variant = truth["family"], truth.get("details", {}).get("variant")
    if fam in ("scoped_change", "staged_rollout") or variant == "conversion":
        return "conversions"
    if fam == "latency_regression":
        return "latency_ms_sum"
    if variant in ("surge", "drop"):
        return "sessions"
    return None


def _generate(family: str, seed: int, tmp: str) -> tuple[Path, dict]:
    from workbench.synth import generate_incident

    path = generate_incident(family, seed, Path(tmp) / "p")
    return path, json.loads((Path(path) / "truth.json").read_text())


def _map(fn, todo: list, jobs: int) -> list:
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            return list(ex.map(fn, todo))
    return [fn(j) for j in todo]


def run_one(args: tuple[str, int]) -> dict:
    family, seed = args
    import dowhy  # noqa: F401 - paid once per worker, outside the timings
    from workbench.causal import verify_cause, verify_top_causes
    from workbench.investigation import investigate
    from workbench.store import Store

    rec: dict = {"family": family, "seed": seed, "error": None}
    with tempfile.TemporaryDirectory() as tmp:
        path, truth = _generate(family, seed, tmp)
        culprits = truth.get("culprit_ids", [])
        rec.update(truth_verdict=truth["verdict"], culprits=culprits,
                   variant=truth.get("details", {}).get("variant"),
                   expected_mechanism=_expected_mechanism(truth))
        db = Path(tmp) / "s.duckdb"
        try:
            t0 = time.perf_counter()
            inv = investigate(path, metric=truth["metric"], db=db, artifact_dir=None)
            rec["investigate_secs"] = time.perf_counter() - t0
            d = inv.divergence
            rec["verdict"] = inv.verdict
            if not d.get("onset") or not inv.causes:
                rec["skipped"] = "no divergence or no candidate cause"
                return rec
            onset, end = pd.Timestamp(d["window"][0]), pd.Timestamp(d["window"][1])
            direction = float(np.sign((d["observed"] or 0) - (d["baseline"] or 0))) or -1.0
            top = inv.causes[:2]
            slice_ = inv.slices[0]["filter"] if inv.slices else None
            with Store(db, read_only=True) as st:
                sp = st.passport()
                spec = sp.manifest.metric(truth["metric"])
                t0 = time.perf_counter()
                rep = verify_top_causes(st.con, sp, spec, top, onset=onset, end=end,
                                        direction=direction, slice=slice_)
                rec["report_secs"] = time.perf_counter() - t0
                rec["verify_secs"] = [c.seconds for c in rep.causes]
                rec["top"] = [{"change_id": c.change_id, "verdict": c.verdict,
                               "estimate": c.estimate, "culprit": c.change_id in culprits,
                               "reason": c.reason,
                               "failed": [r.name for r in c.refuters if not r.passed]}
                              for c in rep.causes]
                rec["gcm_top"] = rep.attribution.top if rep.attribution else None
                rec["gcm_secs"] = rep.attribution.seconds if rep.attribution else None
                ch = st.changes(sp.name)
                # the hardest decoy: the best-ranked non-culprit with a scope (top 5)
                scoped = [c for c in inv.causes[:5] if c["change_id"] not in culprits
                          and c.get("scope")]
                if scoped:
                    v = verify_cause(st.con, sp, spec, scoped[0], onset=onset, end=end,
                                     direction=direction, changes=ch, slice=slice_)
                    rec["scoped_decoy"] = {"change_id": v.change_id, "verdict": v.verdict,
                                           "scope": scoped[0]["scope"], "reason": v.reason}
                if culprits:  # the verifier alone: the first culprit row, verified directly
                    row = ch[ch["id"] == culprits[0]].iloc[0]
                    cause = {"change_id": culprits[0], "ts": row["ts"].isoformat(),
                             "scope": row["scope"], "target": row["target"],
                             "rollout": row["rollout"]}
                    v = verify_cause(st.con, sp, spec, cause, onset=onset, end=end,
                                     direction=direction, changes=ch, slice=slice_)
                    rec["given_culprit_verdict"] = v.verdict
                    rec["given_culprit_reason"] = v.reason
        except Exception as exc:  # a crash is a miss, and is reported
            rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


CF_FAMILIES = ("scoped_change", "staged_rollout", "delayed_effect")


def cf_one(args: tuple[str, int]) -> dict:
    """The given culprit's counterfactual on one incident, against the true no-change series."""
    family, seed = args
    from workbench.causal._table import dose_schedule
    from workbench.causal.counterfactual import scope_counterfactual
    from workbench.passport import load_passport
    from workbench.store import Store

    rec: dict = {"family": family, "seed": seed, "error": None}
    with tempfile.TemporaryDirectory() as tmp:
        path, truth = _generate(family, seed, tmp)
        nc = pd.read_csv(Path(path) / "no_change.csv")
        nc["ts"] = pd.to_datetime(nc["ts"], utc=True)
        db = Path(tmp) / "s.duckdb"
        try:
            with Store(db) as st:
                st.ingest(load_passport(path))
                sp = st.passport()
                spec = sp.manifest.metric(truth["metric"])
                ch = st.changes(sp.name)
                rows = ch[ch["id"].isin(truth["culprit_ids"])].sort_values("ts")
                first = rows.iloc[0]
                grain = sp.manifest.grain_td
                end = nc["ts"].max()
                cause = {"change_id": first["id"], "ts": first["ts"], "scope": first["scope"],
                         "target": first["target"], "rollout": first["rollout"]}
                t0 = pd.Timestamp(first["ts"]).floor(grain)
                sched = dose_schedule(cause, ch, grain=grain, start=t0, end=end + grain)
                t_start = time.perf_counter()
                cf = scope_counterfactual(st.con, sp, spec, scope=first["scope"],
                                          slice=truth["slice"], t0=t0, end=end, grain=grain,
                                          schedule=sched)
                rec["secs"] = time.perf_counter() - t_start
            if cf is None:
                rec["error"] = "no counterfactual"
                return rec
            s = cf.series.merge(nc, on="ts")
            s = s[s["ts"] >= t0]
            true_rate = s["conversions_no_change"] / s["sessions"]
            covered = (s["lo"] <= true_rate) & (true_rate <= s["hi"])
            w = (nc["ts"] >= cf.window[0]) & (nc["ts"] < cf.window[1])
            obs = cf.series.set_index("ts")["observed_num"]
            post = nc["ts"] >= t0
            true_total = float(obs.reindex(nc.loc[post, "ts"]).sum()
                               - nc.loc[post, "conversions_no_change"].sum())
            rec.update(n_grains=int(len(s)), covered=int(covered.sum()),
                       total=cf.total, total_lo=cf.total_lo, total_hi=cf.total_hi,
                       true_total=true_total, rel_error=abs(cf.total - true_total) / abs(true_total),
                       total_covered=bool(cf.total_lo <= true_total <= cf.total_hi),
                       lag_hours=cf.lag / pd.Timedelta("1h"),
                       true_delay=truth["details"].get("delay_hours", 0),
                       window_hours=float(w.sum()), effect=truth["effect"],
                       effect_full=cf.effect_full)
        except Exception as exc:  # a crash is a miss, and is reported
            rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


def cf_score(recs: list[dict]) -> dict:
    def block(rs):
        ok = [r for r in rs if r.get("error") is None]
        grains = sum(r["n_grains"] for r in ok)
        return {"n": len(rs), "errors": len(rs) - len(ok), "grains": grains,
                "counterfactual_coverage": sum(r["covered"] for r in ok) / grains if grains else None,
                "total_effect_within_10pct": float(np.mean([r["rel_error"] <= 0.10 for r in rs
                                                            if r.get("error") is None] or [0]))
                if rs else None,
                "total_interval_covers": float(np.mean([r["total_covered"] for r in ok]))
                if ok else None,
                "median_rel_error": float(np.median([r["rel_error"] for r in ok])) if ok else None,
                "secs_per_counterfactual": float(np.mean([r["secs"] for r in ok])) if ok else None}

    fams = sorted({r["family"] for r in recs})
    return {"overall": block(recs),
            "per_family": {f: block([r for r in recs if r["family"] == f]) for f in fams}}


def print_cf_table(title: str, res: dict) -> None:
    head = ["family", "n", "grains", "band covers truth", "total within 10%",
            "total interval covers", "median |error|", "s/counterfactual"]
    print(f"\n{title}\n\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for fam, b in list(res["per_family"].items()) + [("ALL", res["overall"])]:
        print("| " + " | ".join([fam, str(b["n"]), str(b["grains"]),
                                 _fmt(b["counterfactual_coverage"]),
                                 _fmt(b["total_effect_within_10pct"]),
                                 _fmt(b["total_interval_covers"]),
                                 _fmt(b["median_rel_error"]),
                                 _fmt(b["secs_per_counterfactual"], False)]) + " |")


def run_counterfactuals(n: int, tuning_seed: int, heldout_seed: int, jobs: int) -> dict:
    """Tuning and held-out seeds of the counterfactual benchmark, scored apart."""
    out = {}
    for name, base in (("tuning", tuning_seed), ("heldout", heldout_seed)):
        todo = [(f, base + i * 1000 + k) for k, f in enumerate(CF_FAMILIES) for i in range(n)]
        recs = _map(cf_one, todo, jobs)
        out[name] = {**cf_score(recs), "base_seed": base, "records": recs}
        print_cf_table(f"counterfactual timelines, {name} seeds (base {base})", out[name])
    return out


def score(recs: list[dict]) -> dict:
    def block(rs: list[dict]) -> dict:
        ranked, decoy, given, mech, sdec = [], [], [], [], []
        for r in rs:
            top = r.get("top") or []
            cul = [c for c in top if c["culprit"]]
            if cul:
                ranked.append(cul[0]["verdict"] == "verified")
            dec = [c for c in top if not c["culprit"]]
            if dec:
                decoy.append(dec[0]["verdict"] == "verified")
            if r.get("scoped_decoy"):
                sdec.append(r["scoped_decoy"]["verdict"] == "verified")
            if r.get("given_culprit_verdict"):
                given.append(r["given_culprit_verdict"] == "verified")
            if r.get("expected_mechanism") and "gcm_top" in r:
                mech.append(r["gcm_top"] == r["expected_mechanism"])
        secs = [s for r in rs for s in r.get("verify_secs", [])]
        rep = [r["report_secs"] for r in rs if "report_secs" in r]
        mean = lambda x: float(np.mean(x)) if x else None  # noqa: E731
        return {"n": len(rs), "culprit_in_top2": len(ranked),
                "culprit_verified_ranked": mean(ranked),
                "culprit_verified_given": mean(given), "n_given": len(given),
                "decoys": len(decoy), "decoy_verified": mean(decoy),
                "scoped_decoys": len(sdec), "scoped_decoy_verified": mean(sdec),
                "gcm_mechanism_right": mean(mech), "n_gcm": len(mech),
                "secs_per_verification": mean(secs),
                "secs_per_verification_p95": float(np.quantile(secs, 0.95)) if secs else None,
                "secs_per_report": mean(rep),
                "errors": sum(r.get("error") is not None for r in rs)}

    fams = sorted({r["family"] for r in recs})
    return {"overall": block(recs),
            "per_family": {f: block([r for r in recs if r["family"] == f]) for f in fams}}


def _fmt(x, pct=True, n=None):
    if x is None:
        return "-"
    s = f"{x:.0%}" if pct else f"{x:.2f}"
    return f"{s} ({n})" if n is not None else s


def print_table(res: dict) -> None:
    head = ["family", "n", "culprit verified (ranked)", "culprit verified (given)",
            "decoy verified", "scoped decoy verified", "gcm right", "s/verification", "s/report"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for fam, b in list(res["per_family"].items()) + [("ALL", res["overall"])]:
        print("| " + " | ".join([
            fam, str(b["n"]), _fmt(b["culprit_verified_ranked"], n=b["culprit_in_top2"]),
            _fmt(b["culprit_verified_given"], n=b["n_given"]),
            _fmt(b["decoy_verified"], n=b["decoys"]),
            _fmt(b["scoped_decoy_verified"], n=b["scoped_decoys"]),
            _fmt(b["gcm_mechanism_right"], n=b["n_gcm"]),
            _fmt(b["secs_per_verification"], False), _fmt(b["secs_per_report"], False)]) + " |")
    print("\n(n) = incidents the figure is computed over. Decoy verified is a false "
          "verification rate: lower is better.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5, help="incidents per family (default 5)")
    ap.add_argument("--seed", type=int, help="base seed (default: fresh from the OS)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--families", help="comma-separated subset of " + ",".join(FAMILIES))
    ap.add_argument("--out", default=str(RESULTS / "causal.json"))
    ap.add_argument("--cf-n", type=int, default=8,
                    help="counterfactual incidents per family and seed set (default 8)")
    ap.add_argument("--cf-tuning-seed", type=int, default=1000,
                    help="base seed of the tuning incidents the constants were chosen on")
    ap.add_argument("--cf-only", action="store_true",
                    help="only the counterfactual benchmark (other figures of --out are kept)")
    a = ap.parse_args(argv)
    fams = a.families.split(",") if a.families else list(FAMILIES)
    base = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little") % 10**8
    cf = run_counterfactuals(a.cf_n, a.cf_tuning_seed, base + 7, a.jobs)
    cf_keys = {"counterfactual_coverage": cf["heldout"]["overall"]["counterfactual_coverage"],
               "total_effect_within_10pct": cf["heldout"]["overall"]["total_effect_within_10pct"],
               "counterfactual": cf}
    if a.cf_only:
        old = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
        old.update(cf_keys)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(old, indent=1, default=str))
        print(f"\nwritten to {a.out}")
        return 0
    jobs = [(f, base + i * 1000 + k) for k, f in enumerate(fams) for i in range(a.n)]
    t0 = time.perf_counter()
    recs = _map(run_one, jobs, a.jobs)
    res = score(recs)
    res.update(base_seed=base, n_per_family=a.n, families=fams,
               wall_seconds=time.perf_counter() - t0, records=recs, **cf_keys)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print_table(res)
    print(f"\nbase seed {base}; {len(recs)} incidents in {res['wall_seconds']:.0f}s; "
          f"written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
