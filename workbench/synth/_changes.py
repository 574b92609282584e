"""A busy, realistic change log with decoys around the incident.

Generative model
----------------
Every day of the period gets 15-32 *background* changes (fewer at weekends),
placed mostly in European and American office hours. Their kind is drawn with
the weights of a typical product organisation (deploys most, then flag flips,
config edits, infra work, experiment launches, the odd known outside event);
their target, scope and description come from templates over the shop's
services, flags, config keys and cloud resources. Scopes are mostly global,
else a platform, an app release, a region, a country (sometimes a list), a web
browser or a plan.

Around the onset of an incident, 4-6 *decoys* are added within +-6 hours: one
scoped to the same dimension as the incident's slice but another value (a
*sibling*), one global deploy of an unrelated service, one change to the
culprit's own service, and a few random ones. Nothing in the log but the
culprit rows has any effect on the data. To keep the ground truth unambiguous,
no background or decoy change whose scope overlaps the incident slice (other
than a global one) is left within +-12 hours of the onset or of a culprit row:
such scopes are drawn again.

Rows are built with an hour index; :func:`finalize_changes` sorts them, gives
them ids ``chg-0001``... in time order, fills in monotone service versions and
renders time stamps as ISO UTC strings.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np

from ._world import (APP_VERSIONS, COUNTRIES, PLANS, REGION_COUNTRIES, REGION_OF, WEB_BROWSERS,
                     Leaves)

SERVICES: tuple[str, ...] = (
    "checkout-api", "payments-svc", "search-svc", "catalog-svc", "cart-svc",
    "recommendations-svc", "auth-svc", "pricing-svc", "web-frontend", "mobile-bff",
    "notifications-svc", "inventory-svc", "shipping-svc", "reviews-svc")
#: Feature flags and the service that evaluates them.
FLAGS: dict[str, str] = {
    "new_checkout_flow": "checkout-api", "one_click_pay": "payments-svc",
    "search_ranking_v2": "search-svc", "recs_carousel_v3": "recommendations-svc",
    "guest_checkout": "checkout-api", "apple_pay_express": "payments-svc",
    "lazy_image_loading": "web-frontend", "dark_mode": "mobile-bff",
    "free_shipping_banner": "pricing-svc", "address_autocomplete_v2": "checkout-api",
    "wishlist_sync": "mobile-bff", "saved_cards_v2": "payments-svc",
    "pdp_video_previews": "catalog-svc", "delivery_eta_badge": "shipping-svc",
}
#: Config keys: service, old value, new value.
CONFIGS: dict[str, tuple[str, str, str]] = {
    "search.ranking.boost_recency": ("search-svc", "0.20", "0.35"),
    "checkout.timeout_ms": ("checkout-api", "8000", "10000"),
    "payments.retry_max": ("payments-svc", "2", "3"),
    "cdn.cache_ttl_s": ("web-frontend", "300", "600"),
    "recs.model_version": ("recommendations-svc", "2026-10-28", "2026-11-04"),
    "pricing.currency_rounding": ("pricing-svc", "half_up", "half_even"),
    "auth.session_ttl_h": ("auth-svc", "12", "24"),
    "catalog.page_size": ("catalog-svc", "24", "36"),
    "checkout.payment_methods": ("checkout-api", "cards,paypal", "wallets,cards,paypal"),
    "payments.3ds_challenge_policy": ("payments-svc", "risk_based", "always"),
    "notifications.push_batch_size": ("notifications-svc", "500", "1000"),
    "inventory.reservation_ttl_min": ("inventory-svc", "15", "20"),
}
#: Cloud resources by region (``None`` = global).
INFRA: dict[str | None, tuple[str, ...]] = {
    "EU": ("eu-west-1 lb pool", "eu-west-1 k8s node pool", "eu-central-1 redis cluster",
           "eu-west-1 postgres replica"),
    "NA": ("us-east-1 lb pool", "us-east-1 k8s node pool", "us-west-2 redis cluster"),
    "APAC": ("ap-southeast-1 lb pool", "ap-northeast-1 k8s node pool"),
    "LATAM": ("sa-east-1 lb pool", "sa-east-1 k8s node pool"),
    None: ("cdn-edge config", "kafka cluster events-prod", "global dns zone"),
}
INFRA_ACTIONS: tuple[str, ...] = (
    "Scale {r} from 12 to 16 nodes", "Rotate TLS certificates on {r}",
    "Upgrade {r} to the 2026-11 base image", "Move {r} to c7g instances",
    "Raise connection limits on {r}", "Apply kernel security patch to {r}",
    "Rebalance {r} across availability zones")
EXPERIMENTS: tuple[str, ...] = (
    "checkout_button_color", "search_autosuggest_layout", "pdp_gallery_size",
    "cart_upsell_module", "homepage_hero_v4", "shipping_threshold_copy")
EXTERNAL_EVENTS: tuple[str, ...] = (
    "Weekly newsletter sent to opted-in subscribers",
    "Supplier price feed refreshed (catalog prices)",
    "Card network announced a maintenance window (no impact expected)",
    "Search engine core update announced",
    "Affiliate partner rotated banner creatives")
DEPLOY_NOTES: tuple[str, ...] = (
    "dependency bumps", "fix flaky retry on timeout", "add request metrics",
    "refactor handlers", "connection pooling tweaks", "i18n string updates",
    "log noise reduction", "feature toggles cleanup", "schema migration (additive)",
    "upgrade HTTP client", "cache key fix")
AUTHORS: tuple[str, ...] = (
    "a.kowalski", "m.chen", "j.alvarez", "s.nakamura", "p.okafor", "l.dubois", "r.singh",
    "e.johansson", "t.mueller", "k.osei", "n.ferreira", "h.yilmaz", "deploy-bot",
    "flag-sync", "terraform-ci")
KIND_WEIGHTS: dict[str, float] = {
    "deploy": 0.46, "flag": 0.22, "config": 0.18, "infra": 0.08, "experiment": 0.04,
    "external": 0.02}
HOUR_NS = 3_600_000_000_000


def iso_utc(ns: int) -> str:
    """ISO 8601 UTC string (``2026-11-18T14:00:00Z``) of nanoseconds since the epoch."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def scope_text(scope: dict) -> str:
    """Human label of a scope for descriptions: ``platform=ios, app_version=5.2``, ``all traffic``."""
    if not scope:
        return "all traffic"
    parts = []
    for dim, val in scope.items():
        parts.append(f"{dim}=" + ("|".join(val) if isinstance(val, (list, tuple)) else str(val)))
    return ", ".join(parts)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def random_scope(rng: np.random.Generator, kind: str) -> dict:
    """A scope drawn from the patterns real changes of this kind use."""
    u = rng.random()
    if kind == "deploy":
        if u < 0.72:
            return {}
        if u < 0.86:
            return {"region": _pick(rng, tuple(REGION_COUNTRIES))} if u < 0.93 else {"platform": "web"}
    if kind == "config":
        if u < 0.6:
            return {}
        if u < 0.8:
            return {"region": _pick(rng, tuple(REGION_COUNTRIES))}
        if u < 0.9:
            return {"country": _pick(rng, COUNTRIES)}
        return {"platform": _pick(rng, ("ios", "android", "web"))}
    if kind == "infra":
        # infra lives in a region (its resources) or is global (CDN, DNS, Kafka)
        return {"region": _pick(rng, tuple(REGION_COUNTRIES))} if u < 0.7 else {}
    if kind == "experiment":
        return _pick(rng, ({}, {"platform": "web"}, {"platform": "ios"}, {"platform": "android"}))
    if kind == "external":
        return _pick(rng, ({}, {"region": _pick(rng, tuple(REGION_COUNTRIES))},
                           {"country": _pick(rng, COUNTRIES)}))
    # flags: the widest variety of targeting rules
    if u < 0.30:
        return {}
    if u < 0.45:
        return {"platform": _pick(rng, ("ios", "android", "web"))}
    if u < 0.57:
        return {"platform": _pick(rng, ("ios", "android")), "app_version": _pick(rng, APP_VERSIONS)}
    if u < 0.64:
        return {"country": _pick(rng, COUNTRIES)}
    if u < 0.69:
        pair = rng.choice(len(COUNTRIES), size=2, replace=False)
        return {"country": [COUNTRIES[int(i)] for i in sorted(pair)]}
    if u < 0.79:
        return {"region": _pick(rng, tuple(REGION_COUNTRIES))}
    if u < 0.87:
        return {"platform": "web", "browser": _pick(rng, WEB_BROWSERS)}
    if u < 0.95:
        return {"plan": _pick(rng, PLANS)}
    return {"country": _pick(rng, COUNTRIES), "platform": _pick(rng, ("ios", "android", "web"))}


