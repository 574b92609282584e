"""Which slices explain a divergence: a significance-gated greedy search of the cuboid lattice.

A *slice* is a conjunction of dimension = value (``{platform: ios, app_version: 5.2}``);
a *cuboid* is the set of slices over one set of dimensions. Given leaves (one row per
finest combination of dimension values) with the baseline expectation and the
observed sums, :func:`localize` returns the smallest set of slices that jointly
explain the deviation, each with its share, its effect and how sure we are.

Method
------
1. **Expectation per leaf.** For a sum metric the baseline sum. For a ratio metric
   the leaf's observed denominator times its baseline rate; the rate is shrunk by
   empirical Bayes (method of moments) towards a main-effects model of the baseline
   rates (iterative proportional fitting over the dimensions, each factor itself
   shrunk), so leaves and values with little baseline volume do not produce wild
   expectations, and the leftover uncertainty of the baseline rate enters the
   variance. Leaf-level rates make the search blind to shifts of the denominator's
   mix *within* a slice (Kitagawa 1955): those are reported by
   :func:`workbench.localize.decompose_rate_mix`, not mistaken for rate changes.
2. **Noise model.** ``Var(y - mu) = a*mu + b*mu**2 (+ baseline-rate variance)`` per
   leaf, fitted robustly on the leaves (``_noise``): Poisson/binomial-like counts
   with over-dispersion ``a`` (at least 1 for whole-number counts) and multiplicative
   wobble ``b`` (forecast error, period-to-period rate noise). After a first search
   the model is refitted without trimming on the leaves left unexplained, which
   exposes over-dispersion the robust fit cannot see, and the search runs again.
3. **Slice test.** The efficient score test that every leaf of the slice moved by one
   common relative change (Squeeze's ripple effect as a likelihood statement): with
   Poisson noise it is the test of observed against expected slice totals given the
   volumes, with multiplicative noise it counts how many leaves agree instead of
   how large the largest is; its Poisson part is corrected towards the signed root
   of the Poisson deviance so small counts keep the right tail.
4. **Lattice and pruning.** The search decides its depth: the lattice is enumerated
   whole when it holds at most ``max_cuboids`` cuboids (4-6 dimensions), otherwise to
   depth 3 or as deep as that budget allows, and slices deeper than that are reached by
   descent (step 7) where the rest of a chosen slice stood still; ``max_depth`` is only
   a cap. A cuboid
   holding a dimension and one of its roll-ups (``{region, country}``) is skipped as
   redundant. Aggregation is ``numpy.bincount`` over integer codes: the deepest
   cuboids from the leaves, shallower ones from their smallest parent cuboid.
   High-cardinality dimensions are pruned by explained deviation (a child slice's
   deviation shows in its parents, the Apriori/iDice argument): only values whose
   own slice carries a noticeable share of the deviation or is significant take part
   in deeper cuboids (at most ``max_values``); the rest are pooled into one "other"
   bucket that keeps totals exact and is tested at depth 1 but never reported.
   Input too large to hold leaf by leaf (more than ``max_leaves`` rows, or a DuckDB
   relation of unit-level rows) is screened and pooled in DuckDB *before* any leaf is
   materialized (:mod:`workbench.localize._sql`): one GROUPING SETS scan tests every
   dimension value against its proportional share of the divergence, narrow
   dimensions are kept whole within a cell budget, and one more scan groups the rows
   by the pooled codes into cells, which are searched as leaves are.
5. **FDR.** Every slice tested gets a p-value; Benjamini and Hochberg (1995) q-values
   are computed over all of them, weighted (Genovese, Roeder and Wasserman 2006) so
   that every layer of the lattice holds an equal share of the family: the thousands
   of deep slices do not take power from the few shallow ones. The first slice chosen
   passes the step-up threshold at ``alpha``, every further one at ``extra_alpha``.
6. **Selection (greedy, explaining away).** Repeatedly take the slice with the
   largest statistic on the leaves not yet explained, provided it passes the BH
   step-up threshold for the next discovery and its common change is beyond the
   noise floor (``min_effect_sd`` times ``sqrt(b)``); its leaves are then taken out of
   every other slice (incremental bincounts) and slices containing it are barred, so
   several disjoint-ish root causes can be found. Because the statistic grows with
   the square root of the volume that moves together, a parent whose children are
   all affected alike beats each child (``{region: EU}`` rather than its countries),
   while a child carrying all of its parent's deviation beats the diluted parent.
7. **Consolidation.** Real effects are rarely equal across a root cause (every device
   fails, but by different amounts), so each chosen slice is then moved along the
   lattice by an explicit rule: *ascend* to a parent when the parent's remainder
   moved the same way, clearly (``affected_z``), and broadly (along every further
   dimension the parts that stood still hold little volume, ``coverage``) - which
   rejects a remainder that moved only because another root cause sits inside it;
   *descend* to a child when the rest of the slice confidently stood still
   (``stillness``). It runs when a slice is chosen and again with all others fixed.
8. **Parsimony.** Slices carrying less than ``min_share`` of what the chosen set
   explains (against the leaf expectation and as a contribution to the metric) are
   dropped: real but tiny local anomalies do not explain the divergence.
9. **Global shift.** The whole population is a candidate too (the empty filter),
   under the same ascend rule: when everything moved alike the answer is ``{}`` and
   the expectation is rescaled before looking for slices that moved beyond it. When
   part of the population stood still it is never ``{}``; if no slice explains at
   least half of a significant divergence, ``Localization.unseparated`` names the
   significant slices that carry it.

This combines the ripple effect of Squeeze (Li et al., ISSRE 2019), the weighted
risk of RiskLoc (Kalander 2022) and explanatory power with surprise from Adtributor
(Bhagwan et al., NSDI 2014) into one likelihood criterion plus explicit
uniformity rules, and replaces the Monte-Carlo tree search of HotSpot (Sun et al.,
IEEE Access 2018) by exact enumeration of the pruned lattice.

References
----------
Bhagwan et al. (2014) Adtributor: revenue debugging in advertising systems. NSDI.
Sun et al. (2018) HotSpot: anomaly localization for additive KPIs with
multi-dimensional attributes. IEEE Access 6.
Li et al. (2019) Generic and robust localization of multi-dimensional root causes
(Squeeze). ISSRE.
Kalander (2022) RiskLoc: localization of multi-dimensional root causes by weighted
risk. arXiv:2205.10004.
Benjamini and Hochberg (1995) Controlling the false discovery rate. JRSS B 57.
Genovese, Roeder and Wasserman (2006) False discovery control with p-value
weighting. Biometrika 93.
Kitagawa (1955) Components of a difference between two rates. JASA 50.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench.errors import UsageError
from workbench.localize import _noise, _sql
from workbench.localize._cube import (
    CodedLeaves,
    ancestors_of,
    combine_codes,
    decode_key,
    enumerate_cuboids,
    prepare_leaves,
    resolve_dimensions,
)

__all__ = ["LocalizeConfig", "Localization", "SliceFinding", "localize"]


@dataclass(frozen=True)
class LocalizeConfig:
    """Tuning of :func:`localize`.

    Parameters
    ----------
    alpha
        False discovery rate (Benjamini-Hochberg) for q-values and for the gate a
        slice must pass to be chosen.
    extra_alpha
        False discovery rate a second and every further slice must pass (the step-up
        threshold of Benjamini-Hochberg at this rate, when lower than ``alpha``): each
        extra element of the answer must be surer than the first.
    min_share
        A chosen slice must carry at least this share of the deviation the chosen set
        explains (a real but tiny local anomaly does not explain the divergence).
    min_relative_change
        A chosen slice must move by at least this much relative to its expectation.
    min_effect_sd
        A chosen slice's common relative change must be at least this many standard
        deviations of the leaves' multiplicative noise (``sqrt(b)`` of the variance
        model): a shift smaller than a leaf's own period-to-period wobble is background.
    max_slices
        At most this many root-cause slices.
    max_values
        Per dimension, at most this many values take part in cuboids deeper than 1
        (high-cardinality pruning).
    prune_share
        A value of a high-cardinality dimension takes part in deeper cuboids when its
        slice carries at least this share of the divergence or is significant.
    affected_z
        A parent's remainder counts as moved alike (so the parent is preferred to the
        slice) when its statistic reaches this value in the same direction and its
        change is beyond the noise floor.
    stillness
        A part of a slice counts as still when its relative change, two standard errors
        up, stays below the noise floor or this fraction of the moving part's change.
        A child carries its parent (descend) when the rest of the parent is still.
    coverage
        A parent is preferred (ascend) when, along every further dimension, the parts
        of its remainder that are still hold less than ``1 - coverage`` of its volume.
    global_shift
        Consider the whole population (empty filter) as an explanation.
    recalibrate
        Refit the noise model on the leaves left unexplained and search again (catches
        over-dispersion that the first, trimmed fit cannot see).
    refine
        Move each chosen slice up or down the lattice (see ``affected_z``,
        ``stillness`` and ``coverage``) when it is chosen and again once all are chosen.
    n_candidates
        Rows of :attr:`Localization.candidates` (most significant slices tested).
    max_leaves
        Input with more rows than this (a frame of leaves, or a DuckDB relation of unit
        rows or leaves) is screened and pooled in DuckDB before anything is
        materialized (see :mod:`workbench.localize._sql`); smaller input is searched
        leaf by leaf.
    max_cells
        Screened path: budget of cells (a bound from the pooled cardinalities, which
        uses hierarchies); narrow dimensions are kept whole only within it, and the
        weakest kept values are pooled first when the screen alone exceeds it.
    screen_z
        Screened path: a value whose deviation from its proportional share carries at
        least ``prune_share`` of the divergence is kept when its statistic reaches
        this (values significant at the Bonferroni level are kept regardless).
    max_cuboids
        The cuboid lattice is enumerated (and every slice in it tested) down to the
        deepest layer whose lattice holds at most this many cuboids, and at least to
        depth 3; slices deeper than that are reached by descent from a chosen slice
        (step 7), where the rest of the slice stood still.
    """

    alpha: float = 0.05
    extra_alpha: float = 0.01
    min_share: float = 0.02
    min_relative_change: float = 0.0
    min_effect_sd: float = 1.5
    max_slices: int = 10
    max_values: int = 100
    prune_share: float = 0.005
    affected_z: float = 3.0
    stillness: float = 0.1
    coverage: float = 0.8
    global_shift: bool = True
    refine: bool = True
    recalibrate: bool = True
    n_candidates: int = 100
    max_leaves: int = 500_000
    max_cells: int = 100_000
    screen_z: float = 3.0
    max_cuboids: int = 64

    def __post_init__(self):
        if not 0 < self.alpha < 1 or not 0 < self.extra_alpha < 1:
            raise UsageError("LocalizeConfig.alpha and extra_alpha must be in (0, 1), got "
                             f"{self.alpha} and {self.extra_alpha}")
        if not 0 <= self.min_share < 1:
            raise UsageError(f"LocalizeConfig.min_share must be in [0, 1), got {self.min_share}")
        if self.max_slices < 1 or self.max_values < 1:
            raise UsageError("LocalizeConfig.max_slices and max_values must be at least 1")
        if self.max_leaves < 1 or self.max_cells < 2:
            raise UsageError("LocalizeConfig.max_leaves must be at least 1 and max_cells at "
                             f"least 2, got {self.max_leaves} and {self.max_cells}")


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class SliceFinding:
    """One slice that explains part of the divergence.

    Attributes
    ----------
    filter
        Dimension -> value; ``{}`` is the whole population.
    explained_share
        The slice's contribution over the total divergence. For a ratio metric the
        contribution is ``obs_num - obs_den * base_num / base_den`` over the slice: the
        deviation that comes from the slice's own rate change.
    baseline, observed
        Metric value of the slice (a sum, or ``sum(num) / sum(den)``).
    relative_change
        ``observed / baseline - 1``.
    effect_size
        Relative deviation of the slice from its leaf-by-leaf expectation,
        ``(Y - E) / E``; for a ratio this is the rate change with the mix inside the
        slice held fixed (equal to ``relative_change`` for a sum metric).
    p_value, q_value
        Test of the slice against its expectation; q is Benjamini-Hochberg over every
        slice tested.
    confidence
        ``1 - max(q_value, q of the slice given the other chosen slices)``: sure that
        the slice moved and that it adds to the others.
    n_leaves
        Leaves in the slice.
    den_share
        Share of the observed denominator (ratio) or of the baseline (sum) in the slice.
    """

    filter: dict
    explained_share: float
    baseline: float
    observed: float
    relative_change: float
    effect_size: float
    p_value: float
    q_value: float
    confidence: float
    n_leaves: int
    den_share: float

    @property
    def depth(self) -> int:
        return len(self.filter)

    def to_dict(self) -> dict:
        out = {k: _json_float(v) for k, v in asdict(self).items() if k not in ("filter", "n_leaves")}
        out["filter"] = {str(k): str(v) for k, v in self.filter.items()}
        out["n_leaves"] = int(self.n_leaves)
        return out


@dataclass(frozen=True, eq=False)
class Localization:
    """Result of :func:`localize`.

    Attributes
    ----------
    slices
        Chosen root-cause slices, most explanatory first.
    kind, dimensions
        What was searched.
    baseline, observed, relative_change
        The metric over all leaves.
    deviation
        Total divergence in numerator units: ``obs - base`` (sum) or
        ``obs_num - obs_den * base_rate`` (ratio).
    rate_deviation, mix_deviation
        For a ratio: the part of ``deviation`` from rate changes inside leaves and
        the part from the denominator's mix moving between leaves (Kitagawa); for a
        sum, ``rate_deviation == deviation`` and ``mix_deviation == 0``.
    explained_share
        Share of the divergence explained by the union of the chosen slices.
    p_value
        Test of the whole population against its expectation.
    n_leaves, n_tested
        Leaves in (cells, when the input was screened and pooled in DuckDB: see
        ``LocalizeConfig.max_leaves``), slices tested (the BH family).
    noise
        Fitted variance model ``{"a", "b", "counts"}``.
    candidates
        The most significant slices tested (a DataFrame), chosen or not.
    unseparated
        When the whole moved significantly but the chosen slices explain less than half
        of it: up to five significant slices (filters) that carry the divergence and
        that the search could not separate into causes (none of them passes as a cause
        on its own, e.g. a deviation spread thinly but not evenly). Empty otherwise: the
        empty filter ``{}`` is only ever an answer when everything moved alike.
    """

    slices: tuple
    kind: str
    dimensions: tuple
    baseline: float
    observed: float
    relative_change: float
    deviation: float
    rate_deviation: float
    mix_deviation: float
    explained_share: float
    p_value: float
    n_leaves: int
    n_tested: int
    noise: dict
    candidates: pd.DataFrame = field(repr=False)
    config: LocalizeConfig = field(default_factory=LocalizeConfig, repr=False)
    unseparated: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per chosen slice; ``slice`` renders the filter as ``a=x&b=y``."""
        rows = []
        for s in self.slices:
            d = s.to_dict()
            d["slice"] = _render(s.filter)
            d["depth"] = s.depth
            rows.append(d)
        cols = ["slice", "depth", "explained_share", "baseline", "observed", "relative_change",
                "effect_size", "p_value", "q_value", "confidence", "n_leaves", "den_share", "filter"]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict:
        """JSON-serializable summary (no DataFrames)."""
        return {
            "kind": self.kind,
            "dimensions": list(self.dimensions),
            "baseline": _json_float(self.baseline),
            "observed": _json_float(self.observed),
            "relative_change": _json_float(self.relative_change),
            "deviation": _json_float(self.deviation),
            "rate_deviation": _json_float(self.rate_deviation),
            "mix_deviation": _json_float(self.mix_deviation),
            "explained_share": _json_float(self.explained_share),
            "p_value": _json_float(self.p_value),
            "n_leaves": int(self.n_leaves),
            "n_tested": int(self.n_tested),
            "noise": {"a": _json_float(self.noise["a"]), "b": _json_float(self.noise["b"]),
                      "counts": bool(self.noise["counts"])},
            "slices": [s.to_dict() for s in self.slices],
            "unseparated": [{str(k): str(v) for k, v in f.items()} for f in self.unseparated],
        }


