"""Who may do what: roles, actions and the one policy table every action checks.

Role-based access control (Sandhu et al., "Role-Based Access Control Models",
IEEE Computer 1996, the flat RBAC0 model): an :class:`Identity` holds one
:class:`Role`; a role grants a set of :class:`Action` values; every
state-changing or data-releasing handler calls :func:`authorize` on the
server, whatever the page shows, and a refusal is written to the audit log as
``access.denied``.

The table is deliberately small and total: every :class:`Action` appears in
:data:`POLICY` for every :class:`Role` (a test fails otherwise), so that adding
an action forces a decision about who may take it.

Examples
--------
>>> viewer = Identity("ana", Role.VIEWER, source="token")
>>> allowed(viewer, Action.VIEW), allowed(viewer, Action.ROLLBACK)
(True, False)
"""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..errors import WorkbenchError


class Role(str, Enum):
    """Roles, from least to most trusted."""

    VIEWER = "viewer"      # stakeholders: read the story, masked and suppressed
    ANALYST = "analyst"    # investigate: confirm/refute, notes, save, export
    OPERATOR = "operator"  # act: roll back, launch experiments
    ADMIN = "admin"        # unmask, manage roles


class Action(str, Enum):
    """Every action a handler can be asked to take."""

    VIEW = "view"
    VIEW_UNMASKED = "view_unmasked"
    CONFIRM = "confirm"            # confirm or refute a hypothesis
    VERIFY = "verify"              # run DoWhy's verification of a hypothesis (CPU seconds)
    HYPOTHESIZE = "hypothesize"    # add one's own hypothesis (a slice and a window)
    NOTE = "note"
    SAVE = "save"
    EXPORT = "export"
    ROLLBACK = "rollback"
    LAUNCH_EXPERIMENT = "launch_experiment"
    UNMASK = "unmask"
    MANAGE_ROLES = "manage_roles"


_VIEWER = frozenset({Action.VIEW})
_ANALYST = _VIEWER | {Action.CONFIRM, Action.VERIFY, Action.NOTE, Action.SAVE, Action.EXPORT,
                      Action.HYPOTHESIZE}
_OPERATOR = _ANALYST | {Action.ROLLBACK, Action.LAUNCH_EXPERIMENT}
_ADMIN = frozenset(Action)

#: role -> the actions it grants. Total over :class:`Role` x :class:`Action`.
POLICY: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.ANALYST: frozenset(_ANALYST),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ADMIN: _ADMIN,
}


class PermissionDenied(WorkbenchError):
    """The caller's role does not grant the action asked for."""

    exit_code = 3


@dataclass(frozen=True)
class Identity:
    """An authenticated caller.

    ``source`` says how it was established: ``"local"`` (the OS user of a
    local CLI), ``"token"``, ``"password"`` or ``"oauth"``.
    """

    name: str
    role: Role
    source: str = "local"

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", Role(self.role))

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role.value, "source": self.source}


def local_identity(role: Role = Role.ADMIN) -> Identity:
    """The identity of a local CLI or notebook user: the OS login name.

    Whoever runs the CLI on their own files already holds every right the
    file system gives them; the policy matters where a server acts for others.
    """
    name = os.environ.get("WORKBENCH_USER")
    if not name:
        try:
            name = getpass.getuser() or "unknown"
        except (KeyError, OSError):  # no passwd entry in some containers
            name = "unknown"
    return Identity(name, role, source="local")


def allowed(identity: Identity, action: Action | str) -> bool:
    """Whether ``identity``'s role grants ``action`` (no side effect)."""
    return Action(action) in POLICY[identity.role]


def authorize(identity: Identity, action: Action | str, resource: str = "", *,
              audit: str | Path | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``identity`` may take ``action``.

    A refusal is appended to the audit log at ``audit`` (when given) as
    ``access.denied`` with the actor, action and resource, before raising.
    """
    action = Action(action)
    if action in POLICY[identity.role]:
        return
    if audit is not None:
        from .audit import append_audit
        append_audit(audit, "access.denied", actor=identity.name, subject=resource,
                     details={"action": action.value, "role": identity.role.value,
                              "source": identity.source})
    raise PermissionDenied(
        f"{identity.name} ({identity.role.value}) may not {action.value}"
        + (f" on {resource}" if resource else "")
        + f"; roles that may: {', '.join(r.value for r in Role if action in POLICY[r])}")
