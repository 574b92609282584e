"""Old home of the investigations library; kept so that code importing it still runs.

Saving, verifying, diffing, the journal and reproduction now live in
:mod:`workbench.investigation.library` (one module per job); this module only
re-exports its public names (nothing inside the package imports it).
"""
from __future__ import annotations

from .library import *  # noqa: F401,F403
from .library import __all__  # noqa: F401
