"""The policy table is total and every refusal is audited."""
import pytest

from workbench.governance import audit
from workbench.governance.policy import (POLICY, Action, Identity, PermissionDenied, Role,
                                         allowed, authorize)


def test_policy_is_total_and_monotone():
    assert set(POLICY) == set(Role)
    order = [Role.VIEWER, Role.ANALYST, Role.OPERATOR, Role.ADMIN]
    for lower, higher in zip(order, order[1:]):
        assert POLICY[lower] < POLICY[higher]
    assert POLICY[Role.ADMIN] == frozenset(Action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_every_cell_of_the_matrix(tmp_path, role, action):
    who = Identity("u", role, source="token")
    log = tmp_path / "audit.jsonl"
    if action in POLICY[role]:
        authorize(who, action, "inv-1", audit=log)
        assert not log.exists()
    else:
        with pytest.raises(PermissionDenied, match=action.value):
            authorize(who, action, "inv-1", audit=log)
        (rec,) = audit.read_audit(log)
        assert rec.action == "access.denied" and rec.actor == "u"
        assert rec.details["action"] == action.value and rec.subject == "inv-1"
    assert allowed(who, action) == (action in POLICY[role])


#: The decided matrix, written out: an action added to ``Action`` without a decision
#: here fails below (ADMIN's ``frozenset(Action)`` would otherwise grant it silently).
DECIDED = {
    "view": "viewer", "view_unmasked": "admin", "confirm": "analyst", "verify": "analyst",
    "note": "analyst",
    "save": "analyst", "export": "analyst", "rollback": "operator",
    "launch_experiment": "operator", "unmask": "admin", "manage_roles": "admin",
    "hypothesize": "analyst",  # issue 17: add one's own hypothesis
}


def test_every_action_has_a_decided_least_role():
    missing = sorted({a.value for a in Action} - set(DECIDED))
    assert not missing, f"decide who may {missing} (POLICY and DECIDED)"
    order = [Role.VIEWER, Role.ANALYST, Role.OPERATOR, Role.ADMIN]
    for action in Action:
        least = Role(DECIDED[action.value])
        assert [action in POLICY[r] for r in order] == [
            order.index(r) >= order.index(least) for r in order], action