ROLLOUT_LADDER: tuple[float, ...] = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)


def _flag_verb(rollout: float) -> str:
    if rollout == 0:
        return "Disable (cleanup)"
    return "Enable" if rollout == 100 else f"Ramp to {rollout:g}%:"


def make_change(rng: np.random.Generator, t: int, kind: str, *, scope: dict | None = None,
                target: str | None = None, role: str = "background",
                rollout: float | None = None, author: str | None = None,
                description: str | None = None) -> dict:
    """One change row (hour index ``t``) of ``kind`` with a realistic target and text."""
    if scope is None:
        scope = random_scope(rng, kind)
    author = author or _pick(rng, AUTHORS)
    where = scope_text(scope)
    if kind == "deploy":
        if target is None:
            target = "web-frontend" if scope.get("platform") == "web" else _pick(rng, SERVICES)
        sha = "".join(_pick(rng, "0123456789abcdef") for _ in range(7))
        region = scope.get("region")
        cell = (f" to the {region} cell" if isinstance(region, str)
                else f" ({where})" if scope and target != "web-frontend" else "")
        text = description or f"Deploy {target} {{version}}{cell} ({sha}): {_pick(rng, DEPLOY_NOTES)}"
        if author in ("flag-sync", "terraform-ci"):
            author = "deploy-bot"
    elif kind == "flag":
        target = target or _pick(rng, tuple(FLAGS))
        if rollout is None:
            # placeholder: finalize_changes walks each flag up its rollout ladder
            rollout = -1.0
            text = description or f"{{flag_verb}} {target} for {where}"
        else:
            text = description or f"{_flag_verb(rollout)} {target} for {where}"
        if author in ("deploy-bot", "terraform-ci"):
            author = "flag-sync"
    elif kind == "config":
        target = target or _pick(rng, tuple(CONFIGS))
        _, old, new = CONFIGS.get(target, ("", "previous", "new"))
        text = description or f"Set {target} = {new} (was {old}) for {where}"
    elif kind == "infra":
        if target is None:
            region = scope.get("region") if isinstance(scope.get("region"), str) else None
            target = _pick(rng, INFRA[region])
        text = description or _pick(rng, INFRA_ACTIONS).format(r=target)
        if author in ("deploy-bot", "flag-sync"):
            author = "terraform-ci"
    elif kind == "experiment":
        target = target or _pick(rng, EXPERIMENTS)
        if rollout is None:
            rollout = float(_pick(rng, (20, 50, 100)))
        text = description or f"Start experiment {target} (2 variants, {rollout:g}% of {where})"
    elif kind == "external":
        target = target or "marketing"
        text = description or _pick(rng, EXTERNAL_EVENTS)
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown change kind {kind!r}")
    return {"ts": int(t), "kind": kind, "target": target, "description": text,
            "scope": scope, "rollout": rollout, "author": author, "role": role}


