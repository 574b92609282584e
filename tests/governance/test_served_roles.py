"""Roles on the server: a viewer's forged decision is refused and audited, an
analyst's is recorded under the analyst's name, and a viewer's page has no
decision control."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from workbench.governance.audit import read_audit
from workbench.governance.policy import Action, Identity, Role

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"
TOP = "chg-0431"  # sample_data/demo/truth.json


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    from workbench.investigation import investigate

    db = tmp_path_factory.mktemp("roles") / "store.duckdb"
    return investigate(DEMO, metric="conversion_rate", db=db, artifact_dir=None), db


def _state(inv, library, identity):
    from workbench.ui.state import WorkbenchState

    i, db = inv
    return WorkbenchState.from_investigation(dataclasses.replace(i), db=str(db),
                                             passport=str(DEMO), background=False,
                                             library=str(library), identity=identity)


def _buttons(view) -> list[str]:
    import panel as pn

    return [b.name for b in view.__panel__().select(pn.widgets.Button)]


# views.py uses Panel 1.x widget arguments (``name=``, ``button_type=``) that Panel 1.9
# announces will go in 2.0; the views are built in-process only here
@pytest.mark.filterwarnings(
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")
def test_a_viewers_forged_confirm_is_refused_and_audited(inv, tmp_path):
    from workbench.ui.views import Workbench

    lib = tmp_path / "library"
    viewer = Identity("vera", Role.VIEWER, source="password")
    st = _state(inv, lib, viewer)
    assert not st.can(Action.CONFIRM) and st.can(Action.VIEW)
    assert not {"Confirm", "Refute"} & set(_buttons(Workbench(state=st)))
    st.decide(TOP, "confirmed", "forged")  # what a forged widget event would call
    assert "vera (viewer) may not confirm" in st.error and not st.decisions
    (rec,) = read_audit(lib / "audit.jsonl")
    assert (rec.action, rec.actor, rec.details["action"]) == ("access.denied", "vera", "confirm")
    assert not list(lib.glob("inv-*"))  # nothing saved, nothing decided

    analyst = Identity("ana", Role.ANALYST, source="password")
    st2 = _state(inv, lib, analyst)
    assert {"Confirm", "Refute"} <= set(_buttons(Workbench(state=st2)))
    st2.decide(TOP, "confirmed", "checkout broken on iOS 5.2")
    assert st2.decisions[-1]["author"] == "ana" and not st2.error
    recs = read_audit(lib / "audit.jsonl")
    assert [r.actor for r in recs if r.action == "hypothesis.confirmed"] == ["ana"]
    assert all(r.actor in ("vera", "ana") for r in recs)


def test_viewers_do_not_search_past_investigations(inv, tmp_path):
    lib = tmp_path / "library"
    admin = _state(inv, lib, Identity("ada", Role.ADMIN, source="token"))
    admin.decide(TOP, "confirmed", "saved so that the library has a past investigation")
    found = admin.search("conversion")
    assert (found["type"] == "investigation").any()
    viewer = _state(inv, lib, Identity("vera", Role.VIEWER, source="password"))
    assert not (viewer.search("conversion")["type"] == "investigation").any()
