"""The view plug-ins of workbench-views-inputs: found, contract-checked, and governed.

Built over the demo investigation the way the workbench builds them
(``View(state=state)``); the export is refused on the server to a viewer even
when called directly (a forged click), and audited.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench import registry
from workbench.governance.policy import Identity, Role
from workbench.testing import check_plugin

DEMO = Path(__file__).resolve().parents[3] / "sample_data" / "demo"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    from workbench.investigation import investigate

    db = tmp_path_factory.mktemp("views") / "store.duckdb"
    return investigate(DEMO, metric="conversion_rate", db=db, artifact_dir=None)


def state_for(inv, role, tmp_path):
    from workbench.ui.state import WorkbenchState

    return WorkbenchState.from_investigation(inv, library=str(tmp_path / "lib"),
                                             identity=Identity("u", role, "password"))


def test_both_views_are_found_and_meet_the_contract():
    found = {p.name: p for p in registry.list_plugins("workbench.views")}
    assert {"inputs", "export"} <= set(found)
    for name, action in (("inputs", "view"), ("export", "export")):
        assert found[name].package == "workbench-views-inputs" and found[name].ok
        rep = check_plugin(found[name])
        assert rep.details == {"action": action} and len(rep.checks) == 2


def test_inputs_lists_the_passport_files(inv, tmp_path):
    from workbench_views_inputs import InputsView

    view = InputsView(state=state_for(inv, Role.VIEWER, tmp_path))
    df = view.frame()
    assert set(df["file"]) == {Path(p["path"]).name for p in inv.provenance}
    events = df[df["table"] == "events"].iloc[0]
    assert events["rows"] > 0 and len(events["sha256"]) == 16


def test_export_writes_the_released_ranked_slices_for_an_analyst(inv, tmp_path):
    from workbench_views_inputs import ExportView

    st = state_for(inv, Role.ANALYST, tmp_path)
    got = pd.read_csv(ExportView(state=st).csv())
    want = st.data.ranked_slices(st.slice_filter)
    assert len(got) == len(want) > 0 and list(got.columns) == list(want.columns)


def test_export_is_refused_to_a_viewer_on_the_server(inv, tmp_path):
    from workbench.governance import read_audit
    from workbench.investigation.library import audit_path
    from workbench_views_inputs import ExportView

    st = state_for(inv, Role.VIEWER, tmp_path)
    assert ExportView(state=st).csv().getvalue() == ""  # the handler checks again
    assert "export" in st.error
    (rec,) = read_audit(audit_path(tmp_path / "lib"), action="access.denied")
    assert rec.details["action"] == "export" and rec.actor == "u"
