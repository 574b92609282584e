"""Generate product telemetry passports with injected, known root causes.

Each call writes one passport directory (``passport.yaml``, ``events.parquet``,
``changes.jsonl``; see ``shared/spec/passport.md``) plus a ``truth.json`` that
says what really happened, so that detection, localization and attribution can
be scored against ground truth.

Generative model
----------------
1. **World.** :func:`workbench.synth._world.build_world` gives the expected
   sessions ``lam[t, l]``, conversion probability ``p[t, l]``, order value and
   mean latency ``mu[t, l]`` of every hour ``t`` and leaf ``l`` (15 countries in
   4 regions x 10 platform/app-version/browser combinations x 3 plans = 450
   leaves): heavy-tailed countries, daily profiles read at local time, weekend
   effects, a slow trend and app-version adoption.
2. **Incident.** A family builder bends those expectations from the onset on
   (multipliers on ``lam``, ``p`` or ``mu`` over a slice) or marks rows to drop
   or duplicate after sampling, and returns the culprit change rows (if any)
   and the ground truth. The onset is drawn uniformly on the hour in the last
   2-4 days, so at least two weeks of clean baseline precede it at the default
   21 days. Slices and magnitudes are drawn per seed, and a slice is only
   accepted when the injected effect is at least about 6 standard errors over
   the incident window (``details.expected_z`` in ``truth.json``).
3. **Sampling.** ``sessions ~ Poisson(lam * m)`` where ``m`` is a log-normal
   AR(1) overdispersion shared by an hour (sd 2 %) and by a country-hour
   (sd 3 %); ``conversions ~ Binomial(sessions, p)``; revenue is a sum of
   gamma-distributed orders (``Gamma(2 * conversions, aov / 2)``, coefficient
   of variation 0.7 per order) and ``latency_ms_sum`` a sum of gamma
   session latencies (``Gamma(4 * sessions, mu * r / 4)`` with ``r`` a region-hour
   AR(1) factor of sd 3 %). Every leaf appears every hour, with explicit zero
   rows, unless the incident removes rows (``ingestion_gap``).
4. **Change log.** A busy background log (15-40 changes a day), decoys within
   +-6 h of the onset and the culprit rows; see
   :mod:`workbench.synth._changes`. Only culprit rows have an effect.

Families
--------
``scoped_change``
    A flag, config or deploy scoped to a conjunction lowers conversion there by
    25-60 %. Verdict ``change``.
``staged_rollout``
    A flag ramped 10 % -> 50 % -> 100 % (12-24 h apart) within a scope; the drop
    in the scope's conversion is proportional to the exposed share. Verdict
    ``change``; ``effect`` is the drop at full exposure.
``latency_regression``
    An infra or config change in one region raises latency per session there by
    30-120 %. Verdict ``change``.
``external``
    A traffic surge or drop in a country or region, or a conversion drop in one
    country, with no change in the log that touches that slice. Verdict
    ``external``.
``ingestion_gap``
    All rows of a region or country are absent for 3-10 consecutive hours.
    Verdict ``data_quality``.
``duplicated_batch``
    All rows of 2-8 consecutive hours (everywhere or in one region) appear twice.
    Verdict ``data_quality``.
``mix_shift``
    Traffic to a platform/plan slice is multiplied from the onset on while every
    leaf converts as before, so the overall conversion rate moves by 10-20 %.
    Verdict ``mix_shift``; ``effect`` is the relative change of the *overall*
    conversion rate (the slice's own rate does not move).
``quiet``
    Nothing happens (decoys are still clustered somewhere in the last days).
    Verdict ``none``.

References
----------
The design of injected anomalies with ground truth in multi-dimensional data
follows the benchmark generators of Squeeze (Li et al., ISSRE 2019) and RiskLoc
(Kalander, 2022); the rate-versus-mix split of ``mix_shift`` is the Kitagawa
(1955) decomposition.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _changes as ch
from ._truth import write_no_change as _write_no_change
from ._world import (COUNTRIES, COUNTRY_WEIGHT, DIMENSIONS, PLATFORM_VERSIONS, REGION_COUNTRIES,
                     WEB_BROWSERS, PLANS, World, build_world)

FAMILIES: tuple[str, ...] = ("scoped_change", "staged_rollout", "latency_regression", "external",
                             "ingestion_gap", "duplicated_batch", "mix_shift", "quiet")
#: Families the method was never tuned on (:mod:`workbench.synth._heldout`).
HELDOUT_FAMILIES: tuple[str, ...] = ("nested_decoy", "mix_with_deploy", "two_changes",
                                     "delayed_effect", "small_effect", "late_tail",
                                     "external_isolated")
#: Their builders, registered by :mod:`workbench.synth._heldout` (imported with the
#: package), which builds on this module's helpers.
HELDOUT_BUILDERS: dict = {}
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
#: Incidents' periods end on a day drawn from this range (so weekdays vary with the seed).
_FIRST_END_DAY_NS = int(np.datetime64("2026-03-02", "ns").astype(np.int64))
_MIN_Z = 6.0

DEMO_SEED = 20261118
DEMO_NAME = "shop-web-2026-11"


@dataclass
class _Plan:
    """What a family builder returns: how to bend the world and what the truth is."""

    metric: str
    verdict: str
    onset: int | None
    end: int | None
    slice: dict | None
    effect: float
    description: str
    anchor: int
    culprits: list[dict] = field(default_factory=list)
    service: str | None = None
    sibling_kind: str | None = None
    lam_mult: np.ndarray | None = None
    p_mult: np.ndarray | None = None
    lat_mult: np.ndarray | None = None
    drop: np.ndarray | None = None
    dup: np.ndarray | None = None
    details: dict = field(default_factory=dict)
    # held-out families (workbench.synth._heldout): the slice the change log keeps
    # clear of overlapping changes (default: ``slice``), extra hours to keep clear
    # around, whether ``slice`` is scored, and verdicts also accepted as right
    log_slice: dict | None = None
    protect: list = field(default_factory=list)
    score_slice: bool = True
    accept: tuple = ()


# ----------------------------------------------------------------------------- helpers

def _scope_label(scope: dict | None) -> str:
    return ch.scope_text(scope or {})


def _conv_z(world: World, mask: np.ndarray, t0: int, t1: int, exposure=None) -> float:
    """Signal-to-noise of a unit relative drop in conversions over ``[t0, t1)`` in ``mask``.

    Multiply by the relative effect to get the z of the injected change: with
    ``C_t`` expected conversions per hour and exposure ``x_t``,
    ``z = e * sum(x_t C_t) / sqrt(sum(C_t))`` (binomial noise).
    """
    conv = (world.lam[t0:t1, mask] * world.p[t0:t1, mask]).sum(axis=1)
    x = np.ones_like(conv) if exposure is None else exposure
    return float((x * conv).sum() / np.sqrt(max(conv.sum(), 1e-9)))


def _sessions_z(world: World, mask: np.ndarray, t0: int, t1: int) -> float:
    """Signal-to-noise of a unit relative change of sessions (Poisson plus AR(1) wobble)."""
    s = world.lam[t0:t1, mask].sum(axis=1)
    # 4% hourly wobble, variance of a sum inflated 4x by the AR(1) autocorrelation
    var = s.sum() + 4.0 * ((0.04 * s) ** 2).sum()
    return float(s.sum() / np.sqrt(max(var, 1e-9)))


def _latency_z(world: World, mask: np.ndarray, t0: int, t1: int) -> float:
    """Signal-to-noise of a unit relative change of latency per session."""
    s = np.maximum(world.lam[t0:t1, mask].sum(axis=1), 1e-9)
    rel_var = 1.0 / (4.0 * s) + 4.0 * 0.03 ** 2
    return float(len(s) / np.sqrt(rel_var.sum()))


def _window_mult(world: World, mask: np.ndarray, t0: int, t1: int, factor) -> np.ndarray:
    """Multiplier array equal to ``factor`` in ``[t0, t1) x mask``, 1 elsewhere."""
    out = np.ones((world.hours, world.leaves.n))
    fac = np.asarray(factor, dtype=float)
    out[t0:t1, mask] = fac[:, None] if fac.ndim == 1 else fac
    return out


def _conversion_candidates(template: str) -> list[dict]:
    if template == "platform_version":
        return [{"platform": k, "app_version": v} for k in ("ios", "android")
                for v in PLATFORM_VERSIONS[k]]
    if template == "country":
        return [{"country": c} for c in COUNTRIES]
    if template == "platform":
        return [{"platform": k} for k in ("ios", "android", "web")]
    if template == "country_platform":
        return [{"country": c, "platform": k} for c in COUNTRIES for k in ("ios", "android", "web")]
    if template == "web_browser":
        return [{"platform": "web", "browser": b} for b in WEB_BROWSERS]
    if template == "region":
        return [{"region": r} for r in REGION_COUNTRIES]
    if template == "plan":
        return [{"plan": q} for q in PLANS]
    if template == "platform_plan":
        return [{"platform": k, "plan": q} for k in ("ios", "android", "web") for q in PLANS]
    raise ValueError(template)  # pragma: no cover


_CONV_TEMPLATES = ("platform_version", "country", "platform", "country_platform", "web_browser",
                   "region", "plan", "platform_plan")


def _pick_conversion_slice(rng, world, t0, t1, e_lo, e_hi, *, templates=_CONV_TEMPLATES,
                           exposure=None, max_share=0.5):
    """Draw a template, then a slice whose drop of at least ``e_lo`` is >= 6 sigma.

    Returns ``(slice, mask, z_per_unit_effect, e_min)``. If no slice of any
    template qualifies (tiny ``scale``), the most detectable one is used.
    """
    total = world.lam[t0:t1].sum()
    best = None
    for ti in rng.permutation(len(templates)):
        feasible = []
        for cand in _conversion_candidates(templates[int(ti)]):
            mask = world.leaves.mask(cand)
            share = world.lam[t0:t1, mask].sum() / total
            if not mask.any() or share > max_share or share < 0.004:
                continue
            z1 = _conv_z(world, mask, t0, t1, exposure)
            e_min = _MIN_Z / z1
            if best is None or e_min < best[3]:
                best = (cand, mask, z1, e_min)
            if e_min <= e_hi * 0.9:
                feasible.append((cand, mask, z1, max(e_min, e_lo)))
        if feasible:
            return feasible[int(rng.integers(len(feasible)))]
    return best


# ----------------------------------------------------------------------------- families

def _fam_scoped_change(rng, world, onset, hours) -> _Plan:
    slice_, mask, z1, e_min = _pick_conversion_slice(rng, world, onset, hours, 0.25, 0.60)
    e = float(rng.uniform(max(0.25, min(e_min, 0.6)), 0.60))
    options = [("flag", t) for t in ("new_checkout_flow", "one_click_pay", "address_autocomplete_v2",
                                     "saved_cards_v2", "guest_checkout")]
    options += [("config", t) for t in ("checkout.payment_methods", "payments.3ds_challenge_policy")]
    if set(slice_) <= {"country", "region"}:
        options += [("deploy", "checkout-api"), ("deploy", "payments-svc")]
    kind, target = options[int(rng.integers(len(options)))]
    service = ch.FLAGS.get(target) or (ch.CONFIGS[target][0] if target in ch.CONFIGS else target)
    author = ch.AUTHORS[int(rng.integers(12))]  # a person, not a bot
    row = ch.make_change(rng, onset, kind, scope=dict(slice_), target=target, role="culprit",
                         rollout=100.0 if kind == "flag" else None, author=author)
    return _Plan(
        metric="conversion_rate", verdict="change", onset=onset, end=hours, slice=dict(slice_),
        effect=-e, anchor=onset, culprits=[row], service=service,
        p_mult=_window_mult(world, mask, onset, hours, 1.0 - e),
        description=(f"{kind} {target} ({{culprits}}) scoped to {_scope_label(slice_)} lowers "
                     f"conversion there by {e:.0%} from {{onset}} on"),
        details={"expected_z": round(e * z1, 1), "change_kind": kind, "target": target})


def _fam_staged_rollout(rng, world, onset, hours) -> _Plan:
    # the onset is >= 48 h before the end, so two steps of 12 h up to 24 h (20 h when
    # the onset is late) always fit with at least 8 h of full exposure left
    hi = min(24, (hours - onset - 8) // 2)
    d1, d2 = int(rng.integers(12, hi + 1)), int(rng.integers(12, hi + 1))
    t1, t2 = onset + d1, onset + d1 + d2
    exposure = np.ones(hours - onset)
    exposure[: t1 - onset] = 0.10
    exposure[t1 - onset: t2 - onset] = 0.50
    slice_, mask, z1, e_min = _pick_conversion_slice(
        rng, world, onset, hours, 0.30, 0.60,
        templates=("platform_version", "country", "platform", "country_platform", "web_browser",
                   "platform_plan"), exposure=exposure)
    e = float(rng.uniform(max(0.30, min(e_min, 0.6)), 0.60))
    target = ("new_checkout_flow", "one_click_pay", "saved_cards_v2",
              "address_autocomplete_v2")[int(rng.integers(4))]
    author = ch.AUTHORS[int(rng.integers(12))]
    rows = [ch.make_change(rng, t, "flag", scope=dict(slice_), target=target, role="culprit",
                           rollout=r, author=author)
            for t, r in ((onset, 10.0), (t1, 50.0), (t2, 100.0))]
    return _Plan(
        metric="conversion_rate", verdict="change", onset=onset, end=hours, slice=dict(slice_),
        effect=-e, anchor=onset, culprits=rows, service=ch.FLAGS[target],
        p_mult=_window_mult(world, mask, onset, hours, 1.0 - e * exposure),
        description=(f"flag {target} ramped 10% -> 50% -> 100% of {_scope_label(slice_)} "
                     f"({{culprits}}); conversion in the scope falls by {e:.0%} x exposed share"),
        details={"expected_z": round(e * z1, 1), "rollout_hours": [onset, t1, t2],
                 "effect_at_rollout": {"10": round(-0.1 * e, 4), "50": round(-0.5 * e, 4),
                                       "100": round(-e, 4)}})


def _fam_latency_regression(rng, world, onset, hours) -> _Plan:
    region = tuple(REGION_COUNTRIES)[int(rng.integers(len(REGION_COUNTRIES)))]
    slice_ = {"region": region}
    mask = world.leaves.mask(slice_)
    e = float(rng.uniform(0.30, 1.20))
    if rng.random() < 0.65:
        kind, target = "infra", ch.INFRA[region][int(rng.integers(len(ch.INFRA[region])))]
        service = None
    else:
        kind = "config"
        target = ("cdn.cache_ttl_s", "checkout.timeout_ms", "payments.retry_max")[int(rng.integers(3))]
        service = ch.CONFIGS[target][0]
    row = ch.make_change(rng, onset, kind, scope=dict(slice_), target=target, role="culprit",
                         author=("terraform-ci" if kind == "infra" else ch.AUTHORS[int(rng.integers(12))]))
    return _Plan(
        metric="latency_ms", verdict="change", onset=onset, end=hours, slice=slice_, effect=e,
        anchor=onset, culprits=[row], service=service, sibling_kind="infra",
        lat_mult=_window_mult(world, mask, onset, hours, 1.0 + e),
        description=(f"{kind} change on {target} ({{culprits}}) raises latency per session in "
                     f"{region} by {e:.0%} from {{onset}} on"),
        details={"expected_z": round(e * _latency_z(world, mask, onset, hours), 1),
                 "change_kind": kind, "target": target})


def _fam_external(rng, world, onset, hours) -> _Plan:
    variant = ("surge", "drop", "conversion")[int(rng.integers(3))]
    if variant == "conversion":
        slice_, mask, z1, e_min = _pick_conversion_slice(rng, world, onset, hours, 0.20, 0.45,
                                                         templates=("country",))
        e = -float(rng.uniform(max(0.20, min(e_min, 0.45)), 0.45))
        return _Plan(
            metric="conversion_rate", verdict="external", onset=onset, end=hours,
            slice=dict(slice_), effect=e, anchor=onset,
            p_mult=_window_mult(world, mask, onset, hours, 1.0 + e),
            description=(f"outage of a local payment provider in {slice_['country']} (not in the "
                         f"change log) lowers conversion there by {-e:.0%} from {{onset}} on"),
            details={"expected_z": round(-e * z1, 1), "variant": variant})
    if rng.random() < 0.3:
        slice_ = {"region": tuple(REGION_COUNTRIES)[int(rng.integers(len(REGION_COUNTRIES)))]}
    else:
        big = tuple(c for c in COUNTRIES if COUNTRY_WEIGHT[c] >= 0.025)
        slice_ = {"country": big[int(rng.integers(len(big)))]}
    mask = world.leaves.mask(slice_)
    where = _scope_label(slice_)
    if variant == "surge":
        e = float(rng.uniform(0.35, 1.0))
        text = (f"traffic surge in {where} from press coverage (not in the change log): "
                f"sessions +{e:.0%} from {{onset}} on, conversion per leaf unchanged")
    else:
        e = -float(rng.uniform(0.25, 0.60))
        text = (f"regional connectivity outage at ISPs in {where} (not in the change log): "
                f"sessions {e:.0%} from {{onset}} on")
    return _Plan(
        metric="sessions", verdict="external", onset=onset, end=hours, slice=slice_, effect=e,
        anchor=onset, lam_mult=_window_mult(world, mask, onset, hours, 1.0 + e), description=text,
        details={"expected_z": round(abs(e) * _sessions_z(world, mask, onset, hours), 1),
                 "variant": variant})


def _fam_ingestion_gap(rng, world, onset, hours) -> _Plan:
    if rng.random() < 0.6:
        slice_ = {"region": tuple(REGION_COUNTRIES)[int(rng.integers(len(REGION_COUNTRIES)))]}
    else:
        big = sorted(COUNTRIES, key=lambda c: -COUNTRY_WEIGHT[c])[:8]
        slice_ = {"country": big[int(rng.integers(len(big)))]}
    length = int(rng.integers(3, 11))
    end = min(onset + length, hours)
    mask = world.leaves.mask(slice_)
    drop = np.zeros((world.hours, world.leaves.n), dtype=bool)
    drop[onset:end, mask] = True
    return _Plan(
        metric="sessions", verdict="data_quality", onset=onset, end=end, slice=slice_,
        effect=-1.0, anchor=onset, drop=drop,
        description=(f"ingestion gap: every row of {_scope_label(slice_)} is missing for "
                     f"{end - onset} hours from {{onset}} (rows absent from events)"),
        details={"expected_z": round(_sessions_z(world, mask, onset, end), 1),
                 "missing_hours": end - onset,
                 "missing_rows": int(drop.sum())})


def _fam_duplicated_batch(rng, world, onset, hours) -> _Plan:
    if rng.random() < 0.4:
        slice_: dict = {}
    else:
        slice_ = {"region": tuple(REGION_COUNTRIES)[int(rng.integers(len(REGION_COUNTRIES)))]}
    length = int(rng.integers(2, 9))
    end = min(onset + length, hours)
    mask = world.leaves.mask(slice_)
    dup = np.zeros((world.hours, world.leaves.n), dtype=bool)
    dup[onset:end, mask] = True
    return _Plan(
        metric="sessions", verdict="data_quality", onset=onset, end=end, slice=slice_,
        effect=1.0, anchor=onset, dup=dup,
        description=(f"duplicated batch: every row of {_scope_label(slice_)} for {end - onset} "
                     f"hours from {{onset}} was loaded twice (exact duplicate rows)"),
        details={"expected_z": round(_sessions_z(world, mask, onset, end), 1),
                 "duplicated_hours": end - onset, "duplicated_rows": int(dup.sum())})


_MIX_CANDIDATES = ({"platform": "web", "plan": "free"}, {"plan": "free"}, {"plan": "pro"},
                   {"platform": "android"}, {"platform": "android", "plan": "free"},
                   {"platform": "ios", "plan": "pro"}, {"platform": "web", "plan": "pro"})


def _fam_mix_shift(rng, world, onset, hours) -> _Plan:
    lam, p = world.lam[onset:hours], world.p[onset:hours]
    d_lo, d_hi, f_max = 0.10, 0.20, 5.0
    chosen = None
    for i in rng.permutation(len(_MIX_CANDIDATES)):
        slice_ = _MIX_CANDIDATES[int(i)]
        mask = world.leaves.mask(slice_)
        S, Cs = lam[:, mask].sum(), (lam[:, mask] * p[:, mask]).sum()
        R, Cr = lam[:, ~mask].sum(), (lam[:, ~mask] * p[:, ~mask]).sum()
        c0 = (Cs + Cr) / (S + R)
        d_max = abs((f_max * Cs + Cr) / (f_max * S + R) / c0 - 1.0)
        if d_max >= d_lo:
            chosen = (slice_, mask, S, Cs, R, Cr, c0, d_max)
            break
    if chosen is None:  # pragma: no cover - the candidate list always has a feasible slice
        raise RuntimeError("no feasible mix shift")
    slice_, mask, S, Cs, R, Cr, c0, d_max = chosen
    sign = 1.0 if Cs / S > c0 else -1.0
    d = sign * float(rng.uniform(d_lo, min(d_hi, d_max)))
    c1 = c0 * (1.0 + d)
    f = float((c1 * R - Cr) / (Cs - c1 * S))
    z = abs(d) * np.sqrt((lam * p).sum() * (1 + (f - 1) * S / (S + R)))
    return _Plan(
        metric="conversion_rate", verdict="mix_shift", onset=onset, end=hours, slice=dict(slice_),
        effect=d, anchor=onset, lam_mult=_window_mult(world, mask, onset, hours, f),
        description=(f"an unlogged campaign multiplies sessions in {_scope_label(slice_)} by "
                     f"{f:.2f} from {{onset}} on; every leaf converts as before, so the overall "
                     f"conversion rate moves {d:+.0%}"),
        details={"expected_z": round(float(z), 1), "sessions_multiplier": round(f, 4),
                 "slice_effect": 0.0,
                 "slice_rate": round(float(Cs / S), 5), "overall_rate_before": round(float(c0), 5)})


def _fam_quiet(rng, world, onset, hours) -> _Plan:
    return _Plan(metric="conversion_rate", verdict="none", onset=None, end=None, slice=None,
                 effect=0.0, anchor=onset, description="no incident: only harmless changes",
                 details={"expected_z": 0.0})


_BUILDERS = {
    "scoped_change": _fam_scoped_change, "staged_rollout": _fam_staged_rollout,
    "latency_regression": _fam_latency_regression, "external": _fam_external,
    "ingestion_gap": _fam_ingestion_gap, "duplicated_batch": _fam_duplicated_batch,
    "mix_shift": _fam_mix_shift, "quiet": _fam_quiet,
}


# ----------------------------------------------------------------------------- sampling

def _ar1(rng: np.random.Generator, hours: int, k: int, sigma: float, rho: float) -> np.ndarray:
    """Stationary AR(1) paths, shape (hours, k), marginal sd ``sigma``."""
    eps = rng.normal(0.0, sigma * np.sqrt(1 - rho ** 2), size=(hours, k))
    out = np.empty_like(eps)
    out[0] = rng.normal(0.0, sigma, size=k)
    for t in range(1, hours):
        out[t] = rho * out[t - 1] + eps[t]
    return out


def _sample(world: World, plan: _Plan, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Observed measures for every (hour, leaf), shape (hours, n_leaves)."""
    lv = world.leaves
    H = world.hours
    lam = world.lam if plan.lam_mult is None else world.lam * plan.lam_mult
    p = world.p if plan.p_mult is None else np.clip(world.p * plan.p_mult, 0.0, 1.0)
    mu = world.lat if plan.lat_mult is None else world.lat * plan.lat_mult
    g = _ar1(rng, H, 1, 0.02, 0.8)
    c = _ar1(rng, H, len(lv.vocab["country"]), 0.03, 0.6)
    wobble = np.exp(g + c[:, lv.codes["country"]] - 0.5 * (0.02 ** 2 + 0.03 ** 2))
    sessions = rng.poisson(lam * wobble)
    conversions = rng.binomial(sessions, p)
    revenue = np.round(rng.gamma(2.0 * conversions, world.aov[None, :] / 2.0), 2)
    r = _ar1(rng, H, len(lv.vocab["region"]), 0.03, 0.7)
    slow = np.exp(r[:, lv.codes["region"]] - 0.5 * 0.03 ** 2)
    latency = np.round(rng.gamma(4.0 * sessions, mu * slow / 4.0), 1)
    return {"sessions": sessions.astype(np.int64), "conversions": conversions.astype(np.int64),
            "revenue": revenue, "latency_ms_sum": latency}


