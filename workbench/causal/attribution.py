"""Which causal mechanism changed: ``dowhy.gcm`` distribution-change attribution.

Every measure of the graph (:mod:`workbench.causal.graph`) is a node with a
mechanism: a root (sessions) has a distribution, a child (conversions) a
function of its parents plus noise. Between the pre-period (the same hours
one and two weeks earlier) and the divergence window, each mechanism may or
may not have changed. ``gcm.distribution_change`` fits the graph on both
periods, tests every mechanism for a change (a conditional independence test
of "which period" and the node given its parents) and splits the change of
the target's mean into Shapley contributions of the mechanisms that changed
(Budhathoki et al. 2021). A conversion-rate drop shows up as the
*conversions* mechanism (fewer conversions for the same sessions and
latency); a traffic drop as the *sessions* mechanism, with conversions
following; a latency regression as the latency mechanism.

Rows are cell x bucket sums of the measures inside the divergence's slice
(when given), sampled down to ``max_rows`` per period so the whole
attribution stays within a second or so. A cell is a fixed hash bucket of
leaves, so both periods have the same number of rows per hour and a mean per
row is the total divided by a constant: with leaf rows, a new app version
(more leaves, each small) would lower the mean sessions per row and look like
a traffic drop. Mechanisms are set by hand (an
empirical distribution for roots, a linear additive-noise model for
children), never by ``gcm.auto`` (its model selection costs ~12 s).

Reference
---------
Budhathoki, K., Janzing, D., Bloebaum, P. and Ng, H. (2021). Why did the
distribution change? *AISTATS*, PMLR 130:1666-1674.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..store.duck import q
from ..store.queries import filter_sql
from ._table import _ts, utc
from .graph import MeasureGraph, load_graph


@dataclass(frozen=True)
class AttributionConfig:
    """How the attribution runs.

    Attributes
    ----------
    cells, min_cell_count:
        Leaves are hashed into at most ``cells`` cells (fewer in a small slice,
        so that a cell holds ~``min_cell_count`` of the numerator per bucket);
        a row is a cell and a bucket.
    max_rows:
        Cell-bucket rows sampled per period.
    num_samples:
        Samples drawn per Shapley evaluation.
    weeks:
        Pre-periods: the same hours this many weeks earlier (when the data has them).
    post_max:
        At most this much of the divergence window is used.
    alpha:
        Level of the mechanism-change tests (FDR-controlled by Benjamini-Hochberg).
    seed:
        Seed of the sampling and of gcm's draws.
    """

    cells: int = 32
    min_cell_count: float = 20.0
    max_rows: int = 1500
    num_samples: int = 1000
    weeks: tuple[int, ...] = (1, 2)
    post_max: pd.Timedelta = pd.Timedelta("72h")
    alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class MechanismAttribution:
    """Contributions of each mechanism to the change of the target's mean."""

    target: str
    contributions: dict  # node -> contribution to the change of mean log(target) per cell-hour
    changed: dict  # node -> bool: did its mechanism change (test at alpha, FDR)
    old_mean: float  # mean log(target) per cell-hour before
    new_mean: float  # ... and during the divergence
    top: str | None  # the mechanism that carries the change
    graph: MeasureGraph
    slice: dict
    n_old: int
    n_new: int
    seconds: float
    sql: str = field(default="", repr=False)  # the rows the mechanisms were fit on

    @property
    def change(self) -> float:
        return self.new_mean - self.old_mean

    def to_frame(self) -> pd.DataFrame:
        rows = [{"node": n, "contribution": c, "changed": bool(self.changed.get(n, False)),
                 "share": (c / self.change) if self.change else np.nan,
                 "parents": ", ".join(self.graph.parents(n))}
                for n, c in self.contributions.items()]
        return pd.DataFrame(rows).sort_values("contribution", key=np.abs, ascending=False,
                                              ignore_index=True)

    def to_dict(self) -> dict:
        return {"target": self.target,
                "contributions": {k: float(v) for k, v in self.contributions.items()},
                "changed": {k: bool(v) for k, v in self.changed.items()},
                "old_mean": float(self.old_mean), "new_mean": float(self.new_mean),
                "top": self.top, "graph": self.graph.to_dict(), "slice": self.slice,
                "n_old": self.n_old, "n_new": self.n_new, "seconds": round(self.seconds, 3),
                **({"sql": self.sql} if self.sql else {})}  # show me the query (issue 17)

    def evidence(self) -> str:
        if self.top is None:
            return (f"gcm: no mechanism carries the change of {self.target} "
                    f"({np.expm1(self.change):+.0%}; no mechanism changed significantly in the "
                    "same direction)")
        parents = self.graph.parents(self.top)
        what = (f"the {self.top} mechanism ({self.top} given {', '.join(parents)})" if parents
                else f"the {self.top} mechanism (its own volume)")
        others = ", ".join(f"{n} {c:+.3f}" for n, c in self.contributions.items()
                           if n != self.top)
        return (f"gcm distribution change: {what} changed and carries "
                f"{self.contributions[self.top]:+.3f} of the {self.change:+.3f} change in log "
                f"{self.target} ({np.expm1(self.change):+.0%})"
                + (f"; {others}" if others else ""))


