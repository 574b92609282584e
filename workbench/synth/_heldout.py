"""Held-out incident families: patterns the ranking and verdict rules were never tuned on.

They follow the failure patterns of issue 14 (an independent generator blamed
changes for incidents no change caused). Constants of the method are chosen on
:data:`workbench.synth.generate.FAMILIES` only; these families are scored apart
by ``benchmarks/incidents.py`` with fresh seeds.

``nested_decoy``
    A region or big country drops (sessions or conversion) for an outside
    reason; 1-6 h earlier a harmless change scoped to a part of it (the region
    and an app version, platform or plan) landed. Verdict ``external``.
``mix_with_deploy``
    The ``mix_shift`` family plus a harmless web deploy within an hour of the
    onset. Verdict ``mix_shift``.
``two_changes``
    Two harmful changes with disjoint scopes land 0-3 h apart, each lowering
    conversion in its scope by 25-50%. Verdict ``change``; both are culprits;
    the slice is not scored (either is right).
``delayed_effect``
    A scoped change whose effect starts 2-5 h after it (a cache expiring, a
    batch job). Verdict ``change``; the onset is the effect's start.
``small_effect``
    A scoped change lowering conversion by 2-5% in a large slice. Verdict
    ``change``.
``late_tail``
    Nothing happens, but 30-70% of the rows of the last 3-6 hours have not
    arrived yet. Metric ``sessions``. Verdict ``none`` (``data_quality`` is
    accepted too).
``external_isolated``
    Latency rises in a region (a cloud provider incident) or conversion drops
    on a platform (an app store payment outage), with no change overlapping
    the slice within 12 h and the decoys a day and a half away. Verdict
    ``external``.

Reference: the injected-anomaly design follows the generators of Squeeze (Li
et al., ISSRE 2019) and RiskLoc (Kalander, 2022), as the tuning families do.
"""
from __future__ import annotations

import numpy as np

from . import _changes as ch
from ._world import APP_VERSIONS, COUNTRIES, COUNTRY_WEIGHT, PLANS, REGION_COUNTRIES
from .generate import (HELDOUT_BUILDERS, _Plan, _conv_z, _fam_mix_shift, _latency_z,
                       _pick_conversion_slice, _scope_label, _sessions_z, _window_mult)


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _fam_nested_decoy(rng, world, onset, hours) -> _Plan:
    if rng.random() < 0.5:
        slice_ = {"region": _pick(rng, ("EU", "NA", "APAC", "LATAM"))}
    else:
        big = tuple(c for c in COUNTRIES if COUNTRY_WEIGHT[c] >= 0.05)
        slice_ = {"country": _pick(rng, big)}
    mask = world.leaves.mask(slice_)
    inner = _pick(rng, ({"app_version": _pick(rng, APP_VERSIONS)},
                        {"platform": _pick(rng, ("ios", "android", "web"))},
                        {"plan": _pick(rng, PLANS)}))
    if "app_version" in inner:
        inner = {"platform": _pick(rng, ("ios", "android")), **inner}
    decoy_scope = {**slice_, **inner}
    t_decoy = onset - int(rng.integers(1, 7))
    kind = _pick(rng, ("flag", "config", "deploy"))
    decoy = ch.make_change(rng, t_decoy, kind, scope=decoy_scope, role="story",
                           rollout=100.0 if kind == "flag" else None)
    where = _scope_label(slice_)
    if rng.random() < 0.5:
        e = -float(rng.uniform(0.20, 0.45))
        metric, plan_kw = "sessions", {"lam_mult": _window_mult(world, mask, onset, hours, 1 + e)}
        z = abs(e) * _sessions_z(world, mask, onset, hours)
        text = f"connectivity outage in {where}: sessions {e:.0%} from {{onset}} on"
    else:
        e = -float(rng.uniform(0.20, 0.45))
        metric, plan_kw = "conversion_rate", {"p_mult": _window_mult(world, mask, onset, hours,
                                                                     1 + e)}
        z = abs(e) * _conv_z(world, mask, onset, hours)
        text = f"payment provider outage in {where}: conversion {e:.0%} from {{onset}} on"
    return _Plan(metric=metric, verdict="external", onset=onset, end=hours, slice=slice_,
                 effect=e, anchor=onset, culprits=[decoy], **plan_kw,
                 description=text + f"; a harmless change scoped to {_scope_label(decoy_scope)} "
                                    f"landed {onset - t_decoy} h before",
                 details={"expected_z": round(float(z), 1), "nested_decoy_scope": decoy_scope})