def _render(flt: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in flt.items()) if flt else "(all)"


# --------------------------------------------------------------------------- model


def _main_effects_rate(cube: CodedLeaves, iters: int = 6) -> np.ndarray:
    """Baseline rate of each leaf under a main-effects (independence) model.

    Iterative proportional fitting of ``rate_i = r0 * prod_d g_d(value_i)`` to the
    baseline numerator margins of every dimension: the prior a leaf's own baseline rate
    is shrunk towards. Each factor is itself shrunk towards 1 by a method-of-moments
    prior (Poisson sampling variance ``1 / E_v`` against the real spread ``tau_d**2``
    of the factors), so a value seen a handful of times does not get a wild rate.
    """
    bn, bd = cube.base_num, cube.base_den
    r0 = bn.sum() / bd.sum()
    p = np.full(cube.n, r0)
    for _ in range(iters):
        for i, codes in enumerate(cube.codes):
            card = len(cube.labels[i])
            num = np.bincount(codes, weights=bn, minlength=card)
            exp = np.bincount(codes, weights=bd * p, minlength=card)
            pos = exp > 0
            if not pos.any():
                continue
            rho = num[pos] / exp[pos]
            tau2 = (np.sum(exp[pos] * (rho - 1.0) ** 2) - pos.sum()) / np.sum(exp[pos])
            if tau2 <= 0:
                continue
            kappa = 1.0 / tau2
            p = p * ((num + kappa) / (exp + kappa))[codes]
    return p


