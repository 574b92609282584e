"""Sample-ratio mismatch (SRM): are units split between variants as designed?

A chi-square goodness-of-fit test of the assigned counts against the design
split (equal by default), per experiment; when the assignments carry
dimension columns (platform, country, ...), the same test per dimension value
says where the mismatch concentrates. An SRM means the assignment or the
logging is broken, so any effect read from that experiment is suspect
(Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments", KDD 2019). The p-value threshold defaults to 0.0005, the
conservative level used in practice because SRM tests run on every
experiment every day.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class SRMResult:
    """The SRM test of one experiment."""

    experiment: str
    counts: dict[str, int]
    expected_share: dict[str, float]
    chi2: float
    p_value: float
    mismatch: bool
    worst_slice: dict = field(default_factory=dict)
    worst_slice_p: float | None = None

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "counts": self.counts,
                "expected_share": self.expected_share, "chi2": self.chi2,
                "p_value": self.p_value, "mismatch": self.mismatch,
                "worst_slice": self.worst_slice, "worst_slice_p": self.worst_slice_p}

    def detail(self) -> str:
        obs = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        s = (f"experiment {self.experiment}: assignments {obs}; expected "
             + ", ".join(f"{k} {v:.0%}" for k, v in self.expected_share.items())
             + f"; chi-square {self.chi2:.1f}, p={self.p_value:.2g}")
        if self.worst_slice:
            s += (" - concentrated in " + ", ".join(f"{k}={v}" for k, v in
                                                   self.worst_slice.items())
                  + f" (p={self.worst_slice_p:.2g})")
        return s


def _chi2(counts: np.ndarray, shares: np.ndarray) -> tuple[float, float]:
    n = counts.sum()
    if n == 0 or len(counts) < 2:
        return 0.0, 1.0
    res = stats.chisquare(counts, f_exp=shares * n)
    return float(res.statistic), float(res.pvalue)


def check_srm(assignments: pd.DataFrame, *, design: dict[str, dict[str, float]] | None = None,
              dimensions: list[str] | None = None, alpha: float = 0.0005) -> list[SRMResult]:
    """Test every experiment in ``assignments`` for sample-ratio mismatch.

    Parameters
    ----------
    assignments:
        One row per unit: ``unit_id, experiment, variant`` and optionally
        dimension columns. A unit counted twice in one experiment counts once
        (first assignment).
    design:
        ``{experiment: {variant: share}}``; equal shares when absent.
    dimensions:
        Columns to localize a mismatch by (default: every column besides the
        required ones and ``ts``).
    alpha:
        Significance level for flagging a mismatch.

    Examples
    --------
    >>> df = pd.DataFrame({"unit_id": range(1000), "experiment": "e",
    ...                    "variant": ["a"] * 560 + ["b"] * 440})
    >>> check_srm(df)[0].mismatch
    True
    """
    design = design or {}
    a = assignments.drop_duplicates(["experiment", "unit_id"])
    dims = dimensions if dimensions is not None else [
        c for c in a.columns if c not in ("unit_id", "experiment", "variant", "ts")]
    out = []
    for exp, g in a.groupby("experiment", sort=True):
        counts = g["variant"].value_counts().sort_index()
        variants = list(counts.index)
        want = design.get(str(exp)) or {v: 1.0 / len(variants) for v in variants}
        shares = np.array([want.get(v, 0.0) for v in variants], dtype=float)
        shares = shares / shares.sum() if shares.sum() > 0 else np.full(len(variants),
                                                                        1 / len(variants))
        chi2, p = _chi2(counts.to_numpy(dtype=float), shares)
        worst, worst_p = {}, None
        if p < alpha and dims:
            best = (np.inf, None)
            for d in dims:
                tab = pd.crosstab(g[d], g["variant"]).reindex(columns=variants, fill_value=0)
                n = tab.sum(axis=1).to_numpy(dtype=float)[:, None]
                exp_counts = n * shares[None, :]
                with np.errstate(divide="ignore", invalid="ignore"):
                    chi = np.nansum((tab.to_numpy() - exp_counts) ** 2 / exp_counts, axis=1)
                pv = stats.chi2.sf(chi, df=len(variants) - 1)
                i = int(np.argmin(pv))
                if pv[i] < best[0]:
                    best = (float(pv[i]), {d: str(tab.index[i])})
            worst_p, worst = best[0], best[1] or {}
        out.append(SRMResult(experiment=str(exp),
                             counts={str(k): int(v) for k, v in counts.items()},
                             expected_share={str(k): float(s) for k, s in zip(variants, shares)},
                             chi2=chi2, p_value=p, mismatch=bool(p < alpha),
                             worst_slice=worst, worst_slice_p=worst_p))
    return out