# ----------------------------------------------------------------------------- writing

def _write_events(path: Path, world: World, measures: dict[str, np.ndarray], plan: _Plan) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    H, L = world.hours, world.leaves.n
    keep = np.ones(H * L, dtype=bool) if plan.drop is None else ~plan.drop.ravel()
    idx = np.flatnonzero(keep)
    if plan.dup is not None:
        idx = np.concatenate([idx, np.flatnonzero(plan.dup.ravel() & keep)])
        idx = idx[np.argsort(idx, kind="stable")]
    t, leaf = np.divmod(idx, L)
    lv = world.leaves
    cols = {"ts": pa.array(world.start_ns // 1000 + t * 3_600_000_000,
                           type=pa.timestamp("us", tz="UTC"))}
    for name in ("region",) + DIMENSIONS:
        codes = pa.array(lv.codes[name][leaf], type=pa.int32())
        cols[name] = pa.DictionaryArray.from_arrays(
            codes, pa.array(lv.vocab[name], type=pa.string())).dictionary_decode()
    for name, arr in measures.items():
        cols[name] = pa.array(arr.ravel()[idx])
    pq.write_table(pa.table(cols), path, compression="zstd")
    return len(idx)


def _manifest(name: str, end_ns: int, extra_sources: dict | None = None) -> dict:
    extracted = ch.iso_utc(end_ns + 2 * HOUR_NS + 15 * 60 * 1_000_000_000)
    sources = {
        "events": {
            "origin": "warehouse.analytics.sessions_hourly",
            "extracted_at": extracted,
            "transform": ["drop bot traffic (is_bot = false)",
                          "group by hour (UTC) and dimensions",
                          "map country to region (ref.geo_regions v3)",
                          "convert revenue to EUR at the daily ECB rate"],
        },
        "changes": {
            "origin": "deploy history (argo-cd) + flag audit log (flag-service export) "
                      "+ config-repo commits + infra change calendar",
            "extracted_at": extracted,
            "transform": ["normalize to the passport change schema",
                          "map targeting rules to scope",
                          "truncate time stamps to the hour"],
        },
    }
    sources.update(extra_sources or {})
    return {
        "name": name,
        "time_column": "ts",
        "grain": "1h",
        "dimensions": list(DIMENSIONS),
        "hierarchies": {"region": "country"},
        "measures": {"sessions": {}, "conversions": {}, "revenue": {"unit": "EUR"},
                     "latency_ms_sum": {"unit": "ms"}},
        "metrics": {
            "conversion_rate": {"ratio": ["conversions", "sessions"], "better": "higher"},
            "sessions": {"sum": "sessions", "better": "higher"},
            "revenue": {"sum": "revenue", "better": "higher"},
            "latency_ms": {"ratio": ["latency_ms_sum", "sessions"], "better": "lower"},
        },
        "sources": sources,
    }