def _rows_sql(sp, nodes, *, windows, filt, cells: int) -> str:
    secs = int(sp.manifest.grain_td.total_seconds())
    leaf = ", ".join(q(d) for d in sp.manifest.dimensions)
    sums = ", ".join(f"SUM({q(n)}) AS {q(n)}" for n in nodes)
    cases = " ".join(f"WHEN ts >= {_ts(a)} AND ts < {_ts(b)} THEN {int(k)}"
                     for k, (a, b) in enumerate(windows))
    inwin = " OR ".join(f"(ts >= {_ts(a)} AND ts < {_ts(b)})" for a, b in windows)
    return (f"SELECT CASE {cases} END AS period, time_bucket(INTERVAL '{secs} seconds', ts) "
            f"AS ts, CAST(hash({leaf}) % {int(cells)} AS INTEGER) AS cell, {sums}\n"
            f"FROM {sp.schema}.events\n"
            f"WHERE ({inwin}) AND {filter_sql(sp, filt)}\nGROUP BY ALL ORDER BY ALL")


def attribute_mechanisms(con, sp, metric, *, onset, end, grain=None,
                         graph: dict | MeasureGraph | None = None, slice: dict | None = None,
                         target: str | None = None,
                         config: AttributionConfig | None = None) -> MechanismAttribution:
    """Attribute the change of the metric to the mechanisms of the measures' graph.

    Parameters
    ----------
    con, sp, metric:
        Store connection, stored passport and the metric's spec.
    onset, end:
        The divergence window (first and last bucket).
    graph:
        ``Passport.graph`` (the parsed ``graph.yaml``), a :class:`MeasureGraph`,
        or None for :func:`~workbench.causal.graph.default_graph`.
    slice:
        Only leaves in this slice (the localized divergence); None: all.
    target:
        The node whose mean change is attributed. Default: the metric itself
        (a ratio metric becomes a node ``num / den`` with its numerator and
        denominator as parents; a sum metric is its measure).

    Examples
    --------
    >>> a = attribute_mechanisms(st.con, sp, spec, onset=onset, end=end,
    ...                          slice={"platform": "ios"})            # doctest: +SKIP
    >>> a.top                                                           # doctest: +SKIP
    'conversions'
    """
    from ._dowhy import gcm_settings, quiet

    cfg = config or AttributionConfig()
    t_start = time.perf_counter()
    grain = pd.Timedelta(grain) if grain is not None else sp.manifest.grain_td
    g = load_graph(graph, sp.manifest)
    measures = list(sp.manifest.measures)
    derived = None  # a ratio metric is a node of its own: num / den, exactly
    if target is None and metric.kind == "ratio":
        derived = metric.name if metric.name not in measures else f"{metric.name}_ratio"
        target = derived
    target = target or metric.numerator
    if derived is None and target not in measures:
        from ..errors import UsageError

        raise UsageError(f"target '{target}' is not a measure of {sp.name}; measures are: "
                         + ", ".join(measures))
    edges = list(g.edges)
    if derived is not None:
        edges += [(metric.numerator, derived), (metric.denominator, derived)]
    graph_t = MeasureGraph(tuple(edges), g.source)
    # a measure outside the graph is a root of its own
    nodes = sorted(graph_t.ancestors(target) | {target})
    measure_nodes = [n for n in nodes if n != derived]
    onset = utc(onset)
    stop = min(utc(end) + grain, onset + cfg.post_max)
    lo = pd.Timestamp(con.execute(f"SELECT min(ts) FROM {sp.schema}.events").fetchone()[0])
    windows = [(onset, stop)]
    for w in cfg.weeks:
        off = pd.Timedelta(days=7 * w)
        if onset - off >= lo.tz_convert("UTC").floor(grain) and stop - off <= onset:
            windows.append((onset - off, stop - off))
    if len(windows) == 1:  # too little history: the period just before
        windows.append((max(onset - (stop - onset), lo), onset))
    rows_sql = _rows_sql(sp, measure_nodes, windows=windows, filt=slice,
                         cells=_cells(con, sp, metric, slice, windows[0], cfg))
    df = con.execute(rows_sql).df()
    # log scale: counts are rates times volumes, so mechanisms are multiplicative and
    # a ratio metric is a difference (the metric's node is exact, with no noise)
    for n in measure_nodes:
        df[n] = np.log(df[n].astype(float).clip(lower=0.0) + 0.5)
    if derived is not None:
        df[derived] = df[metric.numerator] - df[metric.denominator]
    rng = np.random.default_rng(cfg.seed)

    def sample(part: pd.DataFrame) -> pd.DataFrame:
        part = part[nodes].reset_index(drop=True)
        if len(part) > cfg.max_rows:
            part = part.iloc[np.sort(rng.choice(len(part), cfg.max_rows, replace=False))]
        return part.reset_index(drop=True)

    new = sample(df[df["period"] == 0])
    old = sample(df[df["period"] > 0])
    if min(len(new), len(old)) < 30:
        raise ValueError(f"too few rows to fit mechanisms ({len(old)} before, {len(new)} "
                         f"during the divergence) in {slice or 'the whole feed'}")

    edges = [(a, b) for a, b in graph_t.edges if a in nodes and b in nodes]
    with quiet(cfg.seed), gcm_settings():
        from dowhy import gcm
        import networkx as nx

        dag = nx.DiGraph()
        dag.add_nodes_from(nodes)
        dag.add_edges_from(edges)
        scm = gcm.StructuralCausalModel(dag)
        for n in nodes:
            if dag.in_degree(n) == 0:
                scm.set_causal_mechanism(n, gcm.EmpiricalDistribution())
            elif n == derived:
                parents = sorted(dag.predecessors(n))  # gcm's order of parent columns
                coef = [1.0 if p == metric.numerator else -1.0 for p in parents]
                scm.set_causal_mechanism(n, gcm.AdditiveNoiseModel(
                    gcm.ml.create_linear_regressor_with_given_parameters(coef)))
            else:
                scm.set_causal_mechanism(
                    n, gcm.AdditiveNoiseModel(gcm.ml.create_linear_regressor()))
        contrib, changed, _, _ = gcm.distribution_change(
            scm, old, new, target, num_samples=cfg.num_samples,
            difference_estimation_func=_mean_difference,
            independence_test=_two_sample_test,
            conditional_independence_test=_conditional_shift_test,
            mechanism_change_test_significance_level=cfg.alpha,
            return_additional_info=True,
            shapley_config=gcm.shapley.ShapleyConfig(n_jobs=1))
    contrib = {str(k): float(v) for k, v in contrib.items() if k != derived}
    changed = {str(k): bool(v) for k, v in changed.items() if k != derived}
    old_mean, new_mean = float(old[target].mean()), float(new[target].mean())
    delta = new_mean - old_mean
    top = None
    if contrib and delta:
        cand = [(n, c) for n, c in contrib.items()
                if changed.get(n) and np.sign(c) == np.sign(delta)]
        if cand:
            top = max(cand, key=lambda x: abs(x[1]))[0]
    return MechanismAttribution(target=target, contributions=contrib, changed=changed,
                                old_mean=old_mean, new_mean=new_mean, top=top, graph=graph_t,
                                slice=dict(slice or {}), n_old=len(old), n_new=len(new),
                                seconds=time.perf_counter() - t_start, sql=rows_sql)