def background_changes(rng: np.random.Generator, start_ns: int, hours: int) -> list[dict]:
    """The everyday churn: 15-32 changes a day, none of which moves any metric."""
    rows = []
    days = hours // 24 + (hours % 24 > 0)
    kinds = tuple(KIND_WEIGHTS)
    kw = np.array(list(KIND_WEIGHTS.values()))
    hour_w_weekday = np.array([0.25] * 6 + [0.6] + [1.0] * 11 + [0.7] * 4 + [0.35] * 2)
    hour_w_weekend = np.full(24, 0.4)
    start_day = start_ns // (24 * HOUR_NS)
    for d in range(days):
        weekend = (start_day + d + 3) % 7 >= 5
        n = int(rng.integers(15, 21) if weekend else rng.integers(22, 33))
        w = hour_w_weekend if weekend else hour_w_weekday
        hrs = rng.choice(24, size=n, p=w / w.sum())
        ks = rng.choice(len(kinds), size=n, p=kw / kw.sum())
        for h, k in zip(hrs, ks):
            t = d * 24 + int(h)
            if t < hours:
                rows.append(make_change(rng, t, kinds[int(k)]))
    return rows


def sibling_scope(rng: np.random.Generator, slice_: dict) -> dict:
    """Same dimensions as ``slice_`` but another value on one of them (a disjoint scope)."""
    scope = dict(slice_)
    # a web slice with a browser keeps web and varies the browser, so the sibling
    # stays on exactly the slice's dimensions
    dim = "browser" if "browser" in slice_ else _pick(rng, tuple(slice_))
    cur = slice_[dim]
    if dim == "region":
        scope[dim] = _pick(rng, tuple(r for r in REGION_COUNTRIES if r != cur))
    elif dim == "country":
        same = [c for c in REGION_COUNTRIES[REGION_OF[cur]] if c != cur]
        pool = same if same and rng.random() < 0.6 else [c for c in COUNTRIES if c != cur]
        scope[dim] = _pick(rng, tuple(pool))
    elif dim == "platform":
        pool = ("ios", "android") if "app_version" in slice_ else ("ios", "android", "web")
        scope[dim] = _pick(rng, tuple(p for p in pool if p != cur))
        scope.pop("browser", None)  # an app has no web browser
    elif dim == "app_version":
        scope[dim] = _pick(rng, tuple(v for v in APP_VERSIONS if v != cur))
    elif dim == "browser":
        scope[dim] = _pick(rng, tuple(b for b in WEB_BROWSERS if b != cur))
    elif dim == "plan":
        scope[dim] = _pick(rng, tuple(p for p in PLANS if p != cur))
    return scope


