"""Alert consolidation: divergences that start together are one story, not N alerts.

A deploy that breaks iOS checkout moves conversion rate, revenue and sessions
per order, on iOS, on iOS 5.2 and in the total, all from one onset. Paging on
each would bury the one story under a dozen alerts. Consolidation groups
divergence findings (metric x slice) whose onsets lie within a tolerance of
each other (single-linkage over sorted onsets, the grouping used for alert
correlation in AIOps practice, e.g. Lin et al., "Correlating events with time
series for incident diagnosis", KDD 2014), names the group after its most
significant member, and keeps every member with its own score and window.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class DivergenceMember:
    """One metric in one slice that diverged."""

    metric: str
    slice: dict
    onset: pd.Timestamp
    end: pd.Timestamp | None
    score: float
    relative_change: float | None
    direction: str | None

    def to_dict(self) -> dict:
        return {"metric": self.metric, "slice": dict(self.slice),
                "onset": self.onset.isoformat(),
                "end": None if self.end is None else self.end.isoformat(),
                "score": self.score, "relative_change": self.relative_change,
                "direction": self.direction}


@dataclass(frozen=True)
class ConsolidatedDivergence:
    """A group of members sharing one onset; ``lead`` is the most significant."""

    onset: pd.Timestamp
    lead: DivergenceMember
    members: tuple[DivergenceMember, ...]

    def to_dict(self) -> dict:
        return {"onset": self.onset.isoformat(), "lead": self.lead.to_dict(),
                "members": [m.to_dict() for m in self.members]}

    def summary(self) -> str:
        ld = self.lead
        where = ", ".join(f"{k}={v}" for k, v in ld.slice.items()) or "total"
        metrics = sorted({m.metric for m in self.members})
        return (f"{self.onset:%Y-%m-%d %H:%M} UTC: {ld.metric} in {where} "
                f"({(ld.relative_change or 0):+.1%}, score {ld.score:.1f}); "
                f"{len(self.members)} members over {', '.join(metrics)}")


def consolidate_divergences(members: list[DivergenceMember], *,
                            tolerance: pd.Timedelta = pd.Timedelta("2h")
                            ) -> list[ConsolidatedDivergence]:
    """Group members whose onsets are within ``tolerance`` of the previous one.

    Parameters
    ----------
    members:
        Significant divergences (metric, slice, onset, score...).
    tolerance:
        Largest gap between consecutive onsets inside one group; two grains is
        the onset precision the detector aims at.

    Returns
    -------
    list of ConsolidatedDivergence
        Most significant group first.

    Examples
    --------
    >>> t = pd.Timestamp("2026-11-18T14:00Z")
    >>> ms = [DivergenceMember("conversion_rate", {}, t, None, -9.0, -0.08, "bad"),
    ...       DivergenceMember("revenue", {"platform": "ios"}, t + pd.Timedelta("1h"),
    ...                        None, -7.0, -0.2, "bad"),
    ...       DivergenceMember("sessions", {}, t + pd.Timedelta("2D"), None, 5.0, 0.1, "good")]
    >>> [len(g.members) for g in consolidate_divergences(ms)]
    [2, 1]
    """
    if not members:
        return []
    ordered = sorted(members, key=lambda m: m.onset)
    groups: list[list[DivergenceMember]] = [[ordered[0]]]
    for m in ordered[1:]:
        if m.onset - groups[-1][-1].onset <= tolerance:
            groups[-1].append(m)
        else:
            groups.append([m])
    out = []
    for g in groups:
        g_sorted = tuple(sorted(g, key=lambda m: -abs(m.score)))
        out.append(ConsolidatedDivergence(onset=min(m.onset for m in g), lead=g_sorted[0],
                                          members=g_sorted))
    out.sort(key=lambda c: -abs(c.lead.score))
    return out
