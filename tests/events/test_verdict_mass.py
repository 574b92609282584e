"""Two harmful changes split the posterior; the verdict still says a change did it (issue 14)."""
from __future__ import annotations

from workbench.events.verdict import decide_verdict


def _v(causes):
    return decide_verdict(data_quality_explains=False, strict_mix=False, rm=None,
                          divergence_sign=-1.0, top=causes[0] if causes else None,
                          causes=causes)


def test_concurrent_culprits_with_effects_of_their_own_add_up():
    a, b = {"confidence": 0.49, "own_effect": True}, {"confidence": 0.49, "own_effect": True}
    assert _v([a, b]) == "change"
    # without the list, the top cause alone decides (0.49 < 0.5)
    assert decide_verdict(data_quality_explains=False, strict_mix=False, rm=None,
                          divergence_sign=-1.0, top=a) == "external"


def test_causes_without_an_effect_of_their_own_add_nothing():
    top = {"confidence": 0.3, "own_effect": True}
    decoys = [{"confidence": 0.3, "own_effect": False}, {"confidence": 0.3, "own_effect": None}]
    assert _v([top, *decoys]) == "external"
    cleared = {"confidence": 0.45, "own_effect": False}
    assert _v([cleared, {"confidence": 0.45, "own_effect": True}]) == "external"