class _FlowList(list):
    """A list YAML writes inline (``[a, b]``); other lists are written as blocks."""


def _write_manifest(path: Path, manifest: dict) -> None:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence(
        "tag:yaml.org,2002:seq", v, flow_style=True))

    def inline(node):
        if isinstance(node, dict):
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list) and all(isinstance(x, str) and len(x) < 20 for x in node):
            return _FlowList(node)
        if isinstance(node, list):
            return [inline(x) for x in node]
        return node

    text = yaml.dump(inline(manifest), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, width=120, allow_unicode=False)
    path.write_text(text, encoding="utf-8")


def _write_changes(path: Path, rows: list[dict]) -> None:
    keys = ("id", "ts", "kind", "target", "description", "scope", "rollout", "author")
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in keys}) + "\n")


def _assemble(out_dir: Path, *, name: str, family: str, seed: int, world: World, plan: _Plan,
              rows: list[dict], sample_rng: np.random.Generator,
              extra_sources: dict | None = None) -> dict:
    """Sample, write the passport and truth.json; return the truth dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    measures = _sample(world, plan, sample_rng)
    n_rows = _write_events(out_dir / "events.parquet", world, measures, plan)
    _write_changes(out_dir / "changes.jsonl", rows)
    _write_no_change(out_dir / "no_change.csv", world, plan, measures)
    end_ns = world.hour_ns(world.hours)
    _write_manifest(out_dir / "passport.yaml", _manifest(name, end_ns, extra_sources))
    culprit_ids = [r["id"] for r in rows if r["role"] == "culprit"]
    onset_iso = None if plan.onset is None else ch.iso_utc(world.hour_ns(plan.onset))
    truth = {
        "family": family,
        "seed": int(seed),
        "metric": plan.metric,
        "verdict": plan.verdict,
        "onset": onset_iso,
        "slice": plan.slice if plan.score_slice else None,
        "culprit_ids": culprit_ids,
        "effect": round(float(plan.effect), 4),
        "description": plan.description.format(culprits=", ".join(culprit_ids) or "none",
                                               onset=onset_iso),
        "window": (None if plan.onset is None else
                   [onset_iso, ch.iso_utc(world.hour_ns(plan.end))]),
        "details": {**plan.details, "events_rows": int(n_rows),
                    "period": [ch.iso_utc(world.start_ns), ch.iso_utc(end_ns)],
                    "decoy_ids": [r["id"] for r in rows if r["role"] in ("decoy", "story")]},
    }
    if family in HELDOUT_FAMILIES:  # (the tuning families' truth.json stays as it was)
        truth.update(heldout=True, accept_verdicts=[plan.verdict, *plan.accept])
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth


def _change_log(rng, world: World, plan: _Plan, extra: list[dict] | None = None) -> list[dict]:
    rows = ch.background_changes(rng, world.start_ns, world.hours)
    rows += ch.decoy_changes(rng, plan.anchor, world.hours, plan.slice or None, plan.service,
                             sibling_kind=plan.sibling_kind)
    rows += list(extra or [])
    rows += plan.culprits
    protect = [plan.anchor] + [r["ts"] for r in plan.culprits] + list(plan.protect)
    ch.keep_truth_unambiguous(rng, rows, world.leaves, plan.log_slice or plan.slice or None,
                              protect)
    return ch.finalize_changes(rng, rows, world.start_ns)


# ----------------------------------------------------------------------------- public API

def generate_incident(family: str, seed: int, out_dir: str | Path, *, days: int = 21,
                      scale: float = 1.0, effect_scale: float = 1.0) -> Path:
    """Write one passport with an injected incident of ``family`` and its ``truth.json``.

    Parameters
    ----------
    family:
        One of :data:`FAMILIES`.
    seed:
        Seeds everything; the same ``(family, seed, days, scale)`` gives byte-identical
        files. The world (baseline traffic) depends on ``seed`` only, so families
        generated with one seed share the same shop.
    out_dir:
        Directory to write into (created if missing); it becomes the passport
        directory: ``passport.yaml``, ``events.parquet``, ``changes.jsonl`` and
        ``truth.json`` (ground truth, not part of the passport contract).
    days:
        Length of the period (at least 7; 18 or more leaves two weeks of baseline).
    scale:
        Multiplier on traffic volume (1.0: about 22k sessions an hour).
    effect_scale:
        Power applied to the incident's multipliers (1.0: as the family draws
        them; 0.3: a 40% drop becomes about 14%): weaker, ambiguous incidents
        for calibrating the confidences (``benchmarks/incidents.py
        --effect-scale``). Recorded in ``truth.json`` when not 1.

    Returns
    -------
    Path
        ``out_dir``.

    Examples
    --------
    >>> import json, tempfile
    >>> from workbench.synth import generate_incident
    >>> path = generate_incident("scoped_change", 7, tempfile.mkdtemp())
    >>> json.loads((path / "truth.json").read_text())["verdict"]
    'change'
    """
    builders = {**_BUILDERS, **HELDOUT_BUILDERS}
    if family not in builders:
        raise ValueError(f"unknown incident family {family!r}; valid families are: "
                         + ", ".join(FAMILIES + HELDOUT_FAMILIES))
    if int(days) < 7:
        raise ValueError(f"days must be at least 7 (the incident starts 2-4 days before the "
                         f"end and needs a baseline before it); got {days}")
    if not scale > 0:
        raise ValueError(f"scale must be a positive number; got {scale}")
    if not 0 < effect_scale <= 1:
        raise ValueError(f"effect_scale must be in (0, 1]; got {effect_scale}")
    seed, days = int(seed), int(days)
    fam = FAMILIES.index(family) if family in FAMILIES else 100 + HELDOUT_FAMILIES.index(family)
    world_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    end_ns = _FIRST_END_DAY_NS + int(world_rng.integers(0, 240)) * DAY_NS
    hours = days * 24
    start_ns = end_ns - hours * HOUR_NS
    world = build_world(world_rng, start_ns, hours, float(scale))
    inc_rng = np.random.default_rng(np.random.SeedSequence([seed, 2, fam]))
    onset = hours - int(inc_rng.integers(48, 97))
    plan = builders[family](inc_rng, world, onset, hours)
    if effect_scale != 1:
        _weaken(plan, float(effect_scale))
    chg_rng = np.random.default_rng(np.random.SeedSequence([seed, 3, fam]))
    rows = _change_log(chg_rng, world, plan)
    tag = np.random.default_rng(np.random.SeedSequence([seed, 4, fam])).integers(16 ** 6)
    name = f"shop-synth-{ch.iso_utc(end_ns)[:7]}-{int(tag):06x}"
    _assemble(Path(out_dir), name=name, family=family, seed=seed, world=world, plan=plan,
              rows=rows, sample_rng=np.random.default_rng(np.random.SeedSequence([seed, 1])))
    return Path(out_dir)


def _weaken(plan: _Plan, k: float) -> None:
    """Raise the plan's multipliers to the power ``k`` in place (a weaker incident)."""
    for name in ("lam_mult", "p_mult", "lat_mult"):
        mult = getattr(plan, name)
        if mult is not None:
            setattr(plan, name, np.power(mult, k))
    plan.effect = float(np.sign(plan.effect) * abs((1 + plan.effect) ** k - 1)) \
        if plan.effect > -1 else plan.effect
    plan.details = {**plan.details, "effect_scale": k}


