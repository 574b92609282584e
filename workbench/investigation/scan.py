"""Scan a passport: every metric, in total and per dimension value, consolidated.

The stakeholder's first screen: "what diverged?" as one story per onset
rather than a wall of alerts (users.md). Each metric's total series and every
single-dimension slice are run through the detector; slices are tested at a
Bonferroni-corrected level so scanning many of them does not manufacture
alarms; significant members are consolidated by onset
(:func:`workbench.detect.consolidate_divergences`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class ScanReport:
    """Consolidated divergences of a passport."""

    passport: str
    groups: tuple
    tested: int
    seconds: float

    def to_dict(self) -> dict:
        return {"passport": self.passport, "tested": self.tested,
                "seconds": round(self.seconds, 2),
                "divergences": [g.to_dict() for g in self.groups]}

    def summary(self) -> str:
        if not self.groups:
            return (f"{self.passport}: nothing diverged ({self.tested} series tested, "
                    f"{self.seconds:.1f}s)")
        lines = [f"{self.passport}: {len(self.groups)} divergence(s) from {self.tested} series "
                 f"tested ({self.seconds:.1f}s)"]
        for i, g in enumerate(self.groups, 1):
            lines.append(f"{i}. {g.summary()}")
            for mm in g.members[1:6]:
                where = ", ".join(f"{k}={v}" for k, v in mm.slice.items()) or "total"
                lines.append(f"     also {mm.metric} in {where} ({(mm.relative_change or 0):+.1%}, "
                             f"score {mm.score:.1f}, onset {mm.onset:%H:%M})")
        return "\n".join(lines)


def scan_passport(passport, *, db=None, metrics: list[str] | None = None,
                  progress=None) -> ScanReport:
    """Detect divergences of every metric in total and per dimension value.

    Examples
    --------
    >>> rep = scan_passport("sample_data/demo")        # doctest: +SKIP
    >>> print(rep.summary())                            # doctest: +SKIP
    """
    from ..detect import DetectConfig, DivergenceMember, consolidate_divergences, detect_divergence
    from ..passport import Passport, load_passport
    from ..store import Store, metric_series, slice_series, time_range
    from .run import default_db

    t0 = time.perf_counter()
    pp = passport if isinstance(passport, Passport) else load_passport(passport)
    db_path = Path(db) if db is not None else default_db(pp.directory)
    with Store(db_path) as st:
        st.ingest(pp)
    members, tested = [], 0
    with Store(db_path, read_only=True) as st:
        sp = st.passport(pp.name)
        grain = sp.manifest.grain_td
        lo, hi = time_range(st.con, sp)
        idx = pd.date_range(lo.floor(grain), hi.floor(grain), freq=grain)
        names = metrics or list(sp.manifest.metrics)
        for name in names:
            spec = sp.manifest.metric(name)
            if progress:
                progress(f"scanning {name}")
            jobs = [({}, metric_series(st.con, sp, spec).frame)]
            ss = slice_series(st.con, sp, spec).frame
            jobs += [({d: str(v)}, g) for (d, v), g in ss.groupby(["dimension", "value"],
                                                                  sort=False)]
            cfg = DetectConfig(alpha=0.05 / max(len(jobs) * len(names), 1))
            for filt, g in jobs:
                tested += 1
                x = g.set_index("ts")[["num", "den", "rows"]].reindex(idx)
                r = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain,
                                      config=cfg)
                if r.significant and r.onset is not None:
                    members.append(DivergenceMember(
                        metric=name, slice=filt, onset=pd.Timestamp(r.onset),
                        end=None if r.end is None else pd.Timestamp(r.end),
                        score=float(r.score), relative_change=r.relative_change,
                        direction=getattr(r, "direction", None)))
    groups = consolidate_divergences(members, tolerance=6 * grain)
    return ScanReport(passport=pp.name, groups=tuple(groups), tested=tested,
                      seconds=time.perf_counter() - t0)