def _fam_mix_with_deploy(rng, world, onset, hours) -> _Plan:
    plan = _fam_mix_shift(rng, world, onset, hours)
    t = onset - int(rng.integers(0, 2))
    deploy = ch.make_change(rng, t, "deploy", scope={"platform": "web"}, target="web-frontend",
                            role="story")
    plan.culprits = [deploy]
    plan.description += "; a harmless web-frontend deploy for platform=web landed at {onset}"
    return plan


def _disjoint_pair(rng, world, onset, hours):
    """Two conversion slices of one template with no leaf in common."""
    for _ in range(20):
        template = _pick(rng, ("country", "platform_version", "web_browser", "platform_plan"))
        a = _pick_conversion_slice(rng, world, onset, hours, 0.25, 0.5, templates=(template,),
                                   max_share=0.35)
        b = _pick_conversion_slice(rng, world, onset, hours, 0.25, 0.5, templates=(template,),
                                   max_share=0.35)
        if a is not None and b is not None and not (a[1] & b[1]).any():
            return a, b
    raise RuntimeError("no disjoint pair of slices")  # pragma: no cover


def _fam_two_changes(rng, world, onset, hours) -> _Plan:
    (sa, ma, za, ea), (sb, mb, zb, eb) = _disjoint_pair(rng, world, onset, hours)
    t_b = onset + int(rng.integers(0, 4))
    e_a = float(rng.uniform(max(0.25, min(ea, 0.5)), 0.5))
    e_b = float(rng.uniform(max(0.25, min(eb, 0.5)), 0.5))
    p_mult = _window_mult(world, ma, onset, hours, 1 - e_a) * \
        _window_mult(world, mb, t_b, hours, 1 - e_b)
    rows = []
    for t, sc, tgt in ((onset, sa, "new_checkout_flow"), (t_b, sb, "saved_cards_v2")):
        rows.append(ch.make_change(rng, t, "flag", scope=dict(sc), target=tgt, role="culprit",
                                   rollout=100.0, author=ch.AUTHORS[int(rng.integers(12))]))
    keys = set(sa) | set(sb)
    log_slice = {k: sorted({str(s[k]) for s in (sa, sb) if k in s}) for k in keys}
    return _Plan(metric="conversion_rate", verdict="change", onset=onset, end=hours,
                 slice=dict(sa), effect=-max(e_a, e_b), anchor=onset, culprits=rows,
                 service="checkout-api", p_mult=p_mult, log_slice=log_slice, score_slice=False,
                 description=(f"two harmful flags ({{culprits}}): {_scope_label(sa)} -{e_a:.0%} "
                              f"from {{onset}}, {_scope_label(sb)} -{e_b:.0%} "
                              f"{t_b - onset} h later"),
                 details={"expected_z": round(min(e_a * za, e_b * zb), 1),
                          "slices": [sa, sb], "times": [onset, t_b]})


def _fam_delayed_effect(rng, world, onset, hours) -> _Plan:
    delay = int(rng.integers(2, 6))
    slice_, mask, z1, e_min = _pick_conversion_slice(rng, world, onset, hours, 0.25, 0.55)
    e = float(rng.uniform(max(0.25, min(e_min, 0.55)), 0.55))
    kind = _pick(rng, ("flag", "config"))
    target = "guest_checkout" if kind == "flag" else "checkout.payment_methods"
    row = ch.make_change(rng, onset - delay, kind, scope=dict(slice_), target=target,
                         role="culprit", rollout=100.0 if kind == "flag" else None,
                         author=ch.AUTHORS[int(rng.integers(12))])
    return _Plan(metric="conversion_rate", verdict="change", onset=onset, end=hours,
                 slice=dict(slice_), effect=-e, anchor=onset - delay, culprits=[row],
                 service="checkout-api", p_mult=_window_mult(world, mask, onset, hours, 1 - e),
                 description=(f"{kind} {target} ({{culprits}}) for {_scope_label(slice_)} lowers "
                              f"conversion there by {e:.0%}, {delay} h after it (from {{onset}})"),
                 details={"expected_z": round(e * z1, 1), "delay_hours": delay})


