"""workbench/ui/state.py: every user action, driven without a browser."""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from workbench.ui.data import InvestigationData
from workbench.ui.state import WorkbenchState, friendly_error

TOP = "chg-0431"


@pytest.fixture(scope="module")
def live(demo_inv):
    """One investigation's data for the module: its replay snapshots are computed once.

    A copy of the investigation: saving it to a library (a decision) marks it saved.
    Two replay steps (six hours before the onset, twelve after) instead of the six of
    the app keep the module fast; the browser test replays the six.
    """
    from workbench.ui.replay import ReplayEngine

    data = InvestigationData(dataclasses.replace(demo_inv))
    steps = [data.onset + pd.Timedelta(hours=h) for h in (-6, 12)]
    data._cache[("replay",)] = ReplayEngine(data, steps=steps)
    return data


@pytest.fixture
def state(live, tmp_path):
    # background=False: the same work inline (no event loop in a unit test).
    return WorkbenchState.from_data(live, background=False, library=str(tmp_path / "library"))


def test_initial_state_shows_the_whole_metric(state):
    assert state.slice_filter == {} and state.data is state.live
    assert state.timeline is not None and len(state.timeline) > 0
    assert state.selected_cause["change_id"] == TOP
    assert state.compare_dimension == "app_version"
    a, b = state.compare_filters()
    assert (a["app_version"], b["app_version"]) == ("5.1", "5.2")
    assert a["platform"] == b["platform"] == "ios"
    assert state.heat_x != state.heat_y


def test_drill_down_and_up(state):
    state.drill_down()
    assert state.slice_filter.items() >= {"platform": "ios", "app_version": "5.2"}.items()
    assert state.timeline.attrs["filter"] == state.slice_filter
    state.drill_to({"platform": "ios"})
    assert state.drill_stack[-1] != {}
    state.drill_up()
    state.drill_up()
    assert state.slice_filter == {}


def test_hypothesis_navigation_is_bounded(state):
    state.previous_hypothesis()
    assert state.hypothesis == 0
    for _ in range(100):
        state.next_hypothesis()
    assert state.hypothesis == len(state.causes) - 1
    assert state.counterfactual is not None


def test_decisions_are_recorded_on_the_investigation(demo_inv, tmp_path):
    state = WorkbenchState.from_investigation(dataclasses.replace(demo_inv, record=None), background=False,
                                              library=str(tmp_path / "library"))
    state.decide(TOP, "confirmed", "payment step broken")
    d = state.decisions[-1]
    assert (d["change_id"], d["decision"], d["note"]) == (TOP, "confirmed", "payment step broken")
    assert d["recorded_in"].startswith("library inv-")
    journal = next((tmp_path / "library").glob("inv-*/journal.jsonl"))
    kinds = [json.loads(x)["kind"] for x in journal.read_text().splitlines()]
    assert "decision" in kinds
    state.decide(TOP, "refuted", "")  # a later decision supersedes
    assert [x["decision"] for x in state.decisions] == ["refuted"]
    with pytest.raises(ValueError):
        state.decide(TOP, "maybe")


def test_deciding_on_a_non_candidate_is_an_alert_not_an_exception(state):
    state.decide("chg-9999", "confirmed")
    assert "not a candidate" in state.error and not state.decisions


def test_replay_shows_what_was_knowable(state):
    assert len(state.replay_steps) == 2
    state.step_replay(+1)  # six hours before the onset
    assert state.replay_index == 0 and state.data.as_of == state.replay_steps[0]
    assert state.data.inv.verdict == "none" and not state.causes
    assert state.timeline["ts"].max() < state.replay_steps[0].tz_localize(None)
    state.replay_index = 1  # twelve hours after: the flag is found
    assert state.data.causes[0]["change_id"] == TOP
    state.go_live()
    assert state.data is state.live and not state.playing


