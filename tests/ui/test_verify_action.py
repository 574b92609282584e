"""WorkbenchState.verify: DoWhy on demand for a hypothesis card, cached, authorized (issue 17)."""
from __future__ import annotations

import pytest

from workbench.governance.policy import Identity, Role
from workbench.ui import verify as V
from workbench.ui.data import InvestigationData
from workbench.ui.state import WorkbenchState

from .conftest import DEMO


@pytest.fixture(scope="module")
def unverified(demo_store):
    from workbench.investigation import investigate

    inv = investigate(DEMO, metric="conversion_rate", db=demo_store, artifact_dir=None,
                      verify=False)
    assert inv.verification is None
    return InvestigationData(inv)


def test_verify_a_card_on_demand_then_from_the_cache(unverified):
    st = WorkbenchState.from_data(unverified, identity=Identity("ana", Role.ANALYST))
    st.verify(0)
    v = st.verifications["chg-0431"]
    assert v.verdict == "verified" and st.verifying == ""
    assert {r.name for r in v.refuters} >= {"placebo_treatment", "data_subset", "timing"}
    cf = v.counterfactual.scoped
    assert cf.region == {"platform": "ios", "app_version": "5.2"} and cf.total < 0
    # the Evidence tab's frame: observed, without the change, its band
    frame = V.verify_panel(st).frame(st.selected_cause)
    assert (frame["lower"] <= frame["expected"]).all() and (frame["expected"]
                                                            <= frame["upper"]).all()
    text = V.verification_text(v)
    assert "VERIFIED" in text and "placebo treatment" in text and "Without the change" in text
    # another session over the same investigation: the cache answers, DoWhy is not re-run
    other = WorkbenchState.from_data(unverified, identity=Identity("bob", Role.ANALYST))
    other.verify(0)
    assert other.verifications["chg-0431"] is v


def test_a_global_change_cannot_be_tested(unverified):
    st = WorkbenchState.from_data(unverified, identity=Identity("ana", Role.ANALYST))
    # chg-0430, a deploy to all traffic an hour before the onset (its rank among the
    # causes at 0% may move with the ranking rules)
    st.verify([c["change_id"] for c in unverified.causes].index("chg-0430"))
    v = st.verifications["chg-0430"]
    assert v.verdict == "untestable" and v.counterfactual is None
    assert "cannot be tested" in V.verification_text(v)
    assert V.verify_panel(st).frame(st.selected_cause) is None


def test_a_viewer_may_not_verify(unverified, tmp_path):
    from workbench.governance.audit import read_audit

    st = WorkbenchState.from_data(unverified, identity=Identity("vera", Role.VIEWER),
                                  library=str(tmp_path))
    st.verify(0)
    assert st.verifications == {} and "may not verify" in st.error
    (rec,) = read_audit(tmp_path / "audit.jsonl")
    assert rec.action == "access.denied" and rec.details["action"] == "verify"
