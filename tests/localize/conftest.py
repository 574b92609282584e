"""Shared fixtures for the localize tests: a seeded generator and a synthetic cube maker."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261124)


def _make_leaves(rng, cards: dict[str, int], *, kind: str = "sum", size: float = 200.0,
                rate: float = 0.05, effects=(), sigma: float = 0.6) -> pd.DataFrame:
    """A full grid of leaves with Poisson (sum) or binomial (ratio) noise.

    ``effects`` is a list of ``(filter, relative_change)``; every leaf inside a filter
    has its expected observed numerator multiplied by ``1 + relative_change``.
    Leaf sizes are log-normal, so slices differ in volume.
    """
    values = {d: [f"{d[:2]}{i}" for i in range(n)] for d, n in cards.items()}
    grid = pd.DataFrame(list(itertools.product(*values.values())), columns=list(values))
    n = len(grid)
    sizes = size * rng.lognormal(0.0, sigma, n)
    factor = np.ones(n)
    for flt, change in effects:
        mask = np.ones(n, dtype=bool)
        for d, v in flt.items():
            mask &= (grid[d] == v).to_numpy()
        factor[mask] *= 1.0 + change
    if kind == "sum":
        grid["base_num"] = sizes
        grid["obs_num"] = rng.poisson(sizes * factor).astype(float)
    else:
        leaf_rate = np.clip(rate * rng.lognormal(0.0, 0.3, n), 0.001, 0.5)
        bden = rng.poisson(sizes).astype(float)
        oden = rng.poisson(sizes).astype(float)
        grid["base_den"] = bden
        grid["obs_den"] = oden
        grid["base_num"] = rng.binomial(bden.astype(int), leaf_rate).astype(float)
        grid["obs_num"] = rng.binomial(oden.astype(int), np.clip(leaf_rate * factor, 0, 1)).astype(float)
    return grid


@pytest.fixture
def make_leaves():
    """The synthetic cube maker (a fixture, so tests need no import from conftest)."""
    return _make_leaves
