"""Old home of the memory index; kept so that code importing it still runs.

The index now lives in :mod:`workbench.investigation.library.memory`; this
module only re-exports its public names (nothing inside the package imports it).
"""
from __future__ import annotations

from .library.memory import *  # noqa: F401,F403
from .library.memory import __all__  # noqa: F401
