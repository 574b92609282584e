"""What a localization returns: its configuration, the slices found, and the answer.

:class:`LocalizeConfig` holds every threshold of the search (each documented with
the step of the method it tunes, :mod:`workbench.localize.search`);
:class:`SliceFinding` is one slice with its share, effect and significance
(Benjamini-Hochberg q-value, 1995); :class:`Localization` is the whole answer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from workbench.errors import UsageError


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