def decoy_changes(rng: np.random.Generator, anchor: int, hours: int, slice_: dict | None,
                  service: str | None, *, sibling_kind: str | None = None) -> list[dict]:
    """4-6 harmless changes within +-6 h of ``anchor`` (never at the anchor hour itself).

    ``sibling_kind`` forces the kind of the sibling decoy (e.g. ``infra`` next
    to an infra culprit); by default it is a flag, config or deploy.
    """
    offsets = [o for o in range(-6, 7) if o != 0 and 0 <= anchor + o < hours]
    n = min(int(rng.integers(4, 7)), len(offsets))
    chosen = [int(o) for o in rng.choice(offsets, size=n, replace=False)]
    plan = []
    if slice_:
        plan.append("sibling")
    plan.append("global")
    if service:
        plan.append("same_service")
    plan += ["random"] * max(0, n - len(plan))
    rows = []
    for off, what in zip(chosen, plan):
        t = anchor + off
        if what == "sibling":
            cell = set(slice_) <= {"country", "region"}  # deploys go to geographic cells
            kind = sibling_kind or _pick(rng, ("flag", "flag", "config", "deploy" if cell else "flag"))
            rows.append(make_change(rng, t, kind, scope=sibling_scope(rng, slice_), role="decoy"))
        elif what == "global":
            svc = _pick(rng, tuple(s for s in SERVICES if s != service))
            rows.append(make_change(rng, t, "deploy", scope={}, target=svc, role="decoy"))
        elif what == "same_service":
            if rng.random() < 0.6:
                rows.append(make_change(rng, t, "deploy", scope={}, target=service, role="decoy"))
            else:
                keys = tuple(k for k, v in CONFIGS.items() if v[0] == service) or tuple(CONFIGS)
                rows.append(make_change(rng, t, "config", scope={}, target=_pick(rng, keys),
                                        role="decoy"))
        else:
            kind = _pick(rng, ("deploy", "flag", "config", "infra"))
            rows.append(make_change(rng, t, kind, role="decoy"))
    return rows


