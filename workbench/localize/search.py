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

import numpy as np
import pandas as pd

from workbench.errors import UsageError
from workbench.localize import _sql
from workbench.localize._cube import prepare_leaves, resolve_dimensions
from workbench.localize._lattice import _Search
from workbench.localize._model import leaf_noise
from workbench.localize.findings import Localization, LocalizeConfig, SliceFinding

__all__ = ["LocalizeConfig", "Localization", "SliceFinding", "leaf_noise", "localize"]


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