def test_now_after_a_replay_shows_all_the_data_everywhere(state):
    """Every frame derived from the shown moment follows it back to now, with the status."""
    live_end = state.live.data_range()[1].tz_localize(None)
    state.replay_index = 1  # twelve hours after the onset: a cause with a scope
    snap_end = state.data.data_range()[1].tz_localize(None)
    assert snap_end < live_end
    assert state.counterfactual["ts"].max() == snap_end
    assert state.counterfactual.attrs["filter"] == state.selected_cause["scope"]
    assert state.message.startswith("Replay:")
    state.go_live()
    assert state.data is state.live
    assert state.timeline["ts"].max() == live_end
    assert state.counterfactual["ts"].max() == live_end
    assert not state.counterfactual_busy
    assert state.message.startswith("Now (all data)") and "Replay" not in state.message


def test_play_advances_only_when_the_step_is_ready(state):
    state.toggle_play()
    assert state.playing and state.replay_index == 0
    for _ in range(10):
        state.tick()
    assert state.replay_index == -1 and not state.playing  # ran to the end, back to now


def test_search_opens_results(state):
    res = state.search("new_checkout_flow ios")
    assert res.iloc[0]["key"] == TOP
    state.open_result("slice", "platform=ios")
    assert state.slice_filter == {"platform": "ios"}
    state.open_result("change", "chg-0001")
    assert "not a candidate" in state.message


def test_errors_are_one_line():
    from workbench.errors import UsageError

    assert friendly_error(UsageError("bad metric")) == "bad metric"
    assert friendly_error(KeyError("x")) == "KeyError: 'x'"
    assert "\n" not in friendly_error(RuntimeError("a\nb"))


def test_load_reports_a_bad_passport_in_the_alert(tmp_path):
    st = WorkbenchState(passport=str(tmp_path / "missing"), metric="conversion_rate",
                        background=False)
    st.load()
    assert st.error and "Traceback" not in st.error and not st.busy
    assert st.live is None


def test_compare_lists_the_busiest_values_and_the_localized_one(live, monkeypatch, tmp_path):
    """A dimension of a million values is never an option list: the comparison offers the
    busiest values (and the localized one), the search box reaches the rest."""
    import workbench.ui.state as state_mod

    monkeypatch.setattr(state_mod, "WIDGET_VALUES", 2)
    st = WorkbenchState.from_data(live, background=False, library=str(tmp_path / "lib"))
    st.compare_dimension = "country"
    base = st._compare_base()
    opts = list(st.param.compare_a.objects)
    top = live.top_slice.get("country")
    expected = set(live.values("country", base)[:2]) | ({top} if top else set())
    assert set(opts) == expected and len(opts) <= 3
    assert st.compare_a in opts and st.compare_b in opts and st.compare_a != st.compare_b


def test_the_board_acts_on_the_selected_card_from_one_row(demo_inv, tmp_path):
    """The cards are text; one row picks the card (as j/k do) and confirms, refutes or
    verifies the selected one, with the note."""
    from workbench.ui.views import HypothesisBoard

    state = WorkbenchState.from_investigation(dataclasses.replace(demo_inv, record=None),
                                              background=False,
                                              library=str(tmp_path / "library"))
    board = HypothesisBoard(state=state)
    pick, note = board._acts["pick"], board._acts["note"]
    ids = [c["change_id"] for c in state.causes]
    assert list(pick.options) == [f"#{i + 1} {c}" for i, c in enumerate(ids)]
    assert pick.value == 0 and all(p["card"].visible for p in board._card_parts)
    pick.value = 2  # picked in the row: the state's selection, the card shows it
    assert state.hypothesis == 2 and "wb-selected" in board._card_parts[2]["card"].css_classes
    assert "wb-selected" not in board._card_parts[0]["card"].css_classes
    note.value = "not this one"
    board._acts["no"].clicks += 1
    d = state.decisions[-1]
    assert (d["change_id"], d["decision"], d["note"]) == (ids[2], "refuted", "not this one")
    state.previous_hypothesis()  # j/k move the row's selection too
    assert pick.value == 1
    board._acts["ok"].clicks += 1
    assert [(x["change_id"], x["decision"]) for x in state.decisions][-1] == (ids[1],
                                                                              "confirmed")
    state.data = state.data  # the same data again: the selection is kept
    board._rebuild()
    assert pick.value == 1 and state.hypothesis == 1
