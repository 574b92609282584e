"""The hypothesis board's form (issue 17 item 4) and "Show query" disclosures (item 6).

On a generated external incident (an outage outside the change log, seeded):
an analyst's hypothesis with the true slice and window is tested and ranks
first, the addition is audited; a viewer's forged addition is refused and
audited, and a viewer's board has no form. "Show query" is there for a role
that may see raw data only.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from workbench.governance.audit import read_audit
from workbench.governance.policy import Action, Identity, Role

pytestmark = pytest.mark.filterwarnings(  # Panel 1.x widget arguments (see test_served_roles)
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    import workbench as wb
    from workbench.synth import generate_incident

    path = generate_incident("external", 11, tmp_path_factory.mktemp("ui-people") / "pp")
    truth = json.loads((path / "truth.json").read_text())
    inv = wb.investigate(path, metric=truth["metric"], artifact_dir=None, verify=False)
    return inv, path, truth


def _state(outage, library, identity):
    from workbench.ui.state import WorkbenchState

    inv, path, _ = outage
    return WorkbenchState.from_investigation(dataclasses.replace(inv), db=inv.db,
                                             passport=str(path), background=False,
                                             library=str(library), identity=identity)


def _form_inputs(view, open_form: bool = True) -> list[str]:
    """The board's text inputs, once its "Add a hypothesis…" button (if any) is clicked."""
    import panel as pn

    root = view.__panel__()
    opener = [b for b in root.select(pn.widgets.Button) if b.label == "Add a hypothesis…"]
    if open_form and opener:
        opener[0].clicks += 1  # what the browser's click sends
    return [w.name for w in root.select(pn.widgets.TextInput)]


def test_an_analyst_adds_the_true_outage_and_it_ranks_first(outage, tmp_path):
    from workbench.ui.people import add_hypothesis
    from workbench.ui.views import HypothesisBoard

    _, _, truth = outage
    lib = tmp_path / "library"
    st = _state(outage, lib, Identity("ana", Role.ANALYST, source="password"))
    board = HypothesisBoard(state=st)
    assert "Your hypothesis" not in _form_inputs(board, open_form=False)  # built when opened
    assert {"Your hypothesis", "Slice", "From (UTC)", "To (UTC)"} <= set(_form_inputs(board))
    (dim, val), = truth["slice"].items()
    assert add_hypothesis(st, "ISP outage", f"{dim}={val}", *truth["window"])
    top = st.data.causes[0]
    assert (top["origin"], top["target"], top["scope"]) == ("person", "ISP outage",
                                                            truth["slice"])
    assert st.data.inv.verdict == "external" and "ranked #1" in st.message and not st.error
    (rec,) = [r for r in read_audit(lib / "audit.jsonl") if r.action == "hypothesis.added"]
    assert rec.actor == "ana" and rec.details["slice"] == truth["slice"]
    assert not add_hypothesis(st, "x", "nodim=1", *truth["window"])
    assert "unknown dimension(s) nodim" in st.error


def test_a_viewers_forged_hypothesis_is_refused_and_audited(outage, tmp_path):
    from workbench.ui.people import add_hypothesis
    from workbench.ui.views import HypothesisBoard

    _, _, truth = outage
    lib = tmp_path / "library"
    st = _state(outage, lib, Identity("vera", Role.VIEWER, source="password"))
    assert "Your hypothesis" not in _form_inputs(HypothesisBoard(state=st))
    before = [c["change_id"] for c in st.data.causes]
    assert not add_hypothesis(st, "forged", "", *truth["window"])
    assert "vera (viewer) may not hypothesize" in st.error
    assert [c["change_id"] for c in st.data.causes] == before
    (rec,) = read_audit(lib / "audit.jsonl")
    assert (rec.action, rec.details["action"]) == ("access.denied", "hypothesize")


def test_show_query_only_for_roles_that_see_raw_data(outage, tmp_path):
    from workbench.ui.people import query_disclosure

    cause = next(c for c in outage[0].causes if c.get("sql"))
    admin = _state(outage, tmp_path, Identity("ada", Role.ADMIN, source="token"))
    analyst = _state(outage, tmp_path, Identity("ana", Role.ANALYST, source="token"))
    assert admin.can(Action.VIEW_UNMASKED) and not analyst.can(Action.VIEW_UNMASKED)
    shown = query_disclosure(admin, cause)
    assert "<summary>Show query</summary>" in shown and "exposed" in shown
    assert "SELECT time_bucket" in shown and "&#x27;" in shown  # literals escaped for HTML
    assert query_disclosure(analyst, cause) == ""


def test_slices_and_quality_findings_show_their_query_to_raw_data_roles(demo_inv, tmp_path):
    """The slice list's and the data-quality findings' "Show query" (the demo: its top
    slice and its sample-ratio finding) follow the cause card's rule."""
    import html

    from workbench.ui.showquery import quality_findings, slice_queries
    from workbench.ui.state import WorkbenchState

    from .conftest import DEMO

    def state(role):
        return WorkbenchState.from_investigation(
            dataclasses.replace(demo_inv), db=demo_inv.db, passport=str(DEMO),
            background=False, library=str(tmp_path), identity=Identity("x", role, source="token"))

    admin, viewer = state(Role.ADMIN), state(Role.VIEWER)
    top = demo_inv.slices[0]
    shown = slice_queries(admin, [top["filter"]])
    assert "<summary>Show query (observed and baseline sums of this slice)</summary>" in shown
    assert html.escape(top["sql"]) in shown and "obs_num" in shown
    assert slice_queries(admin, [{"platform": "no-such-value"}]) == ""  # not localized
    assert slice_queries(viewer, [top["filter"]]) == ""
    srm = next(d for d in demo_inv.data_quality if d["check"] == "srm")
    for role, st in (("admin", admin), ("viewer", viewer)):
        text = quality_findings(st)
        assert "<b>srm</b> (info)" in text, role
        assert (html.escape(srm["sql"]) in text) == (role == "admin"), role
