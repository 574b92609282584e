"""The synthetic shop: its leaves and the expected value of every measure.

A *world* is everything about the product that holds before an incident is
injected: which leaves (combinations of dimension values) exist, how many
sessions each is expected to receive in every hour, how often those sessions
convert, what an order is worth and how slow a session is. Nothing here is
random at sampling time; :mod:`workbench.synth.generate` draws the observed
counts from these expectations after an incident has bent them.

Generative model
----------------
Expected sessions of leaf ``l`` (country ``c``, platform ``k``, app version
``v``, browser ``b``, plan ``q``) in hour ``t``::

    lam[t, l] = K * trend(t) * w_c * share(k | c) * share(v | k, t) * share(b | k)
                * share(q | c) * season(t, c, k) * jitter_l

- ``w_c`` is heavy tailed (US about a quarter of traffic, AR one percent),
  perturbed a little per seed.
- ``season`` is a daily profile read at the country's *local* hour (web peaks
  in office hours, apps in the evening) times a weekend factor (web lower,
  apps higher), so regional peaks roll round the UTC clock.
- ``share(v | k, t)`` moves slowly: the newest app version is adopted over the
  period, the oldest fades out.
- ``trend`` is linear over the period with a slope drawn per seed, and ``K``
  is set so that the mean total is ``22,000 * scale`` sessions an hour.
- ``jitter_l`` is a fixed log-normal factor per leaf, so leaves are not exact
  products of their margins.

Conversion probability ``p[t, l]`` is a product of platform, plan, country,
browser and version factors (about 3-5 % overall, free plan and android
lowest, pro plan highest) with a mild evening uplift at the local hour.
Mean latency per session ``mu[t, l]`` depends on region (EU fastest, LATAM
slowest), platform and browser, and rises with local load.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

REGION_COUNTRIES: dict[str, tuple[str, ...]] = {
    "EU": ("DE", "GB", "FR", "IT", "ES", "NL", "PL"),
    "NA": ("US", "CA", "MX"),
    "APAC": ("JP", "IN", "AU"),
    "LATAM": ("BR", "AR"),
}
REGION_OF: dict[str, str] = {c: r for r, cs in REGION_COUNTRIES.items() for c in cs}

#: Share of sessions by country (heavy tailed; sums to 1).
COUNTRY_WEIGHT: dict[str, float] = {
    "US": 0.26, "DE": 0.14, "GB": 0.11, "FR": 0.09, "BR": 0.07, "JP": 0.06, "IN": 0.05,
    "IT": 0.045, "ES": 0.04, "CA": 0.035, "NL": 0.03, "MX": 0.025, "AU": 0.02, "PL": 0.015,
    "AR": 0.01,
}
COUNTRIES: tuple[str, ...] = tuple(COUNTRY_WEIGHT)
#: Hours to add to UTC for the local clock (one zone per country, no DST).
TZ_OFFSET: dict[str, float] = {
    "US": -6, "DE": 1, "GB": 0, "FR": 1, "BR": -3, "JP": 9, "IN": 5.5, "IT": 1, "ES": 1,
    "CA": -5, "NL": 1, "MX": -6, "AU": 10, "PL": 1, "AR": -3,
}
#: Conversion factor by country (local payment habits, basket intent).
COUNTRY_CONV: dict[str, float] = {
    "US": 1.05, "DE": 1.1, "GB": 1.1, "FR": 1.0, "BR": 0.75, "JP": 0.95, "IN": 0.55,
    "IT": 0.9, "ES": 0.9, "CA": 1.0, "NL": 1.05, "MX": 0.7, "AU": 1.0, "PL": 0.85, "AR": 0.65,
}
#: Average order value in EUR by country.
COUNTRY_AOV: dict[str, float] = {
    "US": 85, "DE": 68, "GB": 72, "FR": 62, "BR": 30, "JP": 70, "IN": 18, "IT": 52,
    "ES": 48, "CA": 74, "NL": 65, "MX": 35, "AU": 80, "PL": 38, "AR": 25,
}
#: iOS share of app sessions by country (android takes the rest).
COUNTRY_IOS: dict[str, float] = {
    "US": 0.60, "DE": 0.42, "GB": 0.58, "FR": 0.45, "BR": 0.22, "JP": 0.68, "IN": 0.12,
    "IT": 0.38, "ES": 0.35, "CA": 0.55, "NL": 0.48, "MX": 0.25, "AU": 0.60, "PL": 0.28,
    "AR": 0.20,
}
REGION_LATENCY: dict[str, float] = {"EU": 215.0, "NA": 245.0, "APAC": 320.0, "LATAM": 360.0}

PLATFORMS: tuple[str, ...] = ("ios", "android", "web")
PLATFORM_VERSIONS: dict[str, tuple[str, ...]] = {
    "ios": ("5.0", "5.1", "5.2"), "android": ("5.0", "5.1", "5.2"), "web": ("web",)}
PLATFORM_BROWSERS: dict[str, tuple[str, ...]] = {
    "ios": ("app",), "android": ("app",), "web": ("chrome", "safari", "firefox", "edge")}
PLANS: tuple[str, ...] = ("free", "plus", "pro")
APP_VERSIONS: tuple[str, ...] = ("5.0", "5.1", "5.2")
WEB_BROWSERS: tuple[str, ...] = PLATFORM_BROWSERS["web"]

PLATFORM_CONV = {"ios": 0.046, "android": 0.031, "web": 0.042}
PLAN_CONV = {"free": 0.75, "plus": 1.4, "pro": 2.2}
PLAN_SHARE = {"free": 0.72, "plus": 0.20, "pro": 0.08}
PLAN_AOV = {"free": 0.9, "plus": 1.1, "pro": 1.35}
BROWSER_SHARE = {"app": 1.0, "chrome": 0.62, "safari": 0.20, "firefox": 0.08, "edge": 0.10}
BROWSER_CONV = {"app": 1.0, "chrome": 1.0, "safari": 1.05, "firefox": 0.95, "edge": 0.9}
BROWSER_LAT = {"app": 1.0, "chrome": 1.0, "safari": 1.04, "firefox": 1.06, "edge": 1.02}
PLATFORM_LAT = {"ios": 0.85, "android": 0.95, "web": 1.1}
VERSION_CONV = {"5.0": 0.95, "5.1": 1.0, "5.2": 1.02, "web": 1.0}
#: App version shares at the start and at the end of the period (linear in between).
VERSION_SHARE_START = {"ios": (0.10, 0.45, 0.45), "android": (0.20, 0.50, 0.30)}
VERSION_SHARE_END = {"ios": (0.05, 0.25, 0.70), "android": (0.12, 0.38, 0.50)}

#: Daily profiles by local hour (0..23), relative to the daily peak.
WEB_PROFILE = np.array([0.30, 0.20, 0.14, 0.11, 0.10, 0.13, 0.25, 0.45, 0.66, 0.80, 0.88, 0.92,
                        0.95, 0.94, 0.92, 0.92, 0.93, 0.94, 0.96, 1.00, 0.97, 0.85, 0.66, 0.46])
APP_PROFILE = np.array([0.38, 0.24, 0.15, 0.11, 0.10, 0.12, 0.22, 0.38, 0.52, 0.58, 0.62, 0.66,
                        0.72, 0.70, 0.66, 0.66, 0.70, 0.78, 0.88, 0.97, 1.00, 0.95, 0.80, 0.58])
WEEKEND_FACTOR = {"web": 0.85, "app": 1.12}

#: Dimensions in manifest order; ``region`` is the roll-up of ``country``.
DIMENSIONS: tuple[str, ...] = ("country", "platform", "app_version", "browser", "plan")
COLUMNS: tuple[str, ...] = ("region",) + DIMENSIONS
MEAN_SESSIONS_PER_HOUR = 22_000.0


@dataclass(frozen=True)
class Leaves:
    """The observed leaves, one entry per combination that exists in the product.

    ``values[col]`` is an array of strings (object dtype) of length ``n`` and
    ``codes[col]``/``vocab[col]`` its dictionary encoding, used to write Parquet
    without materialising Python strings per row.
    """

    values: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]
    vocab: dict[str, tuple[str, ...]]

    @property
    def n(self) -> int:
        return len(self.values["country"])

    def mask(self, scope: dict | None) -> np.ndarray:
        """Boolean mask of the leaves a scope (dimension -> value or list) covers.

        ``{}`` or ``None`` covers every leaf; an unknown dimension covers none.
        """
        out = np.ones(self.n, dtype=bool)
        for dim, val in (scope or {}).items():
            if dim not in self.values:
                return np.zeros(self.n, dtype=bool)
            vals = list(val) if isinstance(val, (list, tuple)) else [val]
            out &= np.isin(self.values[dim], vals)
        return out


def build_leaves() -> Leaves:
    """Every realistic leaf: app versions per platform, ``app`` as browser of the apps."""
    rows = []
    for country in COUNTRIES:
        for platform in PLATFORMS:
            for version, browser in itertools.product(PLATFORM_VERSIONS[platform],
                                                      PLATFORM_BROWSERS[platform]):
                for plan in PLANS:
                    rows.append((REGION_OF[country], country, platform, version, browser, plan))
    cols = list(zip(*rows))
    values, codes, vocab = {}, {}, {}
    for name, col in zip(COLUMNS, cols):
        arr = np.array(col, dtype=object)
        voc = tuple(dict.fromkeys(col))
        lookup = {v: i for i, v in enumerate(voc)}
        values[name] = arr
        vocab[name] = voc
        codes[name] = np.fromiter((lookup[v] for v in col), dtype=np.int32, count=len(col))
    return Leaves(values=values, codes=codes, vocab=vocab)


@dataclass(frozen=True)
class World:
    """Expected values of one seeded world, before any incident.

    Attributes
    ----------
    start_ns : int
        First hour, nanoseconds since the epoch (UTC).
    hours : int
        Number of hourly time stamps.
    leaves : Leaves
    lam : ndarray, shape (hours, n_leaves)
        Expected sessions.
    p : ndarray, shape (hours, n_leaves)
        Conversion probability per session.
    aov : ndarray, shape (n_leaves,)
        Mean order value in EUR.
    lat : ndarray, shape (hours, n_leaves)
        Mean latency per session in ms.
    """

    start_ns: int
    hours: int
    leaves: Leaves
    lam: np.ndarray
    p: np.ndarray
    aov: np.ndarray
    lat: np.ndarray

    def hour_ns(self, t: int) -> int:
        return self.start_ns + int(t) * 3_600_000_000_000


def _periodic_interp(x: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Profile read at fractional local hours, wrapping at midnight."""
    xp = np.arange(25, dtype=float)
    fp = np.append(profile, profile[0])
    return np.interp(np.mod(x, 24.0), xp, fp)


