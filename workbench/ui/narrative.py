"""The story of an investigation for three readers: engineer, operator, product manager.

The stories are told by :func:`workbench.investigation.render.narrate` and their
advice comes from :mod:`workbench.investigation.hypothesis` (one source for the
CLI, the notebook and the UI); this module keeps the names the views import.
"""
from __future__ import annotations

from ..investigation.hypothesis import advice
from ..investigation.render import ROLES, narrate

__all__ = ["narrate", "next_step", "ROLES"]


def next_step(cause: dict | None, verdict: str) -> str:
    """The suggested next action for a candidate cause (or for the verdict)."""
    return advice(cause, verdict)
