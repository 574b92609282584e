"""The Investigation: one run from passport to verdict, its evidence and its artifact."""
from .run import Investigation, default_db, investigate, stderr_progress

__all__ = ["Investigation", "default_db", "investigate", "stderr_progress"]
