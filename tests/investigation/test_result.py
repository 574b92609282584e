"""workbench/investigation/result.py: the answer is frozen, typed, and written one way."""
from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from workbench.investigation.result import Cause, Divergence, Investigation, Part


def test_the_answer_cannot_be_edited(ios_inv):
    with pytest.raises(dataclasses.FrozenInstanceError):
        ios_inv.verdict = "none"
    top = ios_inv.top_cause
    with pytest.raises(TypeError):
        top["confidence"] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        top.confidence = 1.0
    with pytest.raises(TypeError):
        ios_inv.params["next_step"] = "something else"
    with pytest.raises(AttributeError):
        ios_inv.causes.append(top)


def test_parts_read_as_attributes_and_as_keys(ios_inv):
    top = ios_inv.top_cause
    assert isinstance(top, Cause) and isinstance(ios_inv.divergence, Divergence)
    assert top.change_id == top["change_id"] == "chg-1"
    assert top.confidence == top["confidence"] >= 0.5
    assert ios_inv.slices[0].filter == {"platform": "ios"}
    assert ios_inv.divergence.onset == ios_inv.divergence["onset"]


def test_to_dict_is_plain_and_independent(ios_inv):
    d = ios_inv.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON values only
    d["causes"][0]["evidence"].append("edited")
    assert "edited" not in ios_inv.top_cause["evidence"]
    assert ios_inv.to_frame()["change_id"].iloc[0] == "chg-1"


def test_one_time_format_whatever_the_packages_hand_over():
    c = Cause({"change_id": "c", "ts": "2026-11-18T14:00:00+00:00",
               "dose": {"first_step": "2026-11-18T14:30:00.250000+00:00"}})
    assert c.ts == "2026-11-18T14:00:00Z"
    assert c["dose"]["first_step"] == "2026-11-18T14:30:00.250000Z"
    # a time in another zone is left alone as text (the answer is UTC throughout)
    assert Part({"x": "2026-11-18T14:00:00+01:00"})["x"] == "2026-11-18T14:00:00+01:00"


def test_copies_keep_their_own_library_record(ios_inv):
    ios_inv.record.investigation_id = "inv-a"
    other = copy.copy(ios_inv)
    other.record.investigation_id = "inv-b"
    assert ios_inv.investigation_id == "inv-a" and other.investigation_id == "inv-b"
    replaced = dataclasses.replace(ios_inv, verdict="external")
    assert replaced.verdict == "external" and replaced.top_cause == ios_inv.top_cause
    assert isinstance(replaced, Investigation) and replaced.record is not ios_inv.record


def test_pickles_by_value(ios_inv):
    back = pickle.loads(pickle.dumps(ios_inv.top_cause))
    assert back == ios_inv.top_cause and type(back) is Cause
