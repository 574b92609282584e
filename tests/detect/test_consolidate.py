"""Alert consolidation: one story per onset, members kept with their scores."""
from __future__ import annotations

import pandas as pd

from workbench.detect import DivergenceMember, consolidate_divergences

T = pd.Timestamp("2026-11-18T14:00Z")


def m(metric, sl, hours, score):
    return DivergenceMember(metric, sl, T + pd.Timedelta(hours=hours), None, score, -0.1, "bad")


def test_members_from_one_onset_become_one_divergence():
    ms = [m("conversion_rate", {}, 0, -9), m("conversion_rate", {"platform": "ios"}, 0, -20),
          m("revenue", {"platform": "ios"}, 1, -12), m("revenue", {}, 2, -5),
          m("sessions", {"country": "JP"}, 48, 6)]
    groups = consolidate_divergences(ms, tolerance=pd.Timedelta("2h"))
    assert [len(g.members) for g in groups] == [4, 1]
    g = groups[0]
    assert g.lead.slice == {"platform": "ios"} and g.lead.score == -20
    assert g.onset == T
    assert "4 members over conversion_rate, revenue" in g.summary()
    assert g.to_dict()["members"][0]["metric"] == "conversion_rate"


def test_chained_onsets_link_within_tolerance_and_nothing_is_lost():
    ms = [m("a", {}, h, -5) for h in (0, 2, 4, 10)]
    groups = consolidate_divergences(ms, tolerance=pd.Timedelta("2h"))
    assert sorted(len(g.members) for g in groups) == [1, 3]
    assert sum(len(g.members) for g in groups) == 4
    assert consolidate_divergences([]) == []
