"""Localization: which slices explain a divergence, and rate versus mix.

Public verbs
------------
:func:`localize`
    Search the cuboid lattice for the smallest set of slices that jointly explain
    the deviation of observed from expected (see :mod:`workbench.localize.search`).
:func:`decompose_rate_mix`
    Split a ratio metric's change into rate changes within slices and the shift of
    the denominator's mix between slices (see :mod:`workbench.localize.ratemix`).

Data too large to search leaf by leaf (a DuckDB relation of unit-level rows, e.g. a
store window from :func:`workbench.store.queries.window_rows`) is screened and pooled
in DuckDB first (``_sql``).

Methods: Adtributor (Bhagwan et al. 2014), HotSpot (Sun et al. 2018), Squeeze
(Li et al. 2019), RiskLoc (Kalander 2022), Benjamini and Hochberg (1995),
Kitagawa (1955), Genovese, Roeder and Wasserman (2006); the module docstrings say how
each is used.
"""
from workbench.localize.ratemix import RateMixResult, decompose_rate_mix
from workbench.localize.search import Localization, LocalizeConfig, SliceFinding, localize

__all__ = ["localize", "LocalizeConfig", "Localization", "SliceFinding",
           "decompose_rate_mix", "RateMixResult"]
