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


def _design_shares(design: dict, exp, variants: list) -> np.ndarray:
    """The designed share of each variant of ``exp`` (equal when the design is silent)."""
    want = design.get(str(exp)) or {v: 1.0 / len(variants) for v in variants}
    shares = np.array([want.get(v, 0.0) for v in variants], dtype=float)
    return shares / shares.sum() if shares.sum() > 0 else np.full(len(variants),
                                                                  1 / len(variants))


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
        shares = _design_shares(design, exp, variants)
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


#: Fabijan et al. (2019)'s taxonomy: where a mismatch concentrated says which stage broke.
CAUSE_OF_DIMENSION: dict[str, tuple[str, str]] = {
    "app_version": ("assignment", "a bucketing bug in one client version: its units are "
                                  "assigned to the arms in the wrong proportion"),
    "browser": ("log_processing", "telemetry loss in one browser: exposures of one arm "
                                  "are dropped before they reach the log"),
    "platform": ("log_processing", "telemetry loss on one platform"),
    "time": ("execution", "a start-time skew: the arms did not start receiving units at "
                          "the same time"),
}


@dataclass(frozen=True)
class SRMDiagnosis:
    """Where a sample-ratio mismatch comes from, and which class of cause that suggests."""

    experiment: str
    mismatch: bool
    p_value: float
    cause: str | None = None          # assignment | execution | log_processing | unknown
    where: dict = field(default_factory=dict)
    p_without: float | None = None    # the SRM test once ``where`` is left out
    detail: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _candidates(g: pd.DataFrame, variants: list, dims: list[str], tcol: str | None,
                time_buckets: int) -> list[tuple[dict, np.ndarray]]:
    """Slices to try leaving out: each value of each dimension, and the first hours."""
    out = []
    for d in dims:
        tab = pd.crosstab(g[d], g["variant"]).reindex(columns=variants, fill_value=0)
        out += [({d: str(v)}, row) for v, row in zip(tab.index, tab.to_numpy())]
    if tcol and tcol in g.columns:
        ts = pd.to_datetime(g[tcol], utc=True)
        hours = ((ts - ts.min()) / pd.Timedelta(hours=1)).to_numpy()
        cuts = np.unique(np.quantile(hours, np.linspace(0, 1, time_buckets + 1)[1:-1]))
        for c in cuts:
            early = g.loc[hours < c, "variant"].value_counts().reindex(variants, fill_value=0)
            out.append(({"time": [str(ts.min()), str(ts.min() + pd.Timedelta(hours=float(c)))]},
                        early.to_numpy()))
    return out


def diagnose_srm(assignments: pd.DataFrame, *, design: dict[str, dict[str, float]] | None = None,
                 dimensions: list[str] | None = None, time_column: str | None = "ts",
                 alpha: float = 0.0005, time_buckets: int = 12,
                 causes: dict[str, tuple[str, str]] | None = None) -> list[SRMDiagnosis]:
    """Localize each experiment's sample-ratio mismatch by slice, time and app version.

    For every candidate slice (each value of each dimension; the first
    ``k/time_buckets`` of the experiment's time) the SRM test is rerun with
    that slice left out; the slice whose removal lowers the chi-square most
    (and restores balance, ideally) is where the mismatch lives. Its
    dimension names the likely class of cause in Fabijan et al. (2019)'s
    taxonomy (:data:`CAUSE_OF_DIMENSION`; ``time`` means a start-time skew).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> n = 20000
    >>> df = pd.DataFrame({"unit_id": range(n), "experiment": "e",
    ...                    "variant": rng.choice(["a", "b"], n),
    ...                    "app_version": rng.choice(["5.0", "5.1", "5.2"], n)})
    >>> bug = (df.app_version == "5.2") & (rng.random(n) < 0.3)
    >>> df.loc[bug, "variant"] = "a"
    >>> d = diagnose_srm(df, time_column=None)[0]
    >>> d.cause, d.where
    ('assignment', {'app_version': '5.2'})
    """
    causes = causes or CAUSE_OF_DIMENSION
    design = design or {}
    a = assignments.drop_duplicates(["experiment", "unit_id"])
    dims = dimensions if dimensions is not None else [
        c for c in a.columns if c not in ("unit_id", "experiment", "variant", time_column)]
    out = []
    for exp, g in a.groupby("experiment", sort=True):
        counts = g["variant"].value_counts().sort_index()
        variants = list(counts.index)
        shares = _design_shares(design, exp, variants)
        total = counts.to_numpy(dtype=float)
        chi, p = _chi2(total, shares)
        if p >= alpha:
            out.append(SRMDiagnosis(str(exp), False, p, detail="no mismatch"))
            continue
        best = None
        for where, sl in _candidates(g, variants, dims, time_column, time_buckets):
            rest = total - sl
            if rest.sum() < 0.5 * total.sum():
                continue  # leaving out most of the experiment explains nothing
            chi_rest, p_rest = _chi2(rest, shares)
            if best is None or chi_rest < best[0]:
                best = (chi_rest, p_rest, where)
        if best is None:
            out.append(SRMDiagnosis(str(exp), True, p, "unknown", detail="no slice explains it"))
            continue
        _, p_rest, where = best
        dim = next(iter(where))
        cause, why = causes.get(dim, ("unknown", "a mismatch concentrated in one slice"))
        loc = (f"the first hours ({where['time'][0]} to {where['time'][1]})" if dim == "time"
               else ", ".join(f"{k}={v}" for k, v in where.items()))
        detail = (f"experiment {exp}: sample-ratio mismatch (p={p:.2g}) concentrated in {loc}; "
                  f"without it p={p_rest:.2g}. Likely {why} ({cause} stage, Fabijan et al. 2019).")
        out.append(SRMDiagnosis(str(exp), True, p, cause, where, p_rest, detail))
    return out