def _shrunk_rates(cube: CodedLeaves) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes baseline rate per leaf, shrunk to the main-effects prior, and its variance.

    ``E[bd_i * (r_i - p_i)**2] = tau2 * bd_i + s * p_i``: ``tau2`` is the real spread of
    leaf rates around the prior, ``s * p_i / bd_i`` the sampling variance of a leaf's
    rate (``s`` is 1 for raw counts and smaller when the baseline is an average of
    several periods, which the leaves do not say). Both are fitted across leaves of
    different sizes by weighted least squares (``s`` is fixed at 1 when the baseline
    numerators are whole numbers, and capped at 1 otherwise); the prior weighs ``k_i = s * p_i / tau2``
    (in denominator units) and the posterior variance of a leaf's rate is about
    ``s * rate / (bd + k)``.
    """
    bn, bd = cube.base_num, cube.base_den
    p = _main_effects_rate(cube)
    pos = bd > 0
    if pos.sum() < 8:
        return p, np.zeros_like(p)
    r = bn[pos] / bd[pos]
    t = bd[pos] * (r - p[pos]) ** 2
    x1, x2 = bd[pos], np.abs(p[pos])
    counts = _noise.is_count_data(bn)
    tau2, s_ = 0.0, 1.0
    for _ in range(4):
        pred = np.maximum(tau2 * x1 + s_ * x2, 1e-300)
        w = 1.0 / pred ** 2
        if counts:
            # Raw counts: the sampling variance is Poisson (s = 1); only tau2 is unknown.
            tau2 = max(float(np.sum(w * x1 * (t - x2))) / max(float(np.sum(w * x1 * x1)), 1e-300), 0.0)
        else:
            tau2, s_ = _noise._wls_two(x1, x2, t, w, 0.0)
            # With few leaves or leaves of similar size the two terms are hard to tell
            # apart; s above 1 (more than Poisson) would shrink real rate differences away.
            s_ = min(s_, 1.0)
    if tau2 <= 0:
        return p, s_ * np.abs(p) / max(bd.sum(), 1e-300)
    k = s_ * np.abs(p) / tau2
    rate = np.where(pos, (bn + k * p) / np.where(pos, bd + k, 1.0), p)
    return rate, s_ * np.abs(rate) / (bd + k)


def _expectation(cube: CodedLeaves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed ``y``, expected ``mu`` and the variance of ``mu`` per leaf (numerator units)."""
    y = cube.obs_num
    if cube.kind == "sum":
        return y, cube.base_num.copy(), np.zeros(cube.n)
    if cube.base_den.sum() <= 0:
        raise UsageError("the baseline denominator sums to zero: no baseline rate to compare with")
    rate, var_rate = _shrunk_rates(cube)
    return y, cube.obs_den * rate, cube.obs_den ** 2 * var_rate


def leaf_noise(cube: CodedLeaves) -> np.ndarray:
    """Variance of each leaf's observed numerator around its expectation (numerator units).

    The same model :func:`localize` tests slices with (see ``_noise``); shared with
    :func:`workbench.localize.decompose_rate_mix` for the test of the rate effect.
    """
    y, mu, off = _expectation(cube)
    a, b = _noise.fit_variance(y, mu, counts=_noise.is_count_data(y), offset=off)
    pos = mu[mu > 0]
    m0 = float(np.quantile(pos, 0.05)) if pos.size else 1.0
    mf = np.maximum(mu, m0)
    return a * mf + b * mf * mf + off


# Rows of the per-cell / per-slice measure arrays.
_Y, _M, _V, _U, _W, _MF, _N = range(7)


class _Cuboid:
    """Aggregates of one cuboid over the (pruned) cells, kept up to date as leaves are explained."""

    __slots__ = ("combo", "keys", "A", "N0", "selectable", "blocked", "depth", "n_fine", "p0",
                 "z0", "offset")

    def __init__(self, combo, keys, A, selectable, n_fine):
        self.combo, self.keys, self.A = combo, keys, A
        self.N0 = A[_N].copy()
        self.selectable = selectable
        self.blocked = ~selectable
        self.depth = len(combo)
        self.n_fine = n_fine


def _aggregate(key, n_cells, X, dense_limit):
    """Group ``key`` and sum every row of ``X``; returns (unique sorted keys, sums)."""
    kmax = int(key.max()) + 1 if key.size else 1
    if kmax <= max(dense_limit, 4 * n_cells):
        # Dense: one count over the key space, then compact positions for the sums.
        cnt = np.bincount(key, minlength=kmax)
        nz = np.flatnonzero(cnt)
        pos = np.zeros(kmax, dtype=np.int64)
        pos[nz] = np.arange(len(nz))
        inv = pos[key]
        A = np.stack([np.bincount(inv, weights=x, minlength=len(nz)) for x in X])
        return nz.astype(np.int64), A
    uniq, inv = np.unique(key, return_inverse=True)
    A = np.stack([np.bincount(inv, weights=x, minlength=len(uniq)) for x in X])
    return uniq, A


# --------------------------------------------------------------------------- verb


