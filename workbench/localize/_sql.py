"""Screen and pool in DuckDB: localize data too large to materialize leaf by leaf.

Private to :mod:`workbench.localize`. Used by :func:`workbench.localize.localize` when it
is given a DuckDB relation (unit-level rows or leaves of a store window) or a frame
with more than ``LocalizeConfig.max_leaves`` rows.

Why. Ten million unit rows over eight dimensions hold about as many distinct leaves;
grouping them to leaves alone takes DuckDB 10-15 s on two cores, and the leaf-level
search needs tens of seconds and gigabytes more. Yet almost all of those leaves can
only matter through the dimension values they belong to.

How (two scans over the rows, no leaf materialized):

1. **Screen (one scan).** One ``GROUP BY GROUPING SETS ((d1), (d2), ...)`` gives the
   sums of every value of every dimension (its 1-D cuboid). Because sums are additive
   the input may be unit rows or leaves alike.
2. **Surprise, not size.** A root cause spreads its deviation over every value of an
   unrelated dimension in proportion to volume, so "large deviation" keeps the big
   values of every dimension (this is why the Apriori/iDice share rule alone does not
   bound the search). A value is kept when its deviation differs from its
   proportional share, ``r_v = Y_v - f_d * M_v`` with ``f_d = sum(Y) / sum(M)`` over the
   dimension (the ripple-effect argument of Squeeze, Li et al. 2019, and the
   deviation-from-expected-share of Adtributor's surprise, Bhagwan et al. 2014, and of
   RiskLoc's weighting, Kalander 2022). It must be significant at the Bonferroni level
   over all values screened, or carry ``prune_share`` of the deviation and reach
   ``screen_z``. The noise model (``_noise.fit_variance``, trimmed) is fitted on the
   values themselves; for a ratio the expectation of a value is its observed
   denominator times its own baseline rate (lightly shrunk to the overall rate), and
   the uncertainty of that rate enters the variance.
   A child slice's residual shows in each of its parents (``r_parent >= r_child * (1 -
   share of the parent)`` when nothing cancels), so the values of a root cause up to
   depth three survive unless its value in a wide dimension (one not kept whole, step
   3) is drowned in noise at depth 1: the price of never materializing leaves, stated
   rather than hidden (there is no second, 2-D screen under the kept values).
3. **Narrow dimensions whole.** Dimensions with at most ``max_values`` values are then
   kept whole, narrowest first, while the bound on the number of cells stays within
   ``max_cells`` (a kept fine value of a hierarchy lies under one coarse value, which
   the bound uses). A conjunction whose 1-D parents are too diluted to pass the screen
   is still found when its narrow dimensions carry it; if the bound is exceeded by the
   screen alone, the weakest kept values are pooled first.
4. **Pool (one scan).** Values not kept are pooled per dimension into one "other"
   bucket and dimensions with nothing kept are left out; ``GROUP BY`` the pooled codes
   gives *cells*, which keep every total exact. The cells then go through the same
   search as leaves (``_lattice._Search``): the variance model, the lattice (HotSpot's
   cuboids, Sun et al. 2018, enumerated exactly), explaining away and consolidation.
   Values screened out keep their p-values in the Benjamini-Hochberg family. Cells
   are large, so a shift of the whole population would look like multiplicative
   noise to the variance fit; the search also fits around the globally rescaled
   expectation and keeps the fit that leaves less unexplained.

Consequences. A cell is the finest grain the search sees: for a ratio metric a
shift of the denominator's mix *inside* a pooled cell is counted as a rate change
there; ``n_leaves`` counts cells.

References
----------
Li et al. (2019) Generic and robust localization of multi-dimensional root causes
(Squeeze). ISSRE. Bhagwan et al. (2014) Adtributor. NSDI. Kalander (2022) RiskLoc.
arXiv:2205.10004. Sun et al. (2018) HotSpot. IEEE Access 6.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import UsageError
from workbench.localize import _noise
from workbench.localize._cube import NULL_LABEL, CodedLeaves, resolve_dimensions
from workbench.store.sql import lit as _lit
from workbench.store.sql import q as _q

OTHER_LABEL = "(other)"
_MEASURES = ("base_num", "base_den", "obs_num", "obs_den")


@dataclass
class _Values:
    """Sums of every value of one dimension (its 1-D cuboid)."""

    raw: pa.Array          # the values as stored (codes, strings, ...), nulls included
    isnull: np.ndarray     # a real missing value (not the pooled bucket)
    bn: np.ndarray
    bd: np.ndarray
    on: np.ndarray
    od: np.ndarray
    rows: np.ndarray


def _plain(col) -> pa.Array:
    """One contiguous array, dictionary (ENUM, categorical) decoded to its values."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _sums(kind: str, rows: bool = True) -> str:
    cols = ["base_num", "obs_num"] + (["base_den", "obs_den"] if kind == "ratio" else [])
    out = ", ".join(f"SUM({_q(c)})::DOUBLE AS {_q(c)}" for c in cols)
    return out + ", COUNT(*) AS n_rows" if rows else out


