"""Ground truth a generated incident ships beside its passport (not part of the passport).

``no_change.csv``: the series the world would have shown without the incident, so
that a counterfactual (``workbench/causal/counterfactual.py``) can be scored against
it in ``benchmarks/causal.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._changes import HOUR_NS
from ._world import World

__all__ = ["write_no_change"]


def write_no_change(path: Path, world: World, plan, measures: dict) -> None:
    """The true no-change series of a conversion incident's slice (not part of the passport).

    Per hour: the sampled sessions in ``truth.slice``, the conversions expected
    there without the incident (``sum(sessions * p)``) and with it (``sum(sessions
    * p * p_mult)``), so a counterfactual can be scored against what the world
    would have shown. Written only when the incident bends conversion in a slice.
    """
    import pandas as pd

    if plan.p_mult is None or not plan.slice:
        return
    mask = world.leaves.mask(plan.slice)
    s = measures["sessions"][:, mask].astype(float)
    p = world.p[:, mask]
    ts = pd.to_datetime(world.start_ns + np.arange(world.hours) * HOUR_NS, utc=True)
    pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "sessions": s.sum(1),
                  "conversions_no_change": (s * p).sum(1),
                  "conversions_expected": (s * np.clip(p * plan.p_mult[:, mask], 0.0, 1.0)).sum(1)}
                 ).to_csv(path, index=False, float_format="%.4f")
