"""The server-side checks of a session's actions (the UI's half of :mod:`.policy`).

:class:`Guarded` gives a session state ``can`` (views show a control only when
it is true) and ``authorize`` (every action handler calls it before acting,
whatever the page showed: a forged widget event is refused here and audited),
over the state's ``identity`` and ``library`` (whose audit log records
refusals). Role-based access control as in :mod:`.policy` (Sandhu et al. 1996).
"""
from __future__ import annotations

import logging

from .policy import Action, PermissionDenied, allowed, authorize, local_identity

__all__ = ["Guarded"]

log = logging.getLogger("workbench.ui")


class Guarded:
    """Mixin for a state with ``identity``, ``library`` and ``error`` attributes."""

    @staticmethod
    def with_identity(params: dict) -> dict:
        """``params`` with ``identity`` defaulting to the OS user (notebooks, scripts)."""
        if params.get("identity") is None:
            params["identity"] = local_identity()
        return params

    def can(self, action: Action | str) -> bool:
        """Whether this session's identity may take ``action``."""
        return allowed(self.identity, action)

    def authorize(self, action: Action | str, resource: str = "") -> bool:
        """Check ``action`` on the server: a refusal is audited and shown, never acted on."""
        from ..investigation.library import audit_path

        try:
            authorize(self.identity, action, resource, audit=audit_path(self.library))
        except PermissionDenied as exc:
            log.warning("refused: %s", exc)
            self.error = str(exc)
            return False
        return True

    def released(self, data):
        """``data`` as this identity may see it: with ``view_unmasked``, as it is;
        otherwise every frame has its small cells withheld (``suppress_k``, default 11;
        :mod:`workbench.ui.released`), on the server, before any reaches a page."""
        if data is None or self.can(Action.VIEW_UNMASKED):
            return data
        from ..ui.released import released
        from .suppression import DEFAULT_K
        return released(data, getattr(self, "suppress_k", None) or DEFAULT_K)

    def releasable(self, found):
        """Search results this identity may see: past investigations (which may hold
        real ``pii`` values) only with ``view_unmasked``."""
        if self.can(Action.VIEW_UNMASKED):
            return found
        return found[found["type"] != "investigation"].reset_index(drop=True)