def _num(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.ones(table.num_rows)
    return np.asarray(pc.fill_null(table[name], 0.0).to_numpy(), dtype=float)


def screen_values(rel, dims: list[str], kind: str) -> list[_Values]:
    """One scan: the sums of every value of every dimension (GROUPING SETS)."""
    sets = ", ".join(f"({_q(d)})" for d in dims)
    which = "CASE " + " ".join(f"WHEN GROUPING({_q(d)}) = 0 THEN {i}"
                               for i, d in enumerate(dims)) + " END"
    sql = (f"SELECT {which} AS wb_dim, {', '.join(_q(d) for d in dims)}, {_sums(kind)} "
           f"FROM wb_src GROUP BY GROUPING SETS ({sets})")
    table = rel.query("wb_src", sql).to_arrow_table()
    which_dim = np.asarray(table["wb_dim"].to_numpy())
    out = []
    for i, d in enumerate(dims):
        part = table.filter(pa.array(which_dim == i))
        raw = _plain(part[d])
        out.append(_Values(raw, np.asarray(raw.is_null().to_numpy(zero_copy_only=False)),
                           _num(part, "base_num"), _num(part, "base_den"),
                           _num(part, "obs_num"), _num(part, "obs_den"),
                           np.asarray(part["n_rows"].to_numpy(), dtype=np.int64)))
    return out


@dataclass
class ScreenResult:
    """What the screen kept, and the p-values of what it let go."""

    kept: list[np.ndarray]          # per dimension: positions (into _Values) kept, strongest first
    full: list[bool]                # per dimension: every value with rows kept (narrow)
    screened_p: np.ndarray          # marginal p-values of the values screened out
    n_values: int


def screen(values: list[_Values], kind: str, cfg, coarse_idx: dict[int, int] | None = None
           ) -> ScreenResult:
    """Keep the values whose deviation differs from their proportional share.

    ``coarse_idx`` maps a fine dimension's index to its coarse dimension's (hierarchies),
    for the bound on the number of cells.
    """
    Ys, Ms, offs, fs = [], [], [], []
    D_T = 0.0
    for v in values:
        if kind == "ratio":
            B_n, B_d = v.bn.sum(), v.bd.sum()
            r0 = B_n / B_d if B_d > 0 else 0.0
            # One expected event of prior weight: tiny baselines get the overall rate.
            k = 1.0 / r0 if r0 > 0 else 0.0
            rate = np.where(v.bd + k > 0, (v.bn + k * r0) / np.maximum(v.bd + k, 1e-300), r0)
            M = v.od * rate
            var_rate = np.where(v.bd + k > 0, np.abs(rate) / np.maximum(v.bd + k, 1e-300), 0.0)
            off = v.od ** 2 * var_rate
        else:
            M, off = v.bn.copy(), np.zeros_like(v.bn)
        Y = v.on
        f = Y.sum() / M.sum() if M.sum() > 0 else 1.0
        if not math.isfinite(f) or f <= 0:
            f = 1.0
        D_T = max(D_T, abs(float(Y.sum() - M.sum())))
        Ys.append(Y)
        Ms.append(M)
        offs.append(off)
        fs.append(f)
    Y_all = np.concatenate(Ys)
    fM_all = np.concatenate([M * f for M, f in zip(Ms, fs)])
    off_all = np.concatenate([o * f * f for o, f in zip(offs, fs)])
    counts = _noise.is_count_data(Y_all)
    # The baseline-rate offset is in Poisson units: scale it with the fitted dispersion.
    a, b = _noise.fit_variance(Y_all, fM_all, counts=counts)
    if kind == "ratio":
        a, b = _noise.fit_variance(Y_all, fM_all, counts=counts, offset=a * off_all)
        offs = [a * o for o in offs]
    pos = fM_all[fM_all > 0]
    m0 = float(np.quantile(pos, 0.05)) if pos.size else 1.0
    n_values = int(sum(len(v.rows) for v in values))
    z_keep = _noise.z_for_p(cfg.alpha / max(n_values, 1))
    nonneg = bool(all((Y >= 0).all() and (M >= 0).all() for Y, M in zip(Ys, Ms)))

    def z_of(Y, mu, off):
        # The slice statistic of the search on one value (``_noise.slice_z``), with its
        # Poisson-deviance correction: a value with 0.05 expected and one event is not z=4.
        mf = np.maximum(mu, m0)
        v = np.maximum(a * mf + b * mf * mf + off, 1e-300)
        u, w = _noise.leaf_score_terms(Y, mu, v, mf)
        return _noise.slice_z(Y, mu, v, u, w, mf, a=a, nonneg=nonneg)

    resid, zr, zm = [], [], []
    for Y, M, off, f in zip(Ys, Ms, offs, fs):
        resid.append(Y - f * M)
        zr.append(z_of(Y, f * M, off * f * f))
        zm.append(z_of(Y, M, off))
    kept, strength = [], []
    for v, r, z in zip(values, resid, zr):
        ok = (np.abs(z) >= z_keep) | ((np.abs(r) >= cfg.prune_share * D_T)
                                      & (np.abs(z) >= cfg.screen_z))
        ok &= v.rows > 0
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(-np.abs(r[idx]), kind="stable")][: cfg.max_values]
        kept.append(idx)
        strength.append(np.abs(z[idx]))
    kept = _fit_cell_budget(kept, strength, cfg.max_cells, coarse_idx)
    # Narrow dimensions are cheap: keep all their values (no pooling, as the leaf-level
    # search does up to ``max_values``), narrowest first, while the cells fit the budget.
    # A conjunction whose 1-D parents are too diluted to pass the screen is then still
    # found when its narrow dimensions carry it.
    full = [False] * len(values)
    order = sorted(range(len(values)), key=lambda i: int((values[i].rows > 0).sum()))
    for i in order:
        present = np.flatnonzero(values[i].rows > 0)
        if len(present) > cfg.max_values:
            break
        trial = list(kept)
        trial[i] = present[np.argsort(-np.abs(resid[i][present]), kind="stable")]
        trial_full = full[:i] + [True] + full[i + 1:]
        if _cell_bound(trial, trial_full, coarse_idx) > cfg.max_cells:
            break
        kept, full = trial, trial_full
    gone_p = []
    for v, k, z in zip(values, kept, zm):
        mask = np.ones(len(v.rows), dtype=bool)
        mask[k] = False
        mask &= v.rows > 0
        gone_p.append(_noise.two_sided_p(z[mask]))
    return ScreenResult(kept, full, np.concatenate(gone_p) if gone_p else np.empty(0), n_values)


