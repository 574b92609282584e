"""Simulated hourly metric series with ground truth (test helper, not a test module).

Used by ``test_seasonal.py`` and ``simulate.py``. A series has daily and weekly
seasonality (a different daily shape at weekends), a weekly trend of up to
+-5%, multiplicative AR(1) "model error" on the log scale (what no baseline
explains: weather, campaigns, noise of the world) and Poisson counts or
binomial conversions on top. An incident multiplies the metric by
``1 + effect`` from ``onset`` to ``end``:

- ``"shift"``: a level shift of 2%..60% either way that persists to the end,
  starting 48..96 hours before the last bucket;
- ``"episode"``: 3..10 hours of lost data (-30%..-100% of volume) or duplicated
  data (+100%), then back to normal; for a ratio it hits the numerator only
  (conversion events lost or doubled);
- ``"none"``.

``Truth.sigma`` is the oracle z of the window: the injected change in the sum of
the numerator over the window divided by the standard deviation of that sum
under the true model (sampling noise plus AR(1) model error).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-11-02", tz="UTC")  # a Monday


@dataclass(frozen=True)
class Truth:
    kind: str
    incident: str
    onset: pd.Timestamp | None
    end: pd.Timestamp | None
    effect: float
    sigma: float
    level: float
    model_error: float


def _ar1(rng, n, sd, rho):
    e = np.empty(n)
    innov = rng.normal(0.0, sd * np.sqrt(1.0 - rho * rho), n)
    e[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        e[t] = rho * e[t - 1] + innov[t]
    return e


def _shape(index):
    h = index.hour.to_numpy().astype(float)
    dow = index.day_of_week.to_numpy()
    weekend = dow >= 5
    weekday_shape = (0.55 * np.cos(2 * np.pi * (h - 20) / 24)
                     + 0.2 * np.cos(4 * np.pi * (h - 13) / 24))
    weekend_shape = (0.45 * np.cos(2 * np.pi * (h - 16) / 24)
                     + 0.15 * np.cos(4 * np.pi * (h - 11) / 24))
    dow_mult = np.array([1.0, 1.03, 1.04, 1.02, 0.97, 0.82, 0.88])[dow]
    return np.exp(np.where(weekend, weekend_shape, weekday_shape)) * dow_mult


def simulate_series(rng, *, kind="ratio", level=None, n_days=21, incident="none", effect=None,
                    hours_before_end=None, duration=None, conv=None, model_error=None,
                    rho=0.8, trend=None, start=None):
    """Return ``(frame, truth)``: hourly ``num``, ``den``, ``rows`` and the ground truth.

    Unspecified parameters are drawn from ``rng``: level log-uniform in
    100..20,000 per hour (of ``den`` for a ratio, of ``num`` for a sum),
    conversion 3%..5%, model error sd 0..3%, trend -5%..+5% per week.
    """
    n = n_days * 24
    if start is None:
        start = START + pd.Timedelta(days=int(rng.integers(7)))
    index = pd.date_range(start, periods=n, freq="1h", name="ts")
    if level is None:
        level = float(np.exp(rng.uniform(np.log(100), np.log(20000))))
    if conv is None:
        conv = float(rng.uniform(0.03, 0.05))
    if model_error is None:
        model_error = float(rng.uniform(0.0, 0.03))
    if trend is None:
        trend = float(rng.uniform(-0.05, 0.05))
    weeks = np.arange(n) / (24 * 7)
    shape = _shape(index) * np.exp(trend * weeks)
    volume = level * shape / shape.mean()

    mult = np.ones(n)
    onset = end = None
    i0 = i1 = None
    if incident == "shift":
        if effect is None:
            effect = float(np.exp(rng.uniform(np.log(0.02), np.log(0.6)))) * rng.choice([-1, 1])
        hb = int(rng.integers(48, 97)) if hours_before_end is None else int(hours_before_end)
        i0, i1 = n - hb, n - 1
    elif incident == "episode":
        if duration is None:
            duration = int(rng.integers(3, 11))
        if effect is None:
            effect = -float(rng.uniform(0.3, 1.0)) if rng.random() < 0.7 else 1.0
        hb = (int(rng.integers(duration + 6, 97)) if hours_before_end is None
              else int(hours_before_end))
        i0, i1 = n - hb, n - hb + duration - 1
    elif incident == "none":
        effect = 0.0
    else:
        raise ValueError(f"incident must be none, shift or episode; got {incident!r}")
    if i0 is not None:
        mult[i0:i1 + 1] = 1.0 + effect
        onset, end = index[i0], index[i1]

    e_vol = _ar1(rng, n, model_error, rho)
    if kind == "ratio":
        e_rate = _ar1(rng, n, model_error, rho)
        h = index.hour.to_numpy()
        p0 = conv * np.exp(0.12 * np.cos(2 * np.pi * (h - 21) / 24))
        den_mean = volume * np.exp(e_vol)
        # a volume episode on a ratio hits the numerator only (lost/doubled conversion events)
        den = rng.poisson(den_mean).astype(float)
        p = np.clip(p0 * np.exp(e_rate) * mult, 0.0, 1.0)
        if incident == "episode" and effect > 0:  # duplicated events: num doubles, may exceed den
            num = rng.binomial(den.astype(np.int64), np.clip(p0 * np.exp(e_rate), 0, 1)) * mult
        else:
            num = rng.binomial(den.astype(np.int64), p).astype(float)
        m0 = volume * p0               # expected numerator without the incident
        var_sample = m0 * (1 - p0)
        me_var_scale = 2.0             # two independent log-errors (volume and rate)
        rows = den.copy()
    elif kind == "sum":
        m0 = volume
        num = rng.poisson(volume * np.exp(e_vol) * mult).astype(float)
        den = np.ones(n)
        var_sample = m0
        me_var_scale = 1.0
        rows = num.copy()
    else:
        raise ValueError(f"kind must be ratio or sum; got {kind!r}")

    sigma = 0.0
    if i0 is not None:
        w = slice(i0, i1 + 1)
        m = m0[w]
        lag = np.abs(np.subtract.outer(np.arange(len(m)), np.arange(len(m))))
        cov = np.outer(m, m) * me_var_scale * model_error ** 2 * rho ** lag
        var = var_sample[w].sum() + cov.sum()
        sigma = float(abs(effect) * m.sum() / np.sqrt(var))
    frame = pd.DataFrame({"num": num, "den": den, "rows": rows}, index=index)
    return frame, Truth(kind, incident, onset, end, float(effect), sigma, float(level),
                        float(model_error))
