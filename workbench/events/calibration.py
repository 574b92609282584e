"""Confidence that means frequency: a Platt map of the ranking's posteriors.

The ranking's posterior over "change i caused it" and "outside the log" is a
softmax of hand-weighted log-likelihood ratios (:mod:`.rank`); nothing forces
0.7 to be right seven times in ten. A calibration map fixes that after the
fact: Platt scaling (Platt 1999), a logistic regression of "this cause is a
true culprit" on the log-odds of the posterior,

    calibrated = sigmoid(a * logit(confidence) + b),

fitted on the *tuning* incident families only (``benchmarks/incidents.py
--fit-calibration``, with weakened incidents ``--effect-scale`` so that the
evidence is often ambiguous) and judged on the held-out families by the
expected calibration error (Naeini et al. 2015; Guo et al. 2017). Two
parameters, monotone, so the order of the causes never changes; a logistic
fit was preferred to isotonic regression because the middle of the range is
thin (most confidences sit near 0 or 1) and a step function would follow its
noise (Niculescu-Mizil and Caruana 2005).

The fitted map ships in the package as ``calibration.json`` beside this module
(versioned; it records the seeds, families and counts it was fitted on). No
file, or ``"a": 1, "b": 0``, is the identity.

References
----------
Platt, J. (1999). Probabilistic outputs for support vector machines and
comparisons to regularized likelihood methods. Advances in Large Margin
Classifiers, 61-74.
Niculescu-Mizil, A. and Caruana, R. (2005). Predicting good probabilities with
supervised learning. ICML.
Naeini, M. P., Cooper, G. and Hauskrecht, M. (2015). Obtaining well calibrated
probabilities using Bayesian binning. AAAI.
Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On calibration of
modern neural networks. ICML.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["CalibrationMap", "calibration_map", "fit_platt"]

_EPS = 1e-4  # confidences are reported to 4 decimals: 0 and 1 become 1e-4 and 1 - 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class CalibrationMap:
    """``sigmoid(a * logit(p) + b)``; ``a = 1, b = 0`` is the identity.

    Attributes
    ----------
    a, b:
        Slope and intercept on the log-odds.
    version:
        Version of the map (bumped at every refit).
    fitted_on:
        What it was fitted on (families, seeds, counts), for the record.
    """

    a: float = 1.0
    b: float = 0.0
    version: int = 0
    fitted_on: dict = field(default_factory=dict)

    @property
    def identity(self) -> bool:
        return self.a == 1.0 and self.b == 0.0

    def __call__(self, p) -> np.ndarray:
        """Calibrated confidences (same shape as ``p``)."""
        p = np.asarray(p, dtype=float)
        if self.identity:
            return p
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


@lru_cache(maxsize=1)
def calibration_map() -> CalibrationMap:
    """The shipped map (``calibration.json`` beside this module); the identity without it."""
    try:
        text = resources.files(__package__).joinpath("calibration.json").read_text("utf-8")
    except FileNotFoundError:
        return CalibrationMap()
    d = json.loads(text)
    return CalibrationMap(a=float(d["a"]), b=float(d["b"]), version=int(d.get("version", 0)),
                          fitted_on=dict(d.get("fitted_on", {})))


def fit_platt(confidence, right, *, version: int, fitted_on: dict) -> CalibrationMap:
    """Fit ``right ~ sigmoid(a * logit(confidence) + b)`` by maximum likelihood.

    Parameters
    ----------
    confidence:
        Confidences given (one per listed cause).
    right:
        Whether each cause was a true culprit (0/1).
    version, fitted_on:
        Recorded in the map.

    Returns
    -------
    CalibrationMap
    """
    import statsmodels.api as sm

    x = _logit(confidence)
    y = np.asarray(right, dtype=float)
    if len(x) < 20 or y.min() == y.max():
        raise ValueError(f"need at least 20 causes with both outcomes to fit; got {len(x)}")
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    b, a = (float(v) for v in fit.params)
    return CalibrationMap(a=a, b=b, version=version, fitted_on=fitted_on)