def _cell_bound(kept, full, coarse_idx=None) -> float:
    """Upper bound on the number of cells: the product of pooled cardinalities.

    A kept fine value lies under one coarse value, so a fine dimension adds its kept
    values plus (when it has an "other" bucket) one cell per coarse code, instead of
    multiplying them.
    """
    m = [len(k) + (0 if f else 1) if len(k) else 1 for k, f in zip(kept, full)]
    bound = 1.0
    for i, k in enumerate(kept):
        c = (coarse_idx or {}).get(i)
        if c is not None and len(k) and len(kept[c]):
            bound *= max(1.0, (len(k) + (0 if full[i] else m[c])) / m[c])
        else:
            bound *= m[i]
    return bound


def _fit_cell_budget(kept, strength, max_cells, coarse_idx=None):
    """Drop the weakest kept values until the bound on the number of cells fits."""
    kept = [np.asarray(k) for k in kept]
    strength = [np.asarray(s) for s in strength]

    def size():
        return _cell_bound(kept, [False] * len(kept), coarse_idx)

    while size() > max_cells:
        # The dimension whose weakest kept value is weakest gives it up.
        cand = [(float(s[np.argmin(s)]), i) for i, s in enumerate(strength) if len(s)]
        _, i = min(cand)
        j = int(np.argmin(strength[i]))
        kept[i] = np.delete(kept[i], j)
        strength[i] = np.delete(strength[i], j)
    return kept


