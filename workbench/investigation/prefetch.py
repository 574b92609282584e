"""The series the ranking will ask for, read in one scan before it asks.

The ranking (:func:`workbench.events.rank_changes`) tests every change near the
onset by a difference-in-differences of its scope against the rest, and reads
each scope's series through a cache in :func:`.stages.rank`. Filled one scope
at a time, that cache cost one scan of the events per candidate (20 to 30 per
incident); :func:`candidate_series` fills it beforehand with one scan for all
the candidates' scopes (:func:`workbench.store.queries.metric_series_many`).
The frames are the ones the one-scope query returns, so the ranking is
unchanged; a scope it asks for beyond these is read when asked.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["candidate_series", "scope_key"]


def scope_key(filt: dict | None) -> tuple:
    """The cache key of a slice filter (order and value types do not matter)."""
    return tuple(sorted((k, str(v)) for k, v in (filt or {}).items()))


def candidate_series(con, sp, spec, changes: pd.DataFrame, onset: pd.Timestamp,
                     grain: pd.Timedelta, start, end) -> dict:
    """``{scope_key: series}`` of the scopes of the changes in the ranking's reach.

    Parameters
    ----------
    con, sp, spec:
        The store's connection, the stored passport and the metric.
    changes:
        The change log (``ts``, ``scope``).
    onset, grain:
        The divergence's onset and the grain: the ranking looks at the changes
        from ``RankConfig.lookback`` before to ``lookahead`` after it, the onset
        set's reach either side.
    start, end:
        The period of the series.

    Returns
    -------
    dict
        Empty when fewer than two scopes are in reach (nothing to share).
    """
    from ..events.rank import RankConfig
    from ..store.queries import metric_series_many

    if not len(changes):
        return {}
    cfg = RankConfig()
    reach = cfg.onset_set_reach * grain
    lo = onset - reach - cfg.lookback
    hi = onset + reach + max(cfg.lookahead, 3 * grain)
    near = changes[(changes["ts"] >= lo) & (changes["ts"] <= hi)]
    dims = set(sp.manifest.all_dimensions)
    scopes: dict = {}
    for sc in near["scope"]:
        if isinstance(sc, dict) and sc and set(sc) <= dims:
            scopes.setdefault(scope_key(sc), sc)
    if len(scopes) < 2:
        return {}
    frames = metric_series_many(con, sp, spec, list(scopes.values()), start=start, end=end)
    return dict(zip(scopes, frames))