def _fam_small_effect(rng, world, onset, hours) -> _Plan:
    slice_, mask, z1, e_min = _pick_conversion_slice(
        rng, world, onset, hours, 0.02, 0.05, max_share=0.8,
        templates=("platform", "region", "plan", "platform_plan", "country"))
    e = float(rng.uniform(max(0.02, min(e_min, 0.05)), 0.05))
    kind = _pick(rng, ("flag", "config"))
    target = "address_autocomplete_v2" if kind == "flag" else "payments.3ds_challenge_policy"
    row = ch.make_change(rng, onset, kind, scope=dict(slice_), target=target, role="culprit",
                         rollout=100.0 if kind == "flag" else None,
                         author=ch.AUTHORS[int(rng.integers(12))])
    return _Plan(metric="conversion_rate", verdict="change", onset=onset, end=hours,
                 slice=dict(slice_), effect=-e, anchor=onset, culprits=[row],
                 service="checkout-api", p_mult=_window_mult(world, mask, onset, hours, 1 - e),
                 description=(f"{kind} {target} ({{culprits}}) for {_scope_label(slice_)} lowers "
                              f"conversion there by {e:.1%} from {{onset}} on"),
                 details={"expected_z": round(e * z1, 1)})


def _fam_late_tail(rng, world, onset, hours) -> _Plan:
    k = int(rng.integers(3, 7))
    share = float(rng.uniform(0.3, 0.7))
    drop = np.zeros((world.hours, world.leaves.n), dtype=bool)
    drop[hours - k:] = rng.random((k, world.leaves.n)) < share
    return _Plan(metric="sessions", verdict="none", onset=None, end=None, slice=None,
                 effect=0.0, anchor=onset, drop=drop, accept=("data_quality",),
                 description=(f"no incident; {share:.0%} of the rows of the last {k} hours have "
                              "not arrived yet (late data)"),
                 details={"expected_z": 0.0, "late_hours": k,
                          "missing_share": round(float(drop[hours - k:].mean()), 4)})


def _fam_external_isolated(rng, world, onset, hours) -> _Plan:
    far = max(onset - 36, 24)
    if rng.random() < 0.5:
        slice_ = {"region": _pick(rng, tuple(REGION_COUNTRIES))}
        mask = world.leaves.mask(slice_)
        e = float(rng.uniform(0.3, 1.0))
        return _Plan(metric="latency_ms", verdict="external", onset=onset, end=hours,
                     slice=slice_, effect=e, anchor=far, protect=[onset],
                     lat_mult=_window_mult(world, mask, onset, hours, 1 + e),
                     description=(f"cloud provider incident in {slice_['region']} (not in the "
                                  f"log): latency +{e:.0%} from {{onset}} on"),
                     details={"expected_z": round(e * _latency_z(world, mask, onset, hours), 1)})
    slice_, mask, z1, e_min = _pick_conversion_slice(rng, world, onset, hours, 0.2, 0.45,
                                                     templates=("platform", "platform_version"))
    e = float(rng.uniform(max(0.2, min(e_min, 0.45)), 0.45))
    return _Plan(metric="conversion_rate", verdict="external", onset=onset, end=hours,
                 slice=dict(slice_), effect=-e, anchor=far, protect=[onset],
                 p_mult=_window_mult(world, mask, onset, hours, 1 - e),
                 description=(f"app store payment outage for {_scope_label(slice_)} (not in the "
                              f"log): conversion -{e:.0%} from {{onset}} on"),
                 details={"expected_z": round(e * z1, 1)})


_HELDOUT = {
    "nested_decoy": _fam_nested_decoy, "mix_with_deploy": _fam_mix_with_deploy,
    "two_changes": _fam_two_changes, "delayed_effect": _fam_delayed_effect,
    "small_effect": _fam_small_effect, "late_tail": _fam_late_tail,
    "external_isolated": _fam_external_isolated,
}
HELDOUT_BUILDERS.update(_HELDOUT)  # generate_incident finds them there