def build_world(rng: np.random.Generator, start_ns: int, hours: int, scale: float) -> World:
    """Expected sessions, conversion, order value and latency for every hour and leaf.

    Parameters
    ----------
    rng:
        Source of the per-seed perturbations (country weights, trend, leaf jitter).
    start_ns:
        First hour (UTC, ns since the epoch); must be on the hour.
    hours:
        Length of the period in hours.
    scale:
        Multiplier on the mean volume (1.0 gives about 22k sessions an hour).
    """
    leaves = build_leaves()
    v = leaves.values
    n_leaves = leaves.n
    t = np.arange(hours, dtype=float)
    utc_hour = np.mod(t, 24.0)
    # 1970-01-01 was a Thursday (weekday 3, Monday = 0).
    start_day = start_ns // 86_400_000_000_000
    day_index = start_day + np.floor_divide(t, 24.0)

    tz = np.array([TZ_OFFSET[c] for c in COUNTRIES])
    local_hour = utc_hour[:, None] + tz[None, :]                      # (H, C)
    local_day = day_index[:, None] + np.floor_divide(local_hour, 24.0)
    weekend = np.mod(local_day + 3, 7) >= 5
    web_season = _periodic_interp(local_hour, WEB_PROFILE) * np.where(weekend, WEEKEND_FACTOR["web"], 1.0)
    app_season = _periodic_interp(local_hour, APP_PROFILE) * np.where(weekend, WEEKEND_FACTOR["app"], 1.0)

    c_idx = np.array([COUNTRIES.index(c) for c in v["country"]])
    is_web = v["platform"] == "web"
    season = np.where(is_web[None, :], web_season[:, c_idx], app_season[:, c_idx])  # (H, L)

    cw = np.array([COUNTRY_WEIGHT[c] for c in COUNTRIES]) * rng.lognormal(0.0, 0.12, len(COUNTRIES))
    cw /= cw.sum()
    ios = np.array([COUNTRY_IOS[c] for c in COUNTRIES])
    web_share = np.clip(0.45 + rng.normal(0, 0.03, len(COUNTRIES)), 0.3, 0.6)
    app_share = 1.0 - web_share
    plat_share = np.where(is_web, web_share[c_idx],
                          np.where(v["platform"] == "ios", app_share[c_idx] * ios[c_idx],
                                   app_share[c_idx] * (1 - ios[c_idx])))

    # App version adoption: linear from start to end shares, per platform.
    frac = t / max(hours - 1, 1)
    ver_share = np.ones((hours, n_leaves))
    for platform in ("ios", "android"):
        for i, version in enumerate(APP_VERSIONS):
            m = (v["platform"] == platform) & (v["app_version"] == version)
            s0, s1 = VERSION_SHARE_START[platform][i], VERSION_SHARE_END[platform][i]
            ver_share[:, m] = (s0 + (s1 - s0) * frac)[:, None]

    browser_share = np.array([BROWSER_SHARE[b] for b in v["browser"]])
    plan_share = np.array([PLAN_SHARE[q] for q in v["plan"]])
    jitter = rng.lognormal(0.0, 0.25, n_leaves)
    slope = rng.uniform(-0.04, 0.08)
    trend = 1.0 + slope * frac

    static = cw[c_idx] * plat_share * browser_share * plan_share * jitter
    lam = trend[:, None] * season * ver_share * static[None, :]
    lam *= MEAN_SESSIONS_PER_HOUR * scale / lam.sum(axis=1).mean()

    base_p = (np.array([PLATFORM_CONV[k] for k in v["platform"]])
              * np.array([PLAN_CONV[q] for q in v["plan"]])
              * np.array([COUNTRY_CONV[c] for c in v["country"]])
              * np.array([BROWSER_CONV[b] for b in v["browser"]])
              * np.array([VERSION_CONV[x] for x in v["app_version"]])
              * rng.lognormal(0.0, 0.08, n_leaves))
    local_leaf_hour = local_hour[:, c_idx]
    p = base_p[None, :] * (1.0 + 0.06 * np.cos(2 * np.pi * (local_leaf_hour - 20.0) / 24.0))
    p = np.clip(p, 0.0, 0.5)

    aov = (np.array([COUNTRY_AOV[c] for c in v["country"]])
           * np.array([PLAN_AOV[q] for q in v["plan"]])
           * rng.lognormal(0.0, 0.05, n_leaves))

    base_lat = (np.array([REGION_LATENCY[r] for r in v["region"]])
                * np.array([PLATFORM_LAT[k] for k in v["platform"]])
                * np.array([BROWSER_LAT[b] for b in v["browser"]])
                * rng.lognormal(0.0, 0.05, n_leaves))
    lat = base_lat[None, :] * (1.0 + 0.15 * (season / season.max(axis=0, keepdims=True) - 0.5))

    return World(start_ns=int(start_ns), hours=int(hours), leaves=leaves, lam=lam, p=p,
                 aov=aov, lat=lat)