def generate_demo(out_dir: str | Path) -> Path:
    """Write the bundled e-commerce demo passport (deterministic) into ``out_dir``.

    The story: 21 days of a web and app shop ending 2026-11-20. On 2026-11-18 at
    14:00 UTC an engineer switches the flag ``new_checkout_flow`` on for iOS 5.2,
    and checkout conversion on iOS 5.2 drops by about 40 %. Around it: a global
    payments-svc deploy an hour earlier, a search-ranking config change two hours
    later, the android 5.2 release gate opened at 11:00, an eu-west-1 load
    balancer change at 15:00, and a busy background log. An A/B test
    ``checkout_button_color`` runs on web from 2026-11-10 (``experiments.csv``).

    Examples
    --------
    >>> import tempfile
    >>> from workbench.synth import generate_demo
    >>> sorted(p.name for p in generate_demo(tempfile.mkdtemp()).iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['changes.jsonl', 'events.parquet', 'experiments.csv', 'passport.yaml', 'truth.json']
    """
    out = Path(out_dir)
    start_ns = int(np.datetime64("2026-10-31T00:00", "ns").astype(np.int64))
    hours = 21 * 24
    world = build_world(np.random.default_rng(np.random.SeedSequence([DEMO_SEED, 0])),
                        start_ns, hours, 1.0)

    def at(stamp: str) -> int:
        return int((np.datetime64(stamp, "ns").astype(np.int64) - start_ns) // HOUR_NS)

    onset = at("2026-11-18T14:00")
    slice_ = {"platform": "ios", "app_version": "5.2"}
    mask = world.leaves.mask(slice_)
    e = 0.40
    rng = np.random.default_rng(np.random.SeedSequence([DEMO_SEED, 3]))
    culprit = ch.make_change(
        rng, onset, "flag", scope=dict(slice_), target="new_checkout_flow", role="culprit",
        rollout=100.0, author="j.alvarez",
        description="Enable new_checkout_flow for ios 5.2 (one-page checkout, JIRA SHOP-2291)")
    story = [
        ch.make_change(rng, onset - 1, "deploy", scope={}, target="payments-svc", role="story",
                       author="deploy-bot"),
        ch.make_change(rng, onset + 2, "config", scope={}, target="search.ranking.boost_recency",
                       role="story", author="s.nakamura"),
        ch.make_change(rng, at("2026-11-18T11:00"), "flag",
                       scope={"platform": "android", "app_version": "5.2"},
                       target="android_5_2_release_gate", rollout=100.0, role="story",
                       author="m.chen",
                       description="Open the android 5.2 release gate to all android 5.2 users"),
        ch.make_change(rng, at("2026-11-18T15:00"), "infra", scope={"region": "EU"},
                       target="eu-west-1 lb pool", role="story", author="terraform-ci",
                       description="Move eu-west-1 lb pool to c7g instances"),
        ch.make_change(rng, at("2026-11-10T09:00"), "experiment", scope={"platform": "web"},
                       target="checkout_button_color", rollout=100.0, role="story",
                       author="l.dubois",
                       description="Start experiment checkout_button_color (control vs "
                                   "treatment, 50/50 of web)"),
    ]
    plan = _Plan(
        metric="conversion_rate", verdict="change", onset=onset, end=hours, slice=slice_,
        effect=-e, anchor=onset, culprits=[culprit], service="checkout-api",
        p_mult=_window_mult(world, mask, onset, hours, 1.0 - e),
        description=("flag new_checkout_flow switched on for ios 5.2 ({culprits}) at {onset}; "
                     "checkout conversion on ios 5.2 drops by 40%; the payments-svc deploy an "
                     "hour earlier, the search-ranking config two hours later, the android 5.2 "
                     "release gate and the eu-west-1 lb change are harmless"),
        details={"expected_z": round(e * _conv_z(world, mask, onset, hours), 1)})
    # Keep the two hours either side of the flag flip to the story's own rows, so the
    # narrative (deploy at 13:00, flip at 14:00, infra at 15:00, config at 16:00) reads clearly.
    background = [r for r in ch.background_changes(rng, world.start_ns, world.hours)
                  if abs(r["ts"] - onset) > 2]
    rows = background + story + [culprit]
    ch.keep_truth_unambiguous(rng, rows, world.leaves, slice_, [onset])
    rows = ch.finalize_changes(rng, rows, world.start_ns)
    _write_experiments(out / "experiments.csv", np.random.default_rng(
        np.random.SeedSequence([DEMO_SEED, 5])), at("2026-11-10T09:00"), hours, start_ns)
    extracted = ch.iso_utc(world.hour_ns(hours) + 2 * HOUR_NS + 15 * 60 * 1_000_000_000)
    _assemble(out, name=DEMO_NAME, family="scoped_change", seed=DEMO_SEED, world=world,
              plan=plan, rows=rows,
              sample_rng=np.random.default_rng(np.random.SeedSequence([DEMO_SEED, 1])),
              extra_sources={"experiments": {
                  "origin": "experimentation platform assignment log (exp-service)",
                  "extracted_at": extracted,
                  "transform": ["first assignment per unit", "unit ids pseudonymised"]}})
    return out


def _write_experiments(path: Path, rng: np.random.Generator, t0: int, hours: int,
                       start_ns: int, n_units: int = 2000) -> None:
    """Assignments of ``checkout_button_color``: about 2,000 units, 50/50, after ``t0``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    span_s = (hours - t0) * 3600
    secs = np.sort(rng.integers(0, span_s, size=n_units))
    ids = rng.choice(16 ** 8, size=n_units, replace=False)
    treat = rng.random(n_units) < 0.5
    lines = ["ts,unit_id,experiment,variant"]
    base_s = start_ns // 1_000_000_000 + t0 * 3600
    for s, uid, tr in zip(secs, ids, treat):
        stamp = np.datetime_as_string(np.datetime64(int(base_s + s), "s")) + "Z"
        lines.append(f"{stamp},u_{int(uid):08x},checkout_button_color,"
                     f"{'treatment' if tr else 'control'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
