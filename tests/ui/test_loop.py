"""The "Act" tab without a browser: roles decide the controls, the handler checks and audits,
and a launch on the demo streams hourly updates to a confirmed readout and a board decision."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.governance.audit import read_audit, verify_audit
from workbench.governance.policy import Identity, Role
from workbench.ui.loop import LoopState, LoopView
from workbench.ui.state import WorkbenchState

from .conftest import DEMO


@pytest.fixture
def session(demo_inv, demo_store, tmp_path):
    """A session's workbench state for an identity of ``role``, as the served app builds it."""
    def make(role: Role) -> WorkbenchState:
        return WorkbenchState.from_investigation(
            demo_inv, db=str(demo_store), passport=str(DEMO), library=str(tmp_path / "library"),
            identity=Identity("someone", role, source="token"))
    return make


def test_a_viewer_sees_no_launch_control_and_a_forged_launch_is_denied(session, tmp_path):
    wb = session(Role.VIEWER)
    st = LoopState(workbench=wb)
    view = LoopView(state=st)
    assert view._button is None and not st.can_launch()
    assert "can follow tests but not launch them" in view._layout.objects[1].object
    st.launch()  # a forged request reaching the handler anyway
    assert "someone (viewer) may not rollback on chg-0431" in st.error
    assert wb.error == st.error  # the guard's refusal, shown in both alerts
    assert not st.running and st.updates == []
    log = tmp_path / "library" / "audit.jsonl"
    recs = read_audit(log)
    assert [r.action for r in recs] == ["access.denied"]
    assert recs[0].details["action"] == "rollback" and recs[0].actor == "someone"
    assert not (tmp_path / "library" / "loop" / "flags.json").exists()


def test_an_operator_launch_streams_updates_to_a_confirmed_readout(session, tmp_path):
    wb = session(Role.OPERATOR)
    st = LoopState(workbench=wb)
    view = LoopView(state=st)
    assert st.cause == "chg-0431" and view._button is not None
    seen, board = [], []
    st.param.watch(lambda e: seen.append(len(e.new)), "updates")
    # the board and the timeline follow the workbench state's ``experiment``, hour by hour
    wb.param.watch(lambda e: board.append(e.new), "experiment")
    st.launch()
    assert st.error == "" and not st.running
    assert st.result["status"] == "confirmed" and seen == list(range(1, len(seen) + 1))
    assert len(st.updates) == st.result["hours_to_decision"] <= 6
    assert "confirmed after" in view._status.object
    assert "always-valid interval" in view._status.object
    assert "Readout." in view._result.object and "roll back chg-0431" in view._result.object
    actions = [r.action for r in read_audit(tmp_path / "library" / "audit.jsonl")]
    assert actions[:3] == ["action.intent", "action.outcome", "experiment.concluded"]
    assert verify_audit(tmp_path / "library" / "audit.jsonl").ok
    assert [d["change_id"] for d in wb.decisions] == ["chg-0431"]
    assert wb.decisions[0]["decision"] == "confirmed"
    # one board update per hour (and the conclusion), each with every ranked cause's
    # confidence and both arms' hours so far
    hours = [b["hour"] for b in board if b is not None]
    assert hours[: len(st.updates)] == list(range(1, len(st.updates) + 1))
    assert board[-1]["status"] == "confirmed" and board[-1]["change_id"] == "chg-0431"
    for b, u in zip([b for b in board if b is not None], st.updates):
        assert [h["confidence"] for h in b["hypotheses"]] == \
            [h["confidence"] for h in u["hypotheses"]]
        assert {a["arm"] for a in b["arms"]} == {"kept", "reverted"}
        assert len(b["arms"]) == 2 * b["hour"]


# views.py uses Panel 1.x widget arguments (``button_type=``) that Panel 1.9 announces will
# go in 2.0; the views are built in-process only here
@pytest.mark.filterwarnings(
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")
def test_the_board_and_the_timeline_move_with_each_hour_of_a_test(session):
    """A test's hourly state (as ui.loop publishes it) moves the cards' confidence bars, puts
    a status line on the tested card, and draws both arms after the data on the timeline."""
    import holoviews as hv

    from workbench.ui.views import DivergenceView, HypothesisBoard

    hv.extension("bokeh", logo=False)
    wb = session(Role.OPERATOR)
    board, timeline = HypothesisBoard(state=wb), DivergenceView(state=wb)
    first = [p["conf"] for p in board._card_parts[:2]]
    assert first[0] > 90 and "test at" not in board._card_parts[0]["head"]
    end = wb.live.data_range()[1].tz_localize(None)
    second = wb.live.causes[1]["change_id"]  # the demo's #2 card
    exp = {"change_id": "chg-0431", "status": "running", "hour": 2, "template": "rollback",
           "dose": 50.0, "hypotheses": [{"change_id": "chg-0431", "confidence": 0.42},
                                        {"change_id": second, "confidence": 0.31}],
           "arms": [{"ts": f"{end + pd.Timedelta(hours=h):%Y-%m-%dT%H:%M:%SZ}", "arm": a,
                     "value": v} for h in (1, 2) for a, v in (("kept", 0.031),
                                                              ("reverted", 0.047))]}
    wb.experiment = exp
    assert [p["conf"] for p in board._card_parts[:2]] == [42, 31]
    assert "rollback test at 50%: running · hour 2" in board._card_parts[0]["head"]
    assert "test at" not in board._card_parts[1]["head"]
    # the timeline's arm lines: the figure's own sources, filled in place
    arms = timeline._fig.sources["arms"].data
    assert list(arms["reverted"]) == [0.047, 0.047]
    assert list(arms["kept"]) == [0.031, 0.031]
    wb.experiment = {**exp, "status": "confirmed", "hour": 3,
                     "hypotheses": [{"change_id": "chg-0431", "confidence": 0.97}]}
    assert board._card_parts[0]["conf"] == 97
    assert "confirmed · hour 3" in board._card_parts[0]["head"]