def keep_truth_unambiguous(rng: np.random.Generator, rows: list[dict], leaves: Leaves,
                           slice_: dict | None, times: list[int], radius: int = 12) -> None:
    """Redraw, in place, non-global scopes that overlap ``slice_`` near ``times``.

    Also moves any ``external`` background row out of that neighbourhood, since
    a known outside event there would be a competing explanation.
    """
    if not times:
        return
    lo, hi = min(times) - radius, max(times) + radius
    smask = leaves.mask(slice_) if slice_ else None
    for row in rows:
        # culprits and the hand-written rows of the demo story are kept as they are
        if row["role"] in ("culprit", "story") or not lo <= row["ts"] <= hi:
            continue
        if row["kind"] == "external":
            row["kind"] = "deploy"
            row.update(make_change(rng, row["ts"], "deploy", scope={}, role=row["role"]))
            continue
        if smask is None or not row["scope"]:
            continue
        for _ in range(20):
            if not (leaves.mask(row["scope"]) & smask).any():
                break
            new = make_change(rng, row["ts"], row["kind"], role=row["role"])
            row.update(new)
        else:
            row.update(make_change(rng, row["ts"], row["kind"], scope={}, role=row["role"]))


def finalize_changes(rng: np.random.Generator, rows: list[dict], start_ns: int) -> list[dict]:
    """Sort by time (random order within an hour), assign ids and versions, render ISO times.

    Each returned row keeps its ``role`` key; the writer drops it.
    """
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["ts"], float(rng.random())))
    versions: dict[str, list[int]] = {}
    ladders: dict[str, int] = {}
    out = []
    for n, i in enumerate(order, start=1):
        row = dict(rows[i])
        if row["kind"] == "flag" and row["rollout"] == -1.0:
            # a flag moves up its ladder (1 -> 5 -> ... -> 100) per targeting rule,
            # then is cleaned up
            key = row["target"] + json.dumps(row["scope"], sort_keys=True)
            step = ladders.get(key)
            if step is None:
                step = int(rng.choice(len(ROLLOUT_LADDER), p=[0.15, 0.15, 0.15, 0.1, 0.05, 0.4]))
            elif step >= len(ROLLOUT_LADDER) - 1:
                step = -1
            else:
                step = min(step + int(rng.integers(1, 3)), len(ROLLOUT_LADDER) - 1)
            if step < 0:
                ladders.pop(key, None)
            else:
                ladders[key] = step
            row["rollout"] = 0.0 if step < 0 else ROLLOUT_LADDER[step]
            row["description"] = row["description"].replace("{flag_verb}",
                                                            _flag_verb(row["rollout"]))
        if "{version}" in row["description"]:
            ver = versions.setdefault(row["target"], [int(rng.integers(1, 6)),
                                                      int(rng.integers(0, 30)), 0])
            if rng.random() < 0.15:
                ver[1] += 1
                ver[2] = 0
            else:
                ver[2] += 1
            row["description"] = row["description"].replace("{version}", "v%d.%d.%d" % tuple(ver))
        row["id"] = f"chg-{n:04d}"
        row["ts"] = iso_utc(start_ns + row["ts"] * HOUR_NS)
        out.append(row)
    return out
