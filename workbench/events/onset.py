"""When a change's own effect began: a change point in its exposed-minus-unexposed contrast.

Why
---
A change does not always act the hour it lands: a cache expires, a batch job
runs at night, a config is read on the next restart. Dating such a divergence
from the change's timestamp puts the onset hours early (issue 14, held-out
family ``delayed_effect``). The change's own data say when its effect began:
the contrast of its exposed units against the unexposed ones steps at the
effect's start, not at the change.

Method
------
``d_t`` is the log metric of the exposed group minus that of the unexposed
group per bucket (the series of :func:`workbench.events.effects.did_effect`),
with hour-of-day effects absorbed and buckets weighted by the smaller group's
volume. For each candidate start ``k`` from the change's bucket to
``max_lag`` grains after it, a weighted least-squares fit of
``d_t ~ hour-of-day + 1[t >= k]`` over the pre-period and the post-period gives
a residual sum of squares ``RSS(k)``. The start is the least-squares change
point (Bai and Perron 1998; the at-most-one-change case of binary
segmentation, Scott and Knott 1974) restricted to starts at or after the
change. The delay is accepted only when the profile likelihood ratio of the
best start against the change's own bucket,

    LR = n * log(RSS(change) / RSS(best)),

exceeds ``penalty`` (chosen on the tuning families only, where every effect
starts with its change) and the step at the best start points the way of the
divergence. Otherwise the change's time stands.

References
----------
Bai, J. and Perron, P. (1998). Estimating and testing linear models with
multiple structural changes. Econometrica 66(1), 47-78.
Scott, A. J. and Knott, M. (1974). A cluster analysis method for grouping
means in the analysis of variance. Biometrics 30(3), 507-512.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EffectOnset", "effect_onset"]


@dataclass(frozen=True)
class EffectOnset:
    """The estimated start of a change's own effect.

    Attributes
    ----------
    start:
        The bucket the effect starts in (the change's bucket when no delay is
        accepted).
    delay_grains:
        Grains between the change's bucket and ``start``.
    lr:
        Profile likelihood ratio of ``start`` against the change's bucket (0
        when they coincide).
    accepted:
        Whether the delay passed the penalty (``False``: ``start`` is the
        change's bucket).
    """

    start: pd.Timestamp
    delay_grains: int
    lr: float
    accepted: bool

    def evidence(self, change_id: str) -> str:
        """One line for the cause's evidence."""
        return (f"its own effect began {self.delay_grains} grain(s) after it "
                f"({self.start:%m-%d %H:%M}; change point of exposed against unexposed, "
                f"likelihood ratio {self.lr:.1f} against the change's own bucket): "
                f"the divergence is dated from there, not from {change_id}")


def _contrast(exposed: pd.DataFrame, unexposed: pd.DataFrame, kind: str):
    e, u = exposed.set_index("ts"), unexposed.set_index("ts")
    idx = e.index.intersection(u.index)
    e, u = e.loc[idx], u.loc[idx]
    if kind == "ratio":
        ve, vu = e["num"] / e["den"], u["num"] / u["den"]
        w = np.minimum(e["den"], u["den"]).to_numpy(dtype=float)
    else:
        ve, vu = e["num"], u["num"]
        w = np.ones(len(idx))
    ok = ((ve > 0) & (vu > 0) & np.isfinite(ve) & np.isfinite(vu)).to_numpy()
    d = (np.log(ve[ok]) - np.log(vu[ok])).to_numpy(dtype=float)
    return pd.DatetimeIndex(idx[ok]), d, w[ok]


def effect_onset(exposed: pd.DataFrame, unexposed: pd.DataFrame, change_ts: pd.Timestamp, *,
                 kind: str, grain: pd.Timedelta, direction_sign: float, max_lag: int = 12,
                 penalty: float = 12.0) -> EffectOnset | None:
    """Estimate when a change's effect started, at or after the change.

    Parameters
    ----------
    exposed, unexposed:
        ``ts, num, den`` per bucket for the change's scope and for the rest,
        covering a pre-period before the change and the divergence after it.
    change_ts:
        The change's bucket (floored to the grain).
    kind:
        ``"ratio"`` or ``"sum"``.
    grain:
        The bucket length.
    direction_sign:
        Sign of the divergence (-1 for a drop): a delayed step must point that way.
    max_lag:
        Latest start considered, in grains after the change.
    penalty:
        Likelihood-ratio threshold a delay must pass.

    Returns
    -------
    EffectOnset or None
        None when the series are too short to tell.
    """
    ts, d, w = _contrast(exposed, unexposed, kind)
    t0 = pd.Timestamp(change_ts)
    pre = ts < t0
    if pre.sum() < 24 or (~pre).sum() < 3:
        return None
    hours = pd.get_dummies(ts.hour, prefix="h", drop_first=True, dtype=float).to_numpy()
    sw = np.sqrt(np.maximum(w, 0.0))
    starts = [t0 + i * grain for i in range(max_lag + 1)]
    starts = [s for s in starts if (ts >= s).sum() >= 3]
    rss, steps = [], []
    for s in starts:  # one fit per candidate start (at most max_lag + 1), not per row
        X = np.column_stack([np.ones(len(d)), (ts >= s).astype(float), hours])
        beta, *_ = np.linalg.lstsq(X * sw[:, None], d * sw, rcond=None)
        r = (d - X @ beta) * sw
        rss.append(float(r @ r))
        steps.append(float(beta[1]))
    if not rss or rss[0] <= 0:
        return None
    rss_a = np.asarray(rss)
    # only starts whose step points the way of the divergence compete
    valid = np.asarray(steps) * direction_sign > 0
    if not valid.any():
        return EffectOnset(t0, 0, 0.0, False)
    best = int(np.argmin(np.where(valid, rss_a, np.inf)))
    lr = float(len(d) * np.log(rss_a[0] / max(rss_a[best], 1e-300)))
    if best == 0 or lr < penalty:
        return EffectOnset(t0, 0, max(lr, 0.0) if best else 0.0, False)
    return EffectOnset(starts[best], best, lr, True)
