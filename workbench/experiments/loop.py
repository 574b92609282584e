"""Close the loop: launch a test of a hypothesis, watch the world answer, update the confidence.

One verb, :func:`run_loop`, for the CLI, the Python API and the UI:

1. reconcile dangling launches (:func:`workbench.experiments.ledger.reconcile`);
2. fill a template for the cause (:mod:`workbench.experiments.templates`),
   sized by the effect the hypothesis predicts in its scope;
3. launch it through the flag provider with intent and outcome audited;
4. every simulated hour: the world (:mod:`workbench.experiments.world`)
   produces the next micro-batch under the flag, it is appended to the store
   through the normal ingest path, the readout is refreshed and the
   hypothesis's confidence updated (sequentially valid);
5. stop on a stop rule; say whether the divergence persists in the scope and,
   if the hypothesis is refuted, what to look at next.

Status rules (both are test martingales, so checking after every batch keeps
the error at ``alpha``; see :mod:`workbench.experiments.sequential`):

- **confirmed**: the always-valid interval of (reverted - kept) excludes 0 on
  the side the hypothesis predicts;
- **refuted**: the Bayes factor of "innocent" (no effect) against "culprit"
  (an effect near the predicted restore, ``N(delta, (delta/4)^2)``) reaches
  ``1/alpha`` (Ville's inequality under the culprit's prior predictive);
- otherwise **undecided**; no decision is taken before ``min_hours`` batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..governance.policy import Action, Identity, local_identity
from .flags import FlagProvider, FlagdFileProvider, dose_flag
from .ledger import launch, reconcile, record_outcome
from .readout import read_experiment
from .sequential import hypothesis_bayes_factor, update_confidence
from .templates import plan_experiment
from .world import SimulatedWorld, in_scope

GUARDRAILS = {"latency_ms": ("latency_ms_sum", "sessions", "lower")}


@dataclass(frozen=True)
class LoopResult:
    """The answer of :func:`run_loop` (the JSON of ``workbench loop``)."""

    action: dict
    status: str
    updates: tuple[dict, ...]
    readout: dict
    plan: dict
    hours_to_decision: int | None
    divergence: dict
    next_steps: tuple[str, ...] = ()
    reconciled: tuple[dict, ...] = ()
    store: str = ""
    batches: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"action": self.action, "status": self.status, "updates": list(self.updates),
                "readout": self.readout, "plan": self.plan,
                "hours_to_decision": self.hours_to_decision, "divergence": self.divergence,
                "next_steps": list(self.next_steps), "reconciled": list(self.reconciled),
                "store": self.store, "batches": list(self.batches)}

    def summary(self) -> str:
        a = self.action
        lines = [f"{a['template']} of {a['change_id']} at {a['dose']:g}% through "
                 f"{a['provider']} (audit #{a['intent_audit_seq']} intent, "
                 f"#{a['outcome_audit_seq']} outcome)"]
        for u in self.updates:
            lines.append(f"  {u['ts']}  confidence {u['confidence']:.3f}  effect "
                         f"{u['effect']:+.4f} ({u['ci_low']:+.4f}..{u['ci_high']:+.4f})  "
                         f"{u['status']}")
        lines.append(f"status: {self.status}"
                     + (f" after {self.hours_to_decision} h" if self.hours_to_decision else ""))
        lines.append(self.readout.get("summary", ""))
        lines.append(self.divergence.get("text", ""))
        lines += [f"next: {s}" for s in self.next_steps]
        return "\n".join(x for x in lines if x)


def predicted_restore(world: SimulatedWorld, scope: dict, since: pd.Timestamp) -> tuple:
    """What reverting should restore: the metric in scope before ``since`` minus after.

    The "before" is the same hours one week earlier, so seasonality cancels.
    Returns ``(delta, rate_after, sessions_per_hour)``.
    """
    ev, t = world.events, world.tcol
    m = in_scope(ev, scope)
    since = pd.Timestamp(since)
    after = ev[m & (ev[t] >= since).to_numpy()]
    before = ev[m & (ev[t] >= since - pd.Timedelta(days=7)).to_numpy()
                & (ev[t] < world.end - pd.Timedelta(days=7)).to_numpy()]
    ra = after[world.num].sum() / max(after[world.den].sum(), 1)
    rb = before[world.num].sum() / max(before[world.den].sum(), 1)
    hours = max(after[t].nunique(), 1)
    return float(rb - ra), float(ra), float(after[world.den].sum() / hours)


def _next_steps(cause: dict, others: list[dict], metric: str, scope: dict) -> list[str]:
    where = ", ".join(f"{k}={v}" for k, v in scope.items()) or "all traffic"
    steps = ["check data quality over the test hours (completeness, duplicates, late "
             "batches) before trusting either reading",
             f"review external factors around the onset of {metric} (campaigns, holidays, "
             "partner outages) that the change log would not show"]
    nxt = [c for c in others if c.get("change_id") != cause.get("change_id")]
    if nxt:
        steps.append(f"test the next hypothesis: {nxt[0]['change_id']} "
                     f"({nxt[0].get('kind', '')} {nxt[0].get('target', '')})".rstrip())
    steps.append(f"add targeted instrumentation in {where} (checkout funnel steps, client "
                 "errors) to see where sessions stop converting")
    return steps


def run_loop(passport, *, metric: str, cause: dict, template: str = "rollback",
             dose: float | None = None, hours: int = 6, workdir: str | Path,
             audit: str | Path, provider: FlagProvider | None = None,
             identity: Identity | None = None, prior: float | None = None,
             other_causes: list[dict] | None = None, alpha: float = 0.05, seed: int = 0,
             on_update: Callable[[dict], None] | None = None, store_db: str | Path | None = None,
             focus: dict | None = None, min_hours: int = 2) -> LoopResult:
    """Launch ``template`` on ``cause``, simulate ``hours`` of micro-batches, update after each.

    Parameters
    ----------
    passport:
        A loaded passport (:func:`workbench.passport.load_passport`) with ground
        truth beside it (the simulated world needs to know how it responds).
    cause:
        One ranked cause of an investigation (``change_id``, ``scope``, ``ts``,
        ``confidence``...).
    workdir:
        Where the flag file, the batch files and the loop's store go.
    audit:
        The audit log (intent, outcome, conclusion).
    on_update:
        Called with each update dict as it is made (the UI streams them).
    focus:
        The slice where the divergence lives (the investigation's top slice).
        The hypothesis "this change caused *this* divergence" predicts the
        restore there, so the readout is made on the units of the change's
        scope inside ``focus`` (a sharper test than over the whole scope when
        the scope is wider, e.g. a deploy everywhere). Ignored when it
        contradicts the scope.
    min_hours:
        Batches watched before any decision (the delta-method variance of a
        few hundred heterogeneous units is not yet normal; Johari et al. 2017
        likewise ask for a minimum sample).
    """
    from ..store import Store

    identity = identity or local_identity()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    provider = provider or FlagdFileProvider(workdir / "flags.json")
    reconciled = reconcile(audit, provider, actor=identity.name)
    world = SimulatedWorld.from_passport(passport, metric=metric, seed=seed)
    spec = passport.manifest.metrics[metric]
    scope = dict(cause.get("scope") or {})
    readout_scope = _narrow(scope, focus)
    since = pd.Timestamp(cause.get("ts") or world.onset)
    # the sign is kept for either direction: reverting a slowdown lowers latency
    delta, rate, sph = predicted_restore(world, readout_scope, since)
    plan = plan_experiment(cause, template=template, metric=metric, expected_effect=delta,
                           rate=rate, sessions_per_hour=sph, dose=dose, hours=hours,
                           guardrails=tuple(g for g in GUARDRAILS if g in
                                            passport.manifest.metrics), alpha=alpha)
    act = Action.ROLLBACK if template == "rollback" else Action.LAUNCH_EXPERIMENT
    rec = launch(provider, plan.flag, dose_flag(scope, plan.dose_at(0)), identity=identity,
                 audit=audit, resource=plan.change_id, action=act,
                 details={"template": template, "dose": plan.dose_at(0), "metric": metric})
    units = world.recruit(scope, prefix=plan.flag)
    ctx = units[["targetingKey", *world.dims]]
    world.assign(units, provider.evaluate(plan.flag, ctx, "kept"), plan.change_id)
    focus_ids = units.loc[in_scope(units, readout_scope), "targetingKey"]
    prior = float(prior if prior is not None else cause.get("confidence") or 0.5)
    spread = abs(delta) / 4 or 1e-4
    store_path = Path(store_db) if store_db else workdir / "store.duckdb"
    cum = None
    updates, batches, status, decided_at, readout = [], [], "undecided", None, None
    # guardrails read per unit (the world gives every measure per unit)
    guard_cols = {g: GUARDRAILS[g] for g in plan.guardrails if GUARDRAILS[g][0] in world.measures}
    with Store(store_path) as st:
        st.ingest(passport)
        for h in range(plan.duration_hours):
            if h and plan.dose_at(h) != plan.dose_at(h - 1):  # the ramp's next step
                launch(provider, plan.flag, dose_flag(scope, plan.dose_at(h)),
                       identity=identity, audit=audit, resource=plan.change_id, action=act,
                       details={"template": template, "dose": plan.dose_at(h), "step": h})
                before = world.units.set_index("targetingKey")["variant"]
                world.assign(units, provider.evaluate(plan.flag, ctx, "kept"), plan.change_id)
                moved = before.index[before.to_numpy()
                                     != world.units["variant"].to_numpy()]
                if cum is not None and len(moved):
                    # a unit that changed arm starts afresh: its earlier hours were the
                    # other arm's; the readout stays one sequence over comparable units
                    cum.loc[cum.index.isin(moved)] = 0
            ts = world.end + pd.Timedelta(hours=h)
            events, u = world.step(ts)
            f = workdir / "batches" / f"{plan.flag}-{ts:%Y%m%dT%H}.parquet"
            f.parent.mkdir(exist_ok=True)
            events.to_parquet(f, index=False)
            st.ingest(passport, batch_files=[f])
            batches.append(str(f))
            u = u.set_index("unit_id")
            counts = u.drop(columns="variant")
            cum = counts if cum is None else cum.add(counts, fill_value=0)
            units_now = _with_covariate(cum.assign(variant=u["variant"]), world)
            seen = units_now[(units_now[world.den] > 0)
                             & units_now["unit_id"].isin(focus_ids)]
            readout = read_experiment(seen, metric=(world.num, world.den),
                                      covariate=("pre_" + world.num, "pre_" + world.den),
                                      control="kept", alpha=alpha, tau=abs(delta) or 1e-3,
                                      better=spec.better, name=metric,
                                      guardrails=guard_cols, experiment=plan.flag)
            c = readout.primary
            var = c.cuped_se ** 2
            bf = float(hypothesis_bayes_factor(c.cuped_effect, var, delta=delta, spread=spread))
            conf = float(update_confidence(prior, bf))
            restoring = (c.seq_low > 0) if delta > 0 else (c.seq_high < 0)
            if h + 1 < min_hours:
                pass  # burn-in: the normal approximation needs a few batches first
            elif restoring:
                status = "confirmed"
            elif bf <= alpha:
                status = "refuted"
            if any(g["failed"] for g in readout.guardrails):
                status = "stopped-guardrail" if status == "undecided" else status
            upd = {"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "hour": h + 1,
                   "dose": plan.dose_at(h), "confidence": round(conf, 6),
                   "bayes_factor": bf, "effect": c.cuped_effect, "ci_low": c.seq_low,
                   "ci_high": c.seq_high, "status": status,
                   "units": int(len(seen)), "arms": _arm_rates(u, focus_ids, world),
                   "hypotheses": board_update(other_causes or [cause], plan.change_id, prior,
                                              conf)}
            updates.append(upd)
            if on_update:
                on_update(upd)
            if status != "undecided":
                decided_at = h + 1
                break
        divergence = _divergence_after(st, passport, spec, readout_scope, world, ts, h + 1)
    guard = status == "stopped-guardrail"
    final = "undecided" if guard else status  # a guardrail stop decides nothing about the cause
    steps = (_next_steps(cause, other_causes or [], metric, readout_scope)
             if divergence["persists"] and final != "confirmed" else [])
    if guard:
        steps.insert(0, "a guardrail showed harm: the test was stopped; revert the test flag")
    if final == "confirmed":
        steps = [f"roll back {plan.change_id} for all of its scope and watch {metric} recover"]
    concl = record_outcome(audit, rec, identity=identity, resource=plan.change_id, status=final,
                           details={"hours": h + 1, "confidence": updates[-1]["confidence"],
                                    "effect": updates[-1]["effect"],
                                    "divergence_persists": divergence["persists"]})
    action = {"id": rec.idempotency_key, "readout_scope": readout_scope,
              "change_id": plan.change_id, "template": template, "stopped_by_guardrail": guard,
              "dose": plan.dose, "flag": plan.flag, "provider": getattr(provider, "name", "?"),
              "intent_audit_seq": rec.intent_seq, "outcome_audit_seq": rec.outcome_seq,
              "concluded_audit_seq": concl, "launch": rec.status, "actor": identity.name}
    return LoopResult(action=action, status=final, updates=tuple(updates),
                      readout=readout.to_dict(), plan=plan.to_dict(),
                      hours_to_decision=decided_at, divergence=divergence,
                      next_steps=tuple(steps), reconciled=tuple(reconciled),
                      store=str(store_path), batches=tuple(batches))


def _arm_rates(hour: pd.DataFrame, focus_ids: pd.Series, world: SimulatedWorld) -> dict:
    """This hour's metric in the readout scope per arm (``{variant: rate}``): what the
    page's timeline draws next to the observed metric as the test runs."""
    g = hour[hour.index.isin(focus_ids)].groupby("variant")[[world.num, world.den]].sum()
    rate = g[world.num] / g[world.den].where(g[world.den] > 0)
    return {str(k): (None if pd.isna(v) else float(v)) for k, v in rate.items()}


def board_update(causes: list[dict], tested: str, prior: float, posterior: float) -> list[dict]:
    """Every ranked hypothesis's confidence after the test of one of them.

    The causes are exclusive explanations (with "outside the log" taking the
    rest), so the test's Bayes factor moves the tested one from ``prior`` to
    ``posterior`` and scales every other by ``(1 - posterior) / (1 - prior)``.
    """
    rest = (1 - posterior) / max(1 - prior, 1e-12)
    return [{"change_id": c["change_id"],
             "confidence": round(posterior if c["change_id"] == tested
                                 else float(c.get("confidence") or 0.0) * rest, 6)}
            for c in causes]


def _narrow(scope: dict, focus: dict | None) -> dict:
    """``scope`` restricted to ``focus`` (scope wins on a dimension both name)."""
    if not focus:
        return dict(scope)
    for k, v in focus.items():
        if k in scope:
            sv = scope[k] if isinstance(scope[k], (list, tuple)) else [scope[k]]
            fv = v if isinstance(v, (list, tuple)) else [v]
            if not set(map(str, sv)) & set(map(str, fv)):
                return dict(scope)  # the change cannot reach the focus: read its whole scope
    return {**focus, **scope}


def _with_covariate(cum: pd.DataFrame, world: SimulatedWorld) -> pd.DataFrame:
    pre = world.units.set_index("targetingKey")
    out = cum.join(pre[["pre_" + world.num, "pre_" + world.den]], how="left")
    return out.reset_index().rename(columns={"index": "unit_id"})


def _divergence_after(st, passport, spec, scope: dict, world: SimulatedWorld,
                      last: pd.Timestamp, n_hours: int) -> dict:
    """Does the metric still diverge in scope over the test hours? Read back from the store."""
    from ..store.queries import metric_series

    sp = st.passport(passport.manifest.name)
    start = last - pd.Timedelta(hours=n_hours - 1)
    s = metric_series(st.con, sp, spec, filter=scope or None, start=start,
                      end=last + pd.Timedelta(hours=1)).to_frame()
    num, den = float(s["num"].sum()), float(s["den"].sum())
    exp_num = exp_den = 0.0
    for k in range(n_hours):
        a, b = world.expected_rate(start + pd.Timedelta(hours=k), scope)
        exp_num, exp_den = exp_num + a, exp_den + b
    obs, exp = num / max(den, 1), exp_num / max(exp_den, 1)
    se = math.sqrt(max(exp * (1 - exp), 1e-12) / max(den, 1))
    z = (obs - exp) / se
    bad = z < -3 if spec.better == "higher" else z > 3
    where = ", ".join(f"{k}={v}" for k, v in scope.items()) or "all traffic"
    text = (f"{spec.name} in {where} over the test hours: {obs:.4g} against {exp:.4g} "
            f"expected without the incident ({(obs - exp) / exp:+.1%}, z={z:.1f}): "
            + ("the divergence persists." if bad else "no divergence left."))
    return {"scope": scope, "observed": obs, "expected": exp, "z": float(z),
            "persists": bool(bad), "text": text, "hours": int(n_hours)}


__all__ = ["LoopResult", "run_loop", "predicted_restore"]