def _in_list(col: str, raw: pa.Array) -> str:
    """``col IN (...)`` for the kept (non-null) stored values, typed as stored."""
    vals = raw.to_pylist()
    if pa.types.is_integer(raw.type):
        return f"{col} IN ({', '.join(str(int(x)) for x in vals)})"
    if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
        return f"{col} IN ({', '.join(_lit(x) for x in vals)})"
    return f"CAST({col} AS VARCHAR) IN ({', '.join(_lit(x) for x in vals)})"


def pooled_cells(rel, dims: list[str], values: list[_Values], kept: list[np.ndarray],
                 kind: str, full: list[bool] | None = None
                 ) -> tuple[list[int], list[np.ndarray], pa.Table]:
    """One scan: sums by pooled codes of the dimensions that kept any value.

    Returns the dimensions used (indices), the pooled code of each cell per used
    dimension (``j`` for the ``j``-th kept value, ``len(kept)`` for "other") and the
    cell sums.
    """
    used = [i for i, k in enumerate(kept) if len(k)]
    sel, plan = [], []
    for i in used:
        d, v, k = dims[i], values[i], kept[i]
        nonnull = k[~v.isnull[k]]
        raw = v.raw.take(pa.array(nonnull, type=pa.int64()))
        if full is not None and full[i]:
            # Every value kept: group by the column itself (no test per row).
            sel.append(f"{_q(d)} AS {_q(f'wb_k{i}')}")
        else:
            cond = _in_list(_q(d), raw) if len(nonnull) else "FALSE"
            sel.append(f"CASE WHEN {cond} THEN {_q(d)} END AS {_q(f'wb_k{i}')}")
        has_null = bool(v.isnull[k].any())
        if has_null:
            sel.append(f"({_q(d)} IS NULL) AS {_q(f'wb_n{i}')}")
        plan.append((i, raw, nonnull, has_null))
    meas = [c for c in _MEASURES if kind == "ratio" or c.endswith("num")]
    keys = [f"wb_k{i}" for i in used] + [f"wb_n{i}" for i, _, _, h in plan if h]
    if keys:
        inner = f"SELECT {', '.join(sel)}, {', '.join(_q(c) for c in meas)} FROM wb_src"
        sql = (f"SELECT {', '.join(_q(n) for n in keys)}, {_sums(kind, rows=False)} "
               f"FROM ({inner}) GROUP BY ALL")
    else:
        sql = f"SELECT {_sums(kind, rows=False)} FROM wb_src"
    table = rel.query("wb_src", sql).to_arrow_table()
    codes = []
    for i, raw, nonnull, has_null in plan:
        k = kept[i]
        pooled = {int(p): j for j, p in enumerate(k)}        # screen position -> pooled code
        to_code = np.array([pooled[int(p)] for p in nonnull] + [len(k)], dtype=np.int32)
        col = _plain(table[f"wb_k{i}"])
        # Position among the kept values (null: not kept, i.e. "other" for now).
        pos = pc.fill_null(pc.index_in(col, value_set=raw), len(nonnull))
        code = to_code[np.asarray(pos.to_numpy(zero_copy_only=False), dtype=np.int64)]
        if has_null:
            nulls = np.asarray(table[f"wb_n{i}"].to_numpy(), dtype=bool)
            code[nulls] = pooled[int(k[values[i].isnull[k]][0])]
        codes.append(np.ascontiguousarray(code, dtype=np.int32))
    return used, codes, table


