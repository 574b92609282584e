"""The "Act" tab without a browser: roles decide the controls, the handler checks and audits,
and a launch on the demo streams hourly updates to a confirmed readout and a board decision."""
from __future__ import annotations

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
    seen = []
    st.param.watch(lambda e: seen.append(len(e.new)), "updates")
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