def localize(leaves, *, dimensions, kind: str = "ratio", hierarchies=None,
             max_depth: int | None = None, config: LocalizeConfig | None = None,
             labels=None) -> Localization:
    """Find the slices that explain the divergence between baseline and observed.

    Parameters
    ----------
    leaves
        One row per finest combination of dimension values: the dimension columns
        (strings or categoricals; a null is the value ``"(null)"``) and ``base_num``,
        ``obs_num`` (and ``base_den``, ``obs_den`` for a ratio metric) summed over the
        baseline (already scaled to the observed window) and the observed window.
        A pandas DataFrame, or a DuckDB relation with those columns whose rows may
        also be finer than leaves (unit-level rows: every sum is additive), e.g.
        :func:`workbench.store.queries.window_rows`. Input with more than
        ``config.max_leaves`` rows is screened and pooled in DuckDB first, so no leaf
        is materialized (see :mod:`workbench.localize._sql`).
    dimensions
        Dimension columns to search.
    kind
        ``"ratio"`` (value of a slice is ``sum(num) / sum(den)``) or ``"sum"``.
    hierarchies
        ``{coarse: fine}`` roll-ups whose columns are both in ``leaves``, e.g.
        ``{"region": "country"}``: ``{region: EU}`` is preferred to listing its
        countries and ``{region: EU, country: DE}`` is never produced.
    max_depth
        Largest number of dimensions in one slice; by default none (the number of
        dimensions): the data decide how deep the search goes (see
        ``LocalizeConfig.max_cuboids``).
    config
        :class:`LocalizeConfig`.
    labels
        ``{dimension: mapping}`` from stored value to the value reported, for
        dictionary-coded dimensions (a dict, a Series indexed by code, or a sequence
        indexed by code); values not in a mapping are reported as they are.

    Returns
    -------
    Localization

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> idx = pd.MultiIndex.from_product([list("abcd"), list("xyz")], names=["dc", "os"])
    >>> leaves = idx.to_frame(index=False)
    >>> leaves["base_num"] = 1000.0
    >>> leaves["obs_num"] = rng.poisson(1000, len(leaves)).astype(float)
    >>> leaves.loc[leaves.dc == "b", "obs_num"] = rng.poisson(600, 3)
    >>> loc = localize(leaves, dimensions=["dc", "os"], kind="sum")
    >>> [s.filter for s in loc.slices]
    [{'dc': 'b'}]
    """
    cfg = config or LocalizeConfig()
    if max_depth is not None and max_depth < 1:
        raise UsageError(f"max_depth must be at least 1, got {max_depth}")
    if isinstance(leaves, pd.DataFrame):
        if len(leaves) <= cfg.max_leaves:
            cube = prepare_leaves(_relabel(leaves, labels), dimensions, kind, hierarchies)
            return _Search(cube, max_depth, cfg).run()
        import duckdb

        dims, _ = resolve_dimensions(list(map(str, leaves.columns)), dimensions, kind,
                                     hierarchies)
        need = ["base_num", "obs_num"] + (["base_den", "obs_den"] if kind == "ratio" else [])
        con = duckdb.connect()
        try:
            rel = con.from_df(leaves[dims + need])
            cube = _sql.build_cells(rel, dimensions, kind, hierarchies, cfg, labels)
        finally:
            con.close()
        return _Search(cube, max_depth, cfg).run()
    if type(leaves).__name__ != "DuckDBPyRelation":
        raise UsageError("leaves must be a pandas DataFrame or a DuckDB relation, got "
                         f"{type(leaves).__name__}")
    dims, _ = resolve_dimensions([str(c) for c in leaves.columns], dimensions, kind,
                                 hierarchies)
    values = _sql.screen_values(leaves, dims, kind)
    if int(values[0].rows.sum()) <= cfg.max_leaves:
        # Small enough to search leaf by leaf: group to leaves in DuckDB and go on exactly.
        cols = ["base_num", "obs_num"] + (["base_den", "obs_den"] if kind == "ratio" else [])
        keys = ", ".join(_sql._q(d) for d in dims)
        sums = ", ".join(f"SUM({_sql._q(c)})::DOUBLE AS {_sql._q(c)}" for c in cols)
        frame = leaves.query("wb_src", f"SELECT {keys}, {sums} FROM wb_src GROUP BY ALL").df()
        if frame.empty:
            raise UsageError("leaves has no rows: nothing to localize")
        cube = prepare_leaves(_relabel(frame, labels), dimensions, kind, hierarchies)
    else:
        cube = _sql.build_cells(leaves, dimensions, kind, hierarchies, cfg, labels,
                                values=values)
    return _Search(cube, max_depth, cfg).run()


def _relabel(leaves: pd.DataFrame, labels) -> pd.DataFrame:
    """Replace stored codes by the values they stand for (only the distinct ones are mapped)."""
    if not labels:
        return leaves
    out = leaves.copy()
    for d, lab in labels.items():
        if d not in out.columns:
            continue
        codes, uniq = pd.factorize(out[d], use_na_sentinel=True)
        named = np.array([_sql._label(x, lab) for x in uniq], dtype=object)
        out[d] = pd.Categorical.from_codes(codes, categories=pd.Index(named).unique()) \
            if len(set(named)) == len(named) else pd.Series(
                np.where(codes >= 0, named[np.maximum(codes, 0)], None), index=out.index)
    return out


