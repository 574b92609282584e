"""Show me the query: the SQL behind each finding of the answer (issue 17, B6).

Every number an analyst is asked to trust should be one copy and paste away
from the store it came from (the query layer's rule, :mod:`workbench.store.queries`).
This module gives each finding of the answer a ``sql`` field, with literals
inlined through the one quoting helper (:func:`workbench.store.sql.lit`), that
reproduces its numbers against the DuckDB store file:

- a localized slice: one row ``obs_num, obs_den, base_num, base_den``;
  ``observed = obs_num / obs_den`` and ``baseline = base_num / base_den`` for a
  ratio (``obs_num`` and ``base_num`` for a sum), over the divergence window and
  the same hours one to three weeks before (averaged), as the localizer saw them
  (for a sum metric the localizer's baseline is then adjusted to the level of
  the whole series, :func:`workbench.investigation.slicing._level_adjusted`:
  the statement gives the sums before that adjustment);
- a cause's effect: ``{"exposed", "unexposed"}``, the per-bucket ``ts, num,
  den, rows`` of the units in and out of its scope over the difference-in-
  differences window; the estimate is :func:`workbench.events.did_effect` of
  the two;
- a data-quality finding: the statement its check ran (gaps, duplicates,
  integrity, late data), or for a sample-ratio mismatch the units per variant.

The statements are text for reading and rerunning; the workbench itself never
executes text from an answer.
"""
from __future__ import annotations

import pandas as pd

from ..store.queries import _num_den, _ts, _window_sums, filter_sql
from ..store.sql import lit

__all__ = ["attach_sql", "series_sql", "slice_sql"]


def series_sql(sp, spec, *, filter: dict | None = None, negate: bool = False, start=None,
               end=None) -> str:
    """The statement of :func:`workbench.store.metric_series`, without running it."""
    secs = int(sp.manifest.grain_td.total_seconds())
    num, den = _num_den(spec)
    flt = filter_sql(sp, filter)
    conds = [f"NOT ({flt})" if negate else flt]
    if start is not None:
        conds.append(f"ts >= {_ts(start)}")
    if end is not None:
        conds.append(f"ts < {_ts(end)}")
    return (f"SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS ts, {num} AS num, "
            f"{den} AS den, COUNT(*) AS rows\nFROM {sp.schema}.events\n"
            f"WHERE {' AND '.join(conds)}\nGROUP BY 1 ORDER BY 1")


def slice_sql(sp, spec, *, obs, base, filter: dict) -> str:
    """One row: the observed and baseline sums of a slice (see the module docstring)."""
    sums, where = _window_sums(spec, obs, base)
    return (f"SELECT {sums}\nFROM {sp.schema}.events\n"
            f"WHERE ({where}) AND {filter_sql(sp, filter)}")


def srm_sql(sp, experiment: str) -> str:
    """Units per variant of one experiment (a unit counts once, in its first variant)."""
    return (f"WITH u AS (SELECT unit_id, arg_min(variant, ts) AS variant "
            f"FROM {sp.schema}.experiments WHERE experiment = {lit(experiment)} "
            f"GROUP BY unit_id)\nSELECT variant, count(*) AS units FROM u GROUP BY 1 ORDER BY 1")


def _effect_window(cause: dict, changes: pd.DataFrame, grain, data_end, cfg, span):
    """``[lo, hi)`` of a cause's difference-in-differences (as the ranking ran it).

    ``span`` is what the ranking read of each series (:func:`workbench.
    investigation.stages.rank`: 15 days before the onset to the window's end).
    """
    t0 = pd.Timestamp(cause["ts"]).floor(grain)
    hi = min(t0 + cfg.did_post_max, data_end + grain, span[1])
    if "until" in changes.columns:
        row = changes.loc[changes["id"].astype(str) == str(cause["change_id"]), "until"]
        if len(row) and not pd.isna(row.iloc[0]):
            hi = min(hi, max(pd.Timestamp(row.iloc[0]).ceil(grain), t0 + 2 * grain))
    return max(t0 - cfg.did_pre, span[0]), hi


def attach_sql(ctx, lz, rk, slices: list[dict], causes: list[dict],
               data_quality: list[dict], verification=None) -> None:
    """Give, in place, each slice, cause effect and sample-ratio finding its ``sql``.

    The audit's own findings carry theirs already (``QualityFinding.sql``). A
    cause's ``sql`` also holds, when it has them, ``exposed_in_slice`` and
    ``siblings`` (the within-slice comparison of ``causes[].siblings``) and
    ``verification`` (the unit table DoWhy was given, from ``verification``,
    a :class:`workbench.causal.report.VerificationReport`).
    """
    from ..events.rank import RankConfig
    from .slicing import _base_windows

    sp, spec, grain = ctx.sp, ctx.spec, ctx.grain
    obs = lz.obs
    base = _base_windows(obs[0], obs[1], ctx.data_start, grain)
    for s in slices:
        if "source" not in s and s.get("filter") is not None:
            s["sql"] = slice_sql(sp, spec, obs=obs, base=base, filter=s["filter"])
    cfg = RankConfig()
    for c in causes:
        if c.get("effect") and c.get("scope"):
            lo, hi = _effect_window(c, rk.changes, grain, ctx.data_last, cfg,
                                    (lz.onset - pd.Timedelta("15D"), obs[1]))
            c["sql"] = {k: series_sql(sp, spec, filter=c["scope"], negate=neg, start=lo, end=hi)
                        for k, neg in (("exposed", False), ("unexposed", True))}
            sib = (c.get("siblings") or {}).get("slice")
            if sib:  # exposed units against the rest of the diverging slice (the DDD)
                c["sql"]["exposed_in_slice"] = series_sql(sp, spec, filter={**sib, **c["scope"]},
                                                          start=lo, end=hi)
                c["sql"]["siblings"] = series_sql(sp, spec, filter=sib, start=lo, end=hi).replace(
                    "\nWHERE ", f"\nWHERE NOT ({filter_sql(sp, c['scope'])}) AND ", 1)
        v = verification.by_id(c["change_id"]) if verification is not None else None
        if getattr(v, "sql", ""):
            c.setdefault("sql", {})["verification"] = v.sql
    for d in data_quality:
        exp = (d.get("experiment") or {}).get("experiment") if d.get("check") == "srm" else None
        if exp and "sql" not in d:
            d["sql"] = srm_sql(sp, exp)
