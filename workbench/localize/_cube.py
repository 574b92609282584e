"""Leaves in, coded cube out: validation, dimension encoding and the cuboid lattice.

Private to :mod:`workbench.localize`. Everything here works on integer codes so
that aggregation over a cuboid is one ``numpy.bincount`` (or one sort when the
cuboid is too sparse for a dense table); nothing loops over rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.errors import UsageError

NULL_LABEL = "(null)"
NUM_COLUMNS = ("base_num", "base_den", "obs_num", "obs_den")


@dataclass
class CodedLeaves:
    """Leaves with every dimension factorized to ``int32`` codes."""

    dims: tuple[str, ...]
    codes: list[np.ndarray]          # one int32 array per dimension
    labels: list[np.ndarray]         # per dimension: label (str) of each code
    base_num: np.ndarray
    base_den: np.ndarray
    obs_num: np.ndarray
    obs_den: np.ndarray
    kind: str
    coarse_of: dict[str, str]        # fine dimension -> coarse dimension (hierarchies)
    # Set by the SQL path (``_sql``): per dimension, whether its last code is the pooled
    # "other" bucket of values screened out before any leaf was materialized, and the
    # p-values of those screened-out values (they stay in the FDR family).
    pooled: tuple[bool, ...] | None = None
    screened_p: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.base_num.shape[0])

    def cards(self) -> list[int]:
        return [len(lab) for lab in self.labels]


def _encode(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorize one dimension; nulls become the value ``"(null)"`` (passport.md)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        # Categorical codes are already a factorization; nulls (-1) get a code of their own.
        codes = col.cat.codes.to_numpy().astype(np.int64)
        uniques = list(col.cat.categories)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(uniques), codes)
            uniques.append(None)
    else:
        codes, uniques = pd.factorize(col, use_na_sentinel=False)
    uniq = pd.Series(np.asarray(uniques, dtype=object))
    labels = uniq.where(uniq.notna(), NULL_LABEL).map(str).to_numpy(dtype=object)
    # A real "(null)" string and a missing value are one value; so are 1 and "1".
    lab_u, inv = np.unique(labels.astype(str), return_inverse=True)
    if len(lab_u) != len(labels):
        codes = inv[codes]
        labels = lab_u.astype(object)
    return np.ascontiguousarray(codes, dtype=np.int32), labels


def _numeric(leaves: pd.DataFrame, name: str) -> np.ndarray:
    try:
        arr = pd.to_numeric(leaves[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"leaves column '{name}' must be numeric ({exc})") from None
    # A leaf missing from one period (outer join) is a leaf with no volume there.
    arr = np.where(np.isnan(arr), 0.0, arr)
    if not np.isfinite(arr).all():
        raise UsageError(f"leaves column '{name}' holds infinite values; sums must be finite")
    return arr


def resolve_dimensions(cols: list[str], dimensions, kind: str, hierarchies):
    """Dimensions to search (hierarchy columns added) and the fine -> coarse map.

    Raises
    ------
    UsageError
        When ``kind`` is unknown, no dimension is named, a hierarchy gives a fine
        dimension two coarse ones, or a named column is missing.
    """
    if kind not in ("ratio", "sum"):
        raise UsageError(f"kind must be 'ratio' or 'sum', got {kind!r}")
    if dimensions is None or len(dimensions) == 0:
        raise UsageError("dimensions must name at least one dimension column of the leaves")
    dims: list[str] = []
    for d in list(dimensions):
        if d not in dims:
            dims.append(d)
    hierarchies = dict(hierarchies or {})
    coarse_of: dict[str, str] = {}
    for coarse, fine in hierarchies.items():
        for d in (coarse, fine):
            if d not in dims:
                dims.append(d)
        if fine in coarse_of:
            raise UsageError(f"hierarchies: '{fine}' is given two coarser dimensions "
                             f"('{coarse_of[fine]}' and '{coarse}'); give each fine dimension one")
        coarse_of[fine] = coarse
    missing = [d for d in dims if d not in cols]
    need = ["base_num", "obs_num"] + (["base_den", "obs_den"] if kind == "ratio" else [])
    missing += [c for c in need if c not in cols]
    if missing:
        raise UsageError(f"leaves has no column {', '.join(repr(m) for m in missing)}; "
                         f"columns are: {', '.join(cols)}")
    return dims, coarse_of


def prepare_leaves(leaves: pd.DataFrame, dimensions, kind: str, hierarchies) -> CodedLeaves:
    """Validate the leaves table and encode it.

    Raises
    ------
    UsageError
        When a column is missing, ``kind`` is unknown, a hierarchy names a column the
        leaves lack, or a ratio metric has a negative denominator.
    """
    if not isinstance(leaves, pd.DataFrame):
        raise UsageError(f"leaves must be a pandas DataFrame, got {type(leaves).__name__}")
    dims, coarse_of = resolve_dimensions(list(map(str, leaves.columns)), dimensions, kind,
                                         hierarchies)
    n = len(leaves)
    if n == 0:
        raise UsageError("leaves has no rows: nothing to localize")
    base_num = _numeric(leaves, "base_num")
    obs_num = _numeric(leaves, "obs_num")
    if kind == "ratio":
        base_den = _numeric(leaves, "base_den")
        obs_den = _numeric(leaves, "obs_den")
        if (base_den < 0).any() or (obs_den < 0).any():
            raise UsageError("leaves columns 'base_den' and 'obs_den' must not be negative "
                             "(a ratio's denominator is a volume)")
    else:
        base_den = np.ones(n)
        obs_den = np.ones(n)
    codes, labels = [], []
    for d in dims:
        c, lab = _encode(leaves[d])
        codes.append(c)
        labels.append(lab)
    # A hierarchy must be a function fine -> coarse, or "prefer the coarse slice" is
    # meaningless; say which value breaks it.
    for fine, coarse in coarse_of.items():
        fi, ci = dims.index(fine), dims.index(coarse)
        pair = pd.DataFrame({"f": codes[fi], "c": codes[ci]}).drop_duplicates()
        dup = pair["f"].duplicated(keep=False)
        if dup.any():
            bad = labels[fi][int(pair.loc[dup, "f"].iloc[0])]
            raise UsageError(f"hierarchies: {coarse}->{fine} is not a roll-up: {fine}='{bad}' "
                             f"appears under several values of '{coarse}'")
    return CodedLeaves(tuple(dims), codes, labels, base_num, base_den, obs_num, obs_den,
                       kind, coarse_of)


def ancestors_of(dim: str, coarse_of: dict[str, str]) -> set[str]:
    out, d = set(), dim
    while d in coarse_of and coarse_of[d] not in out:
        d = coarse_of[d]
        out.add(d)
    return out


def enumerate_cuboids(dims: tuple[str, ...], coarse_of: dict[str, str], max_depth: int):
    """All dimension subsets up to ``max_depth``, minus redundant ones.

    A cuboid holding a dimension and one of its roll-ups ({region, country}) is
    redundant: {region: EU, country: DE} is just {country: DE}.
    """
    anc = {d: ancestors_of(d, coarse_of) for d in dims}
    out = []
    for depth in range(1, min(max_depth, len(dims)) + 1):
        for combo in combinations(range(len(dims)), depth):
            names = [dims[i] for i in combo]
            if any(anc[a] & set(names) for a in names):
                continue
            out.append(combo)
    return out


def combine_codes(codes: list[np.ndarray], cards: list[int], combo, rows=None) -> np.ndarray:
    """Mixed-radix key of the cuboid ``combo`` (int64), optionally on a row subset."""
    key = None
    mult = 1
    for i in combo:
        c = codes[i] if rows is None else codes[i][rows]
        term = c.astype(np.int64) * mult
        key = term if key is None else key + term
        mult *= int(cards[i])
    return key


def decode_key(key: int, cards: list[int], combo) -> list[int]:
    out = []
    for i in combo:
        out.append(int(key % cards[i]))
        key //= cards[i]
    return out