class _Search:
    """One run of the search; state lives here, results leave as frozen dataclasses."""

    def __init__(self, cube: CodedLeaves, max_depth: int | None, cfg: LocalizeConfig):
        n = len(cube.dims)
        self.cube, self.cfg = cube, cfg
        self.max_depth = n if max_depth is None else min(max_depth, n)
        # The lattice is enumerated whole when it is small; otherwise to depth 3 (or as
        # deep as the budget allows), and deeper slices are reached by descent only.
        depth = min(3, self.max_depth)
        while depth < self.max_depth and len(enumerate_cuboids(
                cube.dims, cube.coarse_of, depth + 1)) <= cfg.max_cuboids:
            depth += 1
        self.lattice_depth = depth
        self.dense_limit = 1 << 22

    # ---------------------------------------------------------------- set-up
    def _leaf_model(self):
        cube = self.cube
        y, mu, off = _expectation(cube)
        self.offset = off
        counts = _noise.is_count_data(y)
        a, b = _noise.fit_variance(y, mu, counts=counts, offset=off)
        if cube.pooled is not None and mu.sum() > 0:
            # Pooled cells are large: a shift of the whole population moves every cell by
            # the same factor, far beyond its sampling noise, and would be read as
            # multiplicative wobble (``b``) that then hides the shift itself. The global
            # shift is a candidate explanation (step 9), not noise: fit around the
            # rescaled expectation too and keep the fit that leaves less unexplained.
            f = float(y.sum() / mu.sum())
            if math.isfinite(f) and f > 0:
                a2, b2 = _noise.fit_variance(y, mu * f, counts=counts, offset=off * f * f)
                if (b2, a2) < (b, a):
                    a, b = a2, b2
        pos = mu[mu > 0]
        self.m0 = float(np.quantile(pos, 0.05)) if pos.size else 1.0
        self.y, self.mu0 = y, mu
        self.a, self.b, self.counts = a, b, counts
        self.nonneg = bool((y >= 0).all() and (mu >= 0).all())
        self.min_effect = self.cfg.min_effect_sd * math.sqrt(b)
        self.X = self._measures(y, mu, np.ones(cube.n), off)

    def _measures(self, y, mu, n, off):
        """Stack the per-leaf (or per-cell) measures that slices aggregate."""
        mf = np.maximum(mu, self.m0)
        v = self.a * mf + self.b * mf * mf + off
        u, w = _noise.leaf_score_terms(y, mu, v, mf)
        return np.stack([y, mu, v, u, w, mf, n.astype(float)])

    def _z(self, A) -> np.ndarray:
        return _noise.slice_z(A[_Y], A[_M], A[_V], A[_U], A[_W], A[_MF], a=self.a,
                              nonneg=self.nonneg)

    def _depth1_and_prune(self):
        """Depth-1 statistics on every value; pool minor values of wide dimensions."""
        cube, cfg, X = self.cube, self.cfg, self.X
        self.D_T = float(X[_Y].sum() - X[_M].sum())
        stats, max_abs = [], 0.0
        for i in range(len(cube.dims)):
            card = len(cube.labels[i])
            A = np.stack([np.bincount(cube.codes[i], weights=x, minlength=card) for x in X])
            stats.append(A)
            if card:
                max_abs = max(max_abs, float(np.max(np.abs(A[_Y] - A[_M]))))
        self.scale = max(abs(self.D_T), max_abs)
        n_values = sum(len(lab) for lab in cube.labels)
        z_keep = _noise.z_for_p(cfg.alpha / max(n_values, 1))
        pcodes, pcards, kept_maps, pruned_p = [], [], [], []
        pooled = cube.pooled or (False,) * len(cube.dims)
        for i, A in enumerate(stats):
            card = len(cube.labels[i])
            if pooled[i]:
                # Screened in SQL (``_sql``): the last code is already the "other" bucket.
                pcodes.append(cube.codes[i])
                pcards.append(card)
                kept_maps.append(np.arange(card - 1))
                continue
            if card <= cfg.max_values:
                pcodes.append(cube.codes[i])
                pcards.append(card)
                kept_maps.append(np.arange(card))
                continue
            D = A[_Y] - A[_M]
            z = self._z(A)
            interesting = (np.abs(D) >= cfg.prune_share * self.scale) | (np.abs(z) >= z_keep)
            order = np.argsort(-np.abs(D), kind="stable")
            kept = np.sort(order[interesting[order]][: cfg.max_values])
            remap = np.full(card, len(kept), dtype=np.int32)
            remap[kept] = np.arange(len(kept), dtype=np.int32)
            pcodes.append(remap[cube.codes[i]])
            pcards.append(len(kept) + 1)
            kept_maps.append(kept)
            gone = np.setdiff1d(np.arange(card), kept)
            gone = gone[A[_N][gone] > 0]
            pruned_p.append(_noise.two_sided_p(z[gone]))
        self.kept_maps, self.pcards = kept_maps, pcards
        if cube.screened_p is not None:
            pruned_p.append(cube.screened_p)
        self.pruned_p = np.concatenate(pruned_p) if pruned_p else np.empty(0)
        # Cells: leaves grouped by pruned codes (the leaves themselves when nothing was pooled).
        if all(len(k) == len(lab) for k, lab in zip(kept_maps, cube.labels)):
            self.pcodes, self.C, self.cell_of_leaf = pcodes, X, None
        else:
            if float(np.prod([float(c) for c in pcards])) < 2.0 ** 62:
                inv, _ = pd.factorize(combine_codes(pcodes, pcards, range(len(pcodes))))
            else:
                frame = pd.DataFrame({f"d{i}": c for i, c in enumerate(pcodes)})
                inv = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
            ncell = int(inv.max()) + 1
            first = np.empty(ncell, dtype=np.int64)
            first[inv[::-1]] = np.arange(len(inv))[::-1]
            self.pcodes = [c[first] for c in pcodes]
            self.C = np.stack([np.bincount(inv, weights=x, minlength=ncell) for x in X])
            self.cell_of_leaf = inv

    @property
    def n_cells(self) -> int:
        return int(self.C.shape[1])

    def _build_cuboids(self, keep_tests: bool = False):
        cube = self.cube
        self.combos = enumerate_cuboids(cube.dims, cube.coarse_of, self.lattice_depth)
        fine = {cube.dims.index(f) for f in cube.coarse_of}
        old = self.cuboids if keep_tests else None
        # Deepest cuboids from the cells, shallower ones from their smallest computed
        # parent (far fewer rows than cells): the usual data-cube trick.
        built: dict[tuple, _Cuboid] = {}
        for combo in sorted(self.combos, key=len, reverse=True):
            parents = [built[c] for c in built if len(c) == len(combo) + 1 and set(combo) <= set(c)]
            if parents:
                par = min(parents, key=lambda cb: len(cb.keys))
                sub_codes = {}
                mult = 1
                for i in par.combo:
                    sub_codes[i] = (par.keys // mult) % self.pcards[i]
                    mult *= self.pcards[i]
                key = combine_codes([sub_codes.get(i) for i in range(len(cube.dims))],
                                    self.pcards, combo)
                keys, A = _aggregate(key, len(par.keys), par.A, self.dense_limit)
            else:
                key = combine_codes(self.pcodes, self.pcards, combo)
                keys, A = _aggregate(key, self.n_cells, self.C, self.dense_limit)
            selectable = np.ones(len(keys), dtype=bool)
            mult = 1
            for i in combo:
                if len(self.kept_maps[i]) < len(cube.labels[i]):
                    selectable &= (keys // mult) % self.pcards[i] != self.pcards[i] - 1
                mult *= self.pcards[i]
            built[combo] = _Cuboid(combo, keys, A, selectable, sum(1 for i in combo if i in fine))
        cuboids = [built[c] for c in self.combos]
        self.cuboids = cuboids
        if old is not None:
            for cb, o in zip(cuboids, old):
                cb.p0, cb.z0, cb.offset, cb.N0 = o.p0, o.z0, o.offset, o.N0
            return
        # Marginal tests of every real slice: the BH family.
        ps, offset = [], 0
        for cb in cuboids:
            cb.z0 = self._z(cb.A)
            cb.p0 = _noise.two_sided_p(cb.z0)
            cb.offset = offset
            ps.append(np.where(cb.selectable & (cb.N0 > 0), cb.p0, np.nan))
            offset += len(cb.keys)
        # Weighted BH (Genovese, Roeder and Wasserman 2006): every layer of the lattice
        # gets an equal part of the family's weight, so searching deeper (many more
        # slices) does not take power from the shallow layers.
        per_depth = {}
        for cb, p in zip(cuboids, ps):
            per_depth[cb.depth] = per_depth.get(cb.depth, 0) + int(np.sum(~np.isnan(p)))
        per_depth[1] = per_depth.get(1, 0) + len(self.pruned_p)
        per_depth = {d: n for d, n in per_depth.items() if n}
        m = sum(per_depth.values())
        self.layer_w = {d: m / (len(per_depth) * n) for d, n in per_depth.items()}
        wp = [p / self._weight(cb.depth) for cb, p in zip(cuboids, ps)]
        allp = np.concatenate(wp + [self.pruned_p / self._weight(1)])
        self.bh = _noise.BHCurve(np.minimum(allp[~np.isnan(allp)], 1.0))
        self.n_tested = self.bh.m

    def _weight(self, depth: int) -> float:
        """Weight of a slice of ``depth`` dimensions in the BH family (layers share alike)."""
        w = getattr(self, "layer_w", None)
        if not w:
            return 1.0
        return w.get(min(max(depth, 1), max(w)), min(w.values()))

    # ---------------------------------------------------------------- helpers
    def _cells_of(self, flt: dict[int, int]) -> np.ndarray:
        mask = np.ones(self.n_cells, dtype=bool)
        for i, code in flt.items():
            mask &= self.pcodes[i] == code
        return mask

    def _positions(self, cb: _Cuboid, idx: np.ndarray) -> np.ndarray:
        return np.searchsorted(cb.keys, combine_codes(self.pcodes, self.pcards, cb.combo, rows=idx))

    def _remove(self, cells: np.ndarray):
        """Take ``cells`` (mask of newly explained cells) out of every cuboid."""
        idx = np.flatnonzero(cells)
        if idx.size == 0:
            return
        sub = self.C[:, idx]
        for cb in self.cuboids:
            pos = self._positions(cb, idx)
            n = len(cb.keys)
            cb.A = cb.A - np.stack([np.bincount(pos, weights=x, minlength=n) for x in sub])

    def _block_containing(self, cells: np.ndarray):
        """Bar every slice that contains all of ``cells`` (the chosen slice and its ancestors)."""
        idx = np.flatnonzero(cells)
        if idx.size == 0:
            return
        for cb in self.cuboids:
            cnt = np.bincount(self._positions(cb, idx), minlength=len(cb.keys))
            cb.blocked |= cnt == idx.size

    def _gate_z(self, k: int, depth: int = 1) -> float:
        # The first slice answers "is anything localized" at FDR alpha; every further one
        # must pass the stricter extra_alpha (the answer is meant to be the smallest set).
        alpha = self.cfg.alpha if k == 0 else min(self.cfg.alpha, self.cfg.extra_alpha)
        p = alpha * (k + 1) * self._weight(depth) / max(self.n_tested, 1)
        return _noise.z_for_p(min(p, 1.0))

    def _eligible(self, A) -> np.ndarray:
        D = A[_Y] - A[_M]
        ok = A[_N] > 0.5
        if self.min_effect > 0:
            # The common relative change (efficient estimate U/W) must stand out from
            # the leaves' own multiplicative wobble: smaller shifts, however
            # significant over many leaves, are background, not a root cause.
            with np.errstate(divide="ignore", invalid="ignore"):
                delta = np.abs(A[_U]) / A[_W]
            ok &= ~(delta < self.min_effect)
        if self.cfg.min_relative_change > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(D) / np.abs(A[_M])
            ok &= ~(rel < self.cfg.min_relative_change)
        return ok

    def _best(self, k: int):
        """(|z|, cuboid index, slice index) of the best eligible slice that passes the gate
        for discovery ``k`` (which depends on its layer), with tie-breaks."""
        cands = []
        for ci, cb in enumerate(self.cuboids):
            ok = ~cb.blocked & self._eligible(cb.A)
            if not ok.any():
                continue
            az = np.abs(self._z(cb.A))
            az = np.where(ok & (az >= self._gate_z(k, cb.depth)), az, -1.0)
            j = int(np.argmax(az))
            if az[j] > 0:
                cands.append((float(az[j]), ci, j))
        if not cands:
            return None
        top = max(c[0] for c in cands)
        # Equal statistics (identical leaf sets, e.g. a region with one country):
        # prefer fewer dimensions, then coarse ones.
        near = [c for c in cands if c[0] >= top * (1 - 1e-9)]
        near.sort(key=lambda c: (self.cuboids[c[1]].depth, self.cuboids[c[1]].n_fine, c[1]))
        return near[0]

    def _filter_of(self, ci: int, j: int) -> dict[int, int]:
        cb = self.cuboids[ci]
        return dict(zip(cb.combo, decode_key(int(cb.keys[j]), self.pcards, cb.combo)))

    def _agg_mask(self, mask: np.ndarray) -> np.ndarray:
        return self.C[:, mask].sum(axis=1)[:, None]

    # ---------------------------------------------------------------- global shift
    def _try_global(self) -> float | None:
        """If the whole population is the best explanation, rescale the expectation."""
        root = self.C.sum(axis=1)[:, None]
        z_root = float(np.abs(self._z(root))[0])
        best = self._best(0)
        if best is not None and best[0] >= z_root:
            return None
        Y, M = float(root[_Y, 0]), float(root[_M, 0])
        if z_root < self._gate_z(0) or M <= 0:
            return None
        # Everything is an answer only when the deviation is spread across the whole
        # population: along every dimension, the parts that stood still hold little.
        ref, _ = self._delta(root)
        if not self._broadly_moved_globally(ref, Y / M):
            return None
        if best is not None:
            # As for any parent: everything outside the best slice must have moved the
            # same way, clearly and broadly, or the best slice is the better answer.
            smask = self._cells_of(self._filter_of(best[1], best[2]))
            sign = math.copysign(1.0, Y - M)
            rest = ~smask
            ref, _ = self._delta(self._agg_mask(rest))
            if not (self._affected(rest, sign) and self._broadly_moved(rest, {}, ref)):
                return None
        f = Y / M
        self.X = self._measures(self.X[_Y], self.X[_M] * f, self.X[_N], self.offset * f * f)
        self.C = self.X if self.cell_of_leaf is None else \
            np.stack([np.bincount(self.cell_of_leaf, weights=x, minlength=self.n_cells) for x in self.X])
        self._build_cuboids(keep_tests=True)
        return f

    def _broadly_moved_globally(self, ref: float, f: float) -> bool:
        """:meth:`_broadly_moved` for the whole population, judged under the noise model
        fitted around the rescaled expectation when that fits better: a shift of every
        leaf is otherwise read as multiplicative wobble, and every part then looks still."""
        every = np.ones(self.n_cells, dtype=bool)
        a2, b2 = _noise.fit_variance(self.y, self.mu0 * f, counts=self.counts,
                                     offset=self.offset * f * f)
        if not (b2, a2) < (self.b, self.a):
            return self._broadly_moved(every, {}, ref)
        saved = self.a, self.b, self.min_effect, self.C
        self.a, self.b = a2, b2
        self.min_effect = self.cfg.min_effect_sd * math.sqrt(b2)
        X = self._measures(self.y, self.mu0, np.ones(self.cube.n), self.offset)
        self.C = X if self.cell_of_leaf is None else np.stack(
            [np.bincount(self.cell_of_leaf, weights=x, minlength=self.n_cells) for x in X])
        try:
            return self._broadly_moved(every, {}, ref)
        finally:
            self.a, self.b, self.min_effect, self.C = saved

    # ---------------------------------------------------------------- refinement
    def _parents(self, flt: dict[int, int]) -> list[dict[int, int]]:
        """Drop one dimension, or replace a fine value by its coarse one."""
        cube, dims, out = self.cube, self.cube.dims, []
        for i in flt:
            if len(flt) > 1:
                out.append({k: v for k, v in flt.items() if k != i})
            coarse = cube.coarse_of.get(dims[i])
            if coarse is not None:
                ci = dims.index(coarse)
                vals = np.unique(self.pcodes[ci][self._cells_of({i: flt[i]})])
                if len(vals) == 1 and vals[0] < len(self.kept_maps[ci]):
                    nf = {k: v for k, v in flt.items() if k != i}
                    nf[ci] = int(vals[0])
                    out.append(nf)
        return out

    def _allowed_dims(self, flt: dict[int, int]) -> list[int]:
        """Dimensions that may be added to ``flt`` (not in it, not a roll-up of or into it)."""
        cube = self.cube
        names = {cube.dims[i] for i in flt}
        out = []
        for i, d in enumerate(cube.dims):
            if i in flt or ancestors_of(d, cube.coarse_of) & names or \
                    any(d in ancestors_of(nm, cube.coarse_of) for nm in names):
                continue
            out.append(i)
        return out

    def _split(self, mask: np.ndarray, i: int) -> np.ndarray:
        """Aggregates of the cells in ``mask`` by the values of dimension ``i``."""
        idx = np.flatnonzero(mask)
        card = self.pcards[i]
        return np.stack([np.bincount(self.pcodes[i][idx], weights=x, minlength=card)
                         for x in self.C[:, idx]])

    def _best_child(self, mask: np.ndarray, i: int):
        """Value of dimension ``i`` whose part of ``mask`` has the largest statistic."""
        A = self._split(mask, i)
        ok = self._eligible(A)
        if len(self.kept_maps[i]) < len(self.cube.labels[i]):
            ok[self.pcards[i] - 1] = False
        if not ok.any():
            return None
        return int(np.argmax(np.where(ok, np.abs(self._z(A)), -1.0)))

    @staticmethod
    def _delta(A) -> tuple[float, float]:
        """Common relative change of a set of cells and its standard error."""
        W = float(A[_W, 0])
        if W <= 0:
            return 0.0, math.inf
        return float(A[_U, 0]) / W, 1.0 / math.sqrt(W)

    def _affected(self, mask: np.ndarray, sign: float) -> bool:
        """Clearly moved in direction ``sign``: significant and beyond the noise floor."""
        if not mask.any():
            return False
        A = self._agg_mask(mask)
        if not self._eligible(A)[0]:
            return False
        return float(self._z(A)[0]) * sign >= self.cfg.affected_z

    def _still_threshold(self, ref: float) -> float:
        return max(self.min_effect, self.cfg.stillness * abs(ref))

    def _still(self, mask: np.ndarray, ref: float) -> bool:
        """Confidently did not move like ``ref``: the change, two standard errors up, stays
        below the noise floor or a small fraction (``stillness``) of ``ref``."""
        if not mask.any():
            return True
        d, se = self._delta(self._agg_mask(mask))
        return math.copysign(1.0, ref) * d + 2.0 * se < self._still_threshold(ref)

    def _broadly_moved(self, mask: np.ndarray, flt: dict[int, int], ref: float) -> bool:
        """Along every further dimension, parts that confidently stood still hold little volume.

        This is what "the children are uniformly affected" means here: not equal effects
        (real effects differ between devices or countries), but no large part that
        stayed put. It rejects a remainder that moved only because of another root
        cause inside it (then that sub-slice is the cause, and its siblings are still).
        """
        thr = self._still_threshold(ref)
        sign = math.copysign(1.0, ref)
        for i in self._allowed_dims(flt):
            A = self._split(mask, i)
            present = A[_N] > 0.5
            W = np.where(A[_W] > 0, A[_W], np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                d = A[_U] / W
                se = 1.0 / np.sqrt(W)
            still = present & (sign * d + 2.0 * se < thr)
            tot = float(np.abs(A[_M][present]).sum())
            if tot > 0 and float(np.abs(A[_M][still]).sum()) > (1.0 - self.cfg.coverage) * tot:
                return False
        return True

    def _consolidate(self, flt: dict[int, int], free: np.ndarray) -> dict[int, int]:
        """Move a slice up while its siblings moved alike, down while one child carries it all.

        Ascend to a parent when the parent's remainder moved the same way, clearly and
        broadly (not because of one sub-slice of it: then that sub-slice is its own root
        cause); descend to a child when the rest of the slice confidently stood still.
        """
        seen = {tuple(sorted(flt.items()))}
        for _ in range(2 * self.max_depth + 2):
            smask = self._cells_of(flt) & free
            A = self._agg_mask(smask)
            sign = math.copysign(1.0, float(A[_Y, 0] - A[_M, 0]))
            ups = []
            for par in self._parents(flt):
                if not par:
                    continue
                pmask = self._cells_of(par) & free
                rest = pmask & ~smask
                if not self._affected(rest, sign):
                    continue
                ref, _ = self._delta(self._agg_mask(rest))
                if self._broadly_moved(rest, par, ref):
                    Ap = self._agg_mask(pmask)
                    if self._eligible(Ap)[0]:
                        ups.append((float(np.abs(self._z(Ap))[0]), par))
            downs = []
            if not ups and len(flt) < self.max_depth:
                for i in self._allowed_dims(flt):
                    j = self._best_child(smask, i)
                    if j is None:
                        continue
                    child = smask & (self.pcodes[i] == j)
                    ref, _ = self._delta(self._agg_mask(child))
                    if ref != 0 and math.copysign(1.0, ref) == sign and \
                            self._still(smask & ~child, ref):
                        nf = dict(flt)
                        nf[i] = j
                        downs.append((float(np.abs(self._z(self._agg_mask(child)))[0]), nf))
            moves = ups or downs
            if not moves:
                break
            moves.sort(key=lambda m: -m[0])
            nxt = moves[0][1]
            key = tuple(sorted(nxt.items()))
            if key in seen:
                break
            seen.add(key)
            flt = nxt
        return flt

    def _others(self, chosen, k) -> np.ndarray:
        others = np.zeros(self.n_cells, dtype=bool)
        for m, f in enumerate(chosen):
            if m != k:
                others |= self._cells_of(f)
        return others

    def _refine(self, chosen: list[dict[int, int]]) -> list[dict[int, int]]:
        """Consolidate each chosen slice again, now given all the others; drop weak ones."""
        for _ in range(2):
            changed = False
            k = 0
            while k < len(chosen):
                new = self._consolidate(chosen[k], ~self._others(chosen, k))
                if new != chosen[k]:
                    changed = True
                    nmask = self._cells_of(new)
                    # A slice that moved up swallows the chosen slices inside it.
                    keep = [m != k and bool((self._cells_of(f) & ~nmask).any())
                            for m, f in enumerate(chosen)]
                    before = [f for m, f in enumerate(chosen[:k]) if keep[m]]
                    after = [f for m, f in enumerate(chosen) if m > k and keep[m]]
                    chosen = before + [new] + after
                    k = len(before)
                k += 1
            if not changed:
                break
        out = []
        for f in chosen:
            if f not in out:
                out.append(f)
        return self._prune_weak(out)

    def _prune_weak(self, chosen):
        """Drop slices that no longer pass the gate (of their layer) given the others."""
        while chosen:
            worst, margin = None, math.inf
            for k, f in enumerate(chosen):
                A = self._agg_mask(self._cells_of(f) & ~self._others(chosen, k))
                z = float(np.abs(self._z(A))[0]) if self._eligible(A)[0] else 0.0
                gap = z - self._gate_z(len(chosen) - 1, len(f))
                if gap < margin:
                    worst, margin = k, gap
            if margin >= 0:
                break
            chosen = chosen[:worst] + chosen[worst + 1:]
        return chosen

    # ---------------------------------------------------------------- run
    def _select(self):
        cfg = self.cfg
        self._depth1_and_prune()
        self.cuboids = []
        self._build_cuboids()
        global_f = self._try_global() if cfg.global_shift else None
        chosen: list[dict[int, int]] = []
        explained = np.zeros(self.n_cells, dtype=bool)
        while len(chosen) < cfg.max_slices:
            best = self._best(len(chosen))
            if best is None:
                break
            flt = self._filter_of(best[1], best[2])
            if cfg.refine:
                flt = self._consolidate(flt, ~explained)
            cells = self._cells_of(flt)
            # A slice that moved up replaces the chosen slices inside it.
            chosen = [f for f in chosen if (self._cells_of(f) & ~cells).any()]
            self._remove(cells & ~explained)
            self._block_containing(cells)
            explained |= cells
            chosen.append(flt)
        if cfg.refine and chosen:
            chosen = self._refine(chosen)
        return self._drop_minor(chosen), global_f

    def _drop_minor(self, chosen):
        """Drop slices that explain less than ``min_share`` of what the chosen set explains.

        A real but tiny local anomaly does not help explain the divergence; the answer
        is meant to be the smallest set that does. The share is measured twice, against
        the leaf-by-leaf expectation the search tests and as the slice's contribution
        to the metric (its own baseline rate; what :class:`SliceFinding` reports), and
        the smaller counts: a slice of a few leaves whose shrunk expectation differs
        from their raw rate must not pass on the first alone.
        """
        while len(chosen) > 1:
            dev, con = [], []
            for k, f in enumerate(chosen):
                free = self._cells_of(f) & ~self._others(chosen, k)
                A = self._agg_mask(free)
                dev.append(abs(float(A[_Y, 0] - A[_M, 0])))
                con.append(abs(self._contribution(free)))
            share = [min(d / max(sum(dev), 1e-300), c / max(sum(con), 1e-300))
                     for d, c in zip(dev, con)]
            k = int(np.argmin(share))
            if share[k] >= self.cfg.min_share:
                break
            chosen = chosen[:k] + chosen[k + 1:]
        return chosen

    def _contribution(self, cells: np.ndarray) -> float:
        """Deviation of the metric over ``cells`` from their own baseline (numerator units)."""
        cube = self.cube
        m = cells if self.cell_of_leaf is None else cells[self.cell_of_leaf]
        if cube.kind != "ratio":
            return float(cube.obs_num[m].sum() - cube.base_num[m].sum())
        b_d = float(cube.base_den[m].sum())
        rate = float(cube.base_num[m].sum()) / b_d if b_d > 0 else \
            float(cube.base_num.sum()) / max(float(cube.base_den.sum()), 1e-300)
        return float(cube.obs_num[m].sum() - cube.obs_den[m].sum() * rate)

    def _leaf_mask(self, chosen) -> np.ndarray:
        cells = np.zeros(self.n_cells, dtype=bool)
        for f in chosen:
            cells |= self._cells_of(f)
        return cells if self.cell_of_leaf is None else cells[self.cell_of_leaf]

    def run(self) -> Localization:
        self._leaf_model()
        chosen, global_f = self._select()
        if self.cfg.recalibrate:
            # Second pass: the noise model refitted on the leaves the first pass left
            # unexplained, without trimming (see _noise.refit_variance).
            free = ~self._leaf_mask(chosen)
            f = 1.0 if global_f is None else global_f
            a, b = _noise.refit_variance(self.y[free], self.mu0[free] * f, counts=self.counts,
                                         offset=self.offset[free] * f * f, start=(self.a, self.b))
            a, b = max(a, self.a), max(b, self.b)
            if a > self.a * 1.05 or b > self.b * 1.05 + 1e-15:
                self.a, self.b = a, b
                self.min_effect = self.cfg.min_effect_sd * math.sqrt(b)
                self.X = self._measures(self.y, self.mu0, np.ones(self.cube.n), self.offset)
                chosen, global_f = self._select()
        return self._report(chosen, global_f)

    # ---------------------------------------------------------------- report
    def _report(self, chosen, global_f) -> Localization:
        cube = self.cube
        bn, bd, on, od = cube.base_num, cube.base_den, cube.obs_num, cube.obs_den
        B_num, B_den, O_num, O_den = bn.sum(), bd.sum(), on.sum(), od.sum()
        if cube.kind == "ratio":
            base_val = B_num / B_den if B_den > 0 else math.nan
            obs_val = O_num / O_den if O_den > 0 else math.nan
            total_dev = O_num - O_den * base_val
            rate_dev = float(self.y.sum() - self.mu0.sum())
            den_total = O_den
        else:
            base_val, obs_val = B_num, O_num
            total_dev = rate_dev = O_num - B_num
            den_total = B_num
        rel_total = obs_val / base_val - 1 if base_val and math.isfinite(base_val) else math.nan

        def contribution(mask):
            if cube.kind == "ratio":
                b_n, b_d, o_n, o_d = bn[mask].sum(), bd[mask].sum(), on[mask].sum(), od[mask].sum()
                br = b_n / b_d if b_d > 0 else base_val
                return (o_n - o_d * br, b_n / b_d if b_d > 0 else math.nan,
                        o_n / o_d if o_d > 0 else math.nan, o_d)
            b, o = bn[mask].sum(), on[mask].sum()
            return o - b, b, o, b

        X0 = self._measures(self.y, self.mu0, np.ones(cube.n), self.offset)
        rows = [({}, np.ones(cube.n, dtype=bool))] if global_f is not None else []
        for flt in chosen:
            cmask = self._cells_of(flt)
            rows.append((flt, cmask if self.cell_of_leaf is None else cmask[self.cell_of_leaf]))
        findings, union = [], np.zeros(cube.n, dtype=bool)
        for k, (flt, lmask) in enumerate(rows):
            contrib, bval, oval, size = contribution(lmask)
            A0 = X0[:, lmask].sum(axis=1)[:, None]
            p_m = float(_noise.two_sided_p(self._z(A0))[0])
            others = np.zeros(cube.n, dtype=bool)
            for m, (g, om) in enumerate(rows):
                if m != k and g:
                    others |= om
            free = lmask & ~others if flt else lmask
            # Given the other slices, and the global shift when there is one.
            Ac = (self.X if flt else X0)[:, free].sum(axis=1)[:, None]
            p_c = float(_noise.two_sided_p(self._z(Ac))[0]) if free.any() else 1.0
            q_c = min(1.0, p_c * self.n_tested / len(rows))
            q_m = self._q_of(flt, p_m)
            rel = oval / bval - 1 if bval and math.isfinite(bval) else math.nan
            Ym, Mm = float(A0[_Y, 0]), float(A0[_M, 0])
            names = {cube.dims[i]: str(cube.labels[i][self.kept_maps[i][c]])
                     for i, c in sorted(flt.items())}
            findings.append(SliceFinding(
                filter=names,
                explained_share=float(contrib / total_dev) if total_dev else math.nan,
                baseline=float(bval), observed=float(oval), relative_change=float(rel),
                effect_size=float((Ym - Mm) / Mm) if Mm else math.nan,
                p_value=p_m, q_value=q_m, confidence=float(max(0.0, 1.0 - max(q_m, q_c))),
                n_leaves=int(lmask.sum()),
                den_share=float(size / den_total) if den_total else math.nan,
            ))
            union |= lmask
        findings.sort(key=lambda f: -abs(f.explained_share) if math.isfinite(f.explained_share) else 0.0)
        if not total_dev:
            joint = math.nan
        else:
            joint = contribution(union)[0] / total_dev if union.any() else 0.0
        root = X0.sum(axis=1)[:, None]
        p_root = float(_noise.two_sided_p(self._z(root))[0])
        cands = self._candidates()
        unsep = ()
        if p_root < self.cfg.alpha and not (math.isfinite(joint) and abs(joint) >= 0.5):
            # The total moved but the answer does not explain it: name the slices that
            # carry it and that the search could not separate into causes.
            chosen_f = [f.filter for f in findings if f.filter]
            sig = cands[(cands["q_value"] <= self.cfg.alpha) & (cands["depth"] > 0)]
            unsep = tuple(f for f in sig["filter"] if not any(
                set(f.items()) <= set(c.items()) or set(c.items()) <= set(f.items())
                for c in chosen_f))[:5]
        return Localization(
            slices=tuple(findings), kind=cube.kind, dimensions=cube.dims,
            baseline=float(base_val), observed=float(obs_val), relative_change=float(rel_total),
            deviation=float(total_dev), rate_deviation=float(rate_dev),
            mix_deviation=float(total_dev - rate_dev), explained_share=float(joint),
            p_value=p_root, n_leaves=cube.n, n_tested=self.n_tested,
            noise={"a": self.a, "b": self.b, "counts": self.counts},
            candidates=cands.drop(columns="filter"), config=self.cfg, unseparated=unsep,
        )

    def _q_of(self, flt: dict[int, int], p: float) -> float:
        if not flt:
            return min(1.0, p * self.n_tested)
        combo = tuple(sorted(flt))
        for cb in self.cuboids:
            if cb.combo == combo:
                key, mult = 0, 1
                for i in combo:
                    key += flt[i] * mult
                    mult *= self.pcards[i]
                j = int(np.searchsorted(cb.keys, key))
                if j < len(cb.keys) and cb.keys[j] == key:
                    return self.bh.q(float(cb.p0[j]) / self._weight(cb.depth))
        return min(1.0, p * self.n_tested)

    def _candidates(self) -> pd.DataFrame:
        cube, n = self.cube, self.cfg.n_candidates
        rows = []
        for cb in self.cuboids:
            z = np.where(cb.selectable & (cb.N0 > 0), np.abs(cb.z0), -1.0)
            top = np.argpartition(-z, min(n, len(z) - 1))[:n] if len(z) > n else np.arange(len(z))
            for j in top:
                if z[j] < 0:
                    continue
                vals = decode_key(int(cb.keys[j]), self.pcards, cb.combo)
                flt = {cube.dims[i]: str(cube.labels[i][self.kept_maps[i][c]])
                       for i, c in zip(cb.combo, vals)}
                rows.append((float(z[j]), {"slice": _render(flt), "filter": flt,
                                           "depth": cb.depth,
                                           "n_leaves": int(cb.N0[j]), "z": float(cb.z0[j]),
                                           "p_value": float(cb.p0[j]),
                                           "q_value": self.bh.q(float(cb.p0[j])
                                                                / self._weight(cb.depth))}))
        rows.sort(key=lambda r: -r[0])
        return pd.DataFrame([r[1] for r in rows[:n]], columns=[
            "slice", "filter", "depth", "n_leaves", "z", "p_value", "q_value"])
