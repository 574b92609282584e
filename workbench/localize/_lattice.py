"""One run of the localization search over the cuboid lattice (steps 3-9).

The state of a run (the leaf model, the pruned lattice, the slices chosen) lives
in :class:`_Search`; the method, with its references (Squeeze, RiskLoc,
Adtributor, HotSpot, Benjamini-Hochberg, Genovese-Roeder-Wasserman), is
described in :mod:`workbench.localize.search`. One algorithm with shared state:
its steps are methods of one class rather than modules.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.localize import _noise
from workbench.localize._cube import (CodedLeaves, ancestors_of, combine_codes, decode_key,
                                      enumerate_cuboids)
from workbench.localize._model import (_M, _MF, _N, _U, _V, _W, _Y, _aggregate, _Cuboid,
                                       _expectation)
from workbench.localize.findings import Localization, LocalizeConfig, SliceFinding, _render


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