def _label(x, labels_of) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NULL_LABEL
    if labels_of is not None:
        try:
            return str(labels_of[x])
        except (KeyError, IndexError, TypeError):
            pass
    return str(x)


def build_cells(rel, dimensions, kind: str, hierarchies, cfg, labels=None,
                values: list[_Values] | None = None) -> CodedLeaves:
    """Screen, pool and return the cells as a coded cube the search can run on."""
    cols = [str(c) for c in rel.columns]
    dims, coarse_of = resolve_dimensions(cols, dimensions, kind, hierarchies)
    values = values if values is not None else screen_values(rel, dims, kind)
    if not len(values[0].rows) or values[0].rows.sum() == 0:
        raise UsageError("leaves has no rows: nothing to localize")
    if kind == "ratio" and any((v.bd < 0).any() or (v.od < 0).any() for v in values):
        raise UsageError("leaves columns 'base_den' and 'obs_den' must not be negative "
                         "(a ratio's denominator is a volume)")
    coarse_idx = {dims.index(f): dims.index(c) for f, c in coarse_of.items()}
    res = screen(values, kind, cfg, coarse_idx)
    kept = res.kept
    if not any(len(k) for k in kept):
        # Nothing stands out: one cell (the whole population) along the first dimension.
        kept = [np.empty(0, dtype=np.int64) for _ in kept]
    used, codes, table = pooled_cells(rel, dims, values, kept, kind, res.full)
    if not used:
        used, codes = [0], [np.zeros(table.num_rows, dtype=np.int32)]
    labels = labels or {}
    cube_dims = tuple(dims[i] for i in used)
    cube_labels = []
    for i in used:
        d, v, k = dims[i], values[i], kept[i]
        raw = v.raw.take(pa.array(k, type=pa.int64())).to_pylist()
        labs = [_label(x, labels.get(d)) for x in raw]
        cube_labels.append(np.asarray(labs + [OTHER_LABEL], dtype=object))
    present = set(cube_dims)
    sub_coarse = {f: c for f, c in coarse_of.items() if f in present and c in present}
    for fine, coarse in sub_coarse.items():
        fi, ci = cube_dims.index(fine), cube_dims.index(coarse)
        k_f = len(cube_labels[fi]) - 1
        pair = pd.DataFrame({"f": codes[fi], "c": codes[ci]})
        pair = pair[pair["f"] < k_f].drop_duplicates()
        dup = pair["f"].duplicated(keep=False)
        if dup.any():
            bad = cube_labels[fi][int(pair.loc[dup, "f"].iloc[0])]
            raise UsageError(f"hierarchies: {coarse}->{fine} is not a roll-up: {fine}='{bad}' "
                             f"appears under several values of '{coarse}'")

    n = table.num_rows
    bn, on = _num(table, "base_num"), _num(table, "obs_num")
    bd, od = _num(table, "base_den"), _num(table, "obs_den")
    for name, arr in (("base_num", bn), ("obs_num", on), ("base_den", bd), ("obs_den", od)):
        if not np.isfinite(arr).all():
            raise UsageError(f"leaves column '{name}' holds infinite values; sums must be finite")
    return CodedLeaves(cube_dims, [np.ascontiguousarray(c) for c in codes], cube_labels,
                       bn, bd, on, od, kind, sub_coarse,
                       pooled=tuple(True for _ in cube_dims), screened_p=res.screened_p)
