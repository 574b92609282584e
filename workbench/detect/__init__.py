"""Divergence detection: is there a divergence, when did it start, how big, how sure.

One verb, :func:`detect_divergence`, takes a metric's bucketed sums and returns a
frozen :class:`DivergenceResult`. The method is a strategy looked up by name
(``detector="seasonal"``, the built-in: a robust seasonal quasi-likelihood
baseline with a segment scan, after Farrington et al. 1996 and Siegmund and
Venkatraman 1995 -- see :mod:`workbench.detect.seasonal`); a class, an object
with a ``detect`` method, or a callable works too, and plug-ins register under
the ``workbench.detectors`` entry-point group (:mod:`workbench.registry`).
Tuning goes in :class:`DetectConfig`.
"""
from __future__ import annotations

import pandas as pd

from workbench.errors import UsageError

from ._registry import (available_detectors, register_detector, resolve_detector,
                        unregister_detector)
from ._series import BETTER, KINDS, check_choice, parse_grain, prepare_series
from .config import DetectConfig
from .result import DivergenceResult
from .seasonal import SeasonalDetector

from .consolidate import ConsolidatedDivergence, DivergenceMember, consolidate_divergences

__all__ = [
    "ConsolidatedDivergence",
    "DivergenceMember",
    "consolidate_divergences",
    "DetectConfig",
    "DivergenceResult",
    "SeasonalDetector",
    "available_detectors",
    "detect_divergence",
    "register_detector",
    "unregister_detector",
]


def detect_divergence(series: pd.DataFrame, *, kind: str = "ratio", better: str = "higher",
                      grain=pd.Timedelta("1h"), window=None, detector="seasonal",
                      config: DetectConfig | None = None) -> DivergenceResult:
    """Find the most significant divergence of a metric from its seasonal baseline.

    Parameters
    ----------
    series : pandas.DataFrame
        Bucketed sums with a tz-aware (UTC) DatetimeIndex at ``grain``; columns
        ``num`` (summed numerator) and, for a ratio, ``den`` (summed
        denominator). Other columns (``rows``) are ignored. Absent buckets and
        NaN are missing, never zero; several rows in one bucket are summed.
    kind : {"ratio", "sum"}
        ``ratio`` compares ``sum(num) / sum(den)``; ``sum`` compares ``num`` (the
        ``den`` column is ignored: every present bucket counts as one).
    better : {"higher", "lower"}
        Decides whether a move is ``"bad"`` or ``"good"``.
    grain : str or pandas.Timedelta
        Bucket width; hourly in practice.
    window : (start, end) or None
        Half-open time interval ``[start, end)``: the buckets with
        ``start <= ts < end`` (naive values are read as UTC); the divergence
        ``(onset, end)`` of a result is reproduced by ``(onset, end + grain)``.
        When given, the divergence is measured over this window, its onset is
        estimated inside it and the p-value is not corrected for scanning. When
        None, onsets and ends are searched over the last ``config.scan``.
    detector : str, class, object or callable
        A name from :func:`available_detectors` (default ``"seasonal"``), or a
        detector itself (see :mod:`workbench.detect._registry`).
    config : DetectConfig, optional
        Tuning; ``DetectConfig()`` when omitted.

    Returns
    -------
    DivergenceResult

    Raises
    ------
    workbench.errors.UsageError
        Bad arguments or a series that cannot be analysed (no ``num`` column,
        naive index, too little history), with what to do about it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from workbench.detect import detect_divergence
    >>> rng = np.random.default_rng(0)
    >>> ts = pd.date_range("2026-11-01", periods=21 * 24, freq="1h", tz="UTC")
    >>> hour = ts.hour.to_numpy()
    >>> den = rng.poisson(2000 * (1.5 + np.sin(2 * np.pi * hour / 24)))
    >>> p = np.where(np.arange(len(ts)) >= 470, 0.03, 0.04)  # conversion drops at bucket 470
    >>> series = pd.DataFrame({"num": rng.binomial(den, p), "den": den}, index=ts)
    >>> res = detect_divergence(series, kind="ratio", better="higher")
    >>> res.significant, res.onset == ts[470], res.direction
    (True, True, 'bad')
    >>> round(res.relative_change, 1)
    -0.2
    """
    kind = check_choice("kind", kind, KINDS)
    better = check_choice("better", better, BETTER)
    grain = parse_grain(grain)
    if config is None:
        config = DetectConfig()
    elif not isinstance(config, DetectConfig):
        raise UsageError(f"config must be a DetectConfig; got {type(config).__name__}")
    frame = prepare_series(series, kind=kind, grain=grain)
    impl = resolve_detector(detector)
    run = impl.detect if hasattr(impl, "detect") else impl
    result = run(frame, kind=kind, better=better, grain=grain, window=window, config=config)
    if not isinstance(result, DivergenceResult):
        raise TypeError(f"detector {detector!r} returned {type(result).__name__}, "
                        "not a DivergenceResult")
    return result