def _cells(con, sp, metric, slice, window, cfg) -> int:
    """As many cells as keep ~``min_cell_count`` of the metric's numerator per cell-hour.

    A log count of a handful of events is mostly noise (and the +0.5 that
    keeps zeros finite bends it), so a small slice gets few, larger cells.
    """
    a, b = window
    n, hours = con.execute(
        f"SELECT SUM({q(metric.numerator)}), COUNT(DISTINCT time_bucket(INTERVAL "
        f"'{int(sp.manifest.grain_td.total_seconds())} seconds', ts)) FROM {sp.schema}.events "
        f"WHERE ts >= {_ts(a)} AND ts < {_ts(b)} AND {filter_sql(sp, slice)}").fetchone()
    if not n or not hours:
        return cfg.cells
    per_hour = float(n) / float(hours)
    return int(np.clip(per_hour // cfg.min_cell_count, 4, cfg.cells))


def _mean_difference(old: np.ndarray, new: np.ndarray) -> float:
    """Change of the mean: contributions then add up to the observed change."""
    return float(np.mean(new) - np.mean(old))


def _two_sample_test(x: np.ndarray, labels: np.ndarray) -> float:
    """p-value that a root node's distribution is the same in both periods.

    Mann-Whitney on the node's values split by period label: quick, robust to
    heavy tails (sessions per leaf are), and it tests the location shift the
    attribution is about.
    """
    from scipy.stats import mannwhitneyu

    x = np.asarray(x, dtype=float).reshape(len(labels), -1)[:, 0]
    lab = np.asarray(labels).reshape(-1)
    a, b = x[lab == lab[0]], x[lab != lab[0]]
    if len(a) < 3 or len(b) < 3:
        return 1.0
    return float(mannwhitneyu(a, b).pvalue)


def _conditional_shift_test(x: np.ndarray, labels: np.ndarray, z: np.ndarray) -> float:
    """p-value that a node depends on its parents the same way in both periods.

    A regression of the node on its parents, each parent's slope and the
    intercept allowed to differ by period (a Chow test, Chow 1960), with
    heteroskedasticity-robust errors: per-leaf counts have variances that
    grow with their level.
    """
    from statsmodels.regression import linear_model as sm  # not statsmodels.api: ~5x faster import

    y = np.asarray(x, dtype=float).reshape(len(labels), -1)[:, 0]
    lab = np.asarray(labels).reshape(-1)
    d = (lab != lab[0]).astype(float)
    zz = np.asarray(z, dtype=float).reshape(len(lab), -1)
    X = np.column_stack([np.ones_like(y), zz, d, zz * d[:, None]])
    try:
        fit = sm.OLS(y, X).fit(cov_type="HC1")
    except (ValueError, np.linalg.LinAlgError):
        return 1.0
    k = zz.shape[1]
    R = np.zeros((k + 1, X.shape[1]))
    for i in range(k + 1):
        R[i, 1 + k + i] = 1.0
    try:
        p = float(np.asarray(fit.wald_test(R, scalar=True).pvalue))
    except (ValueError, np.linalg.LinAlgError):
        return 1.0
    return p if np.isfinite(p) else 1.0
