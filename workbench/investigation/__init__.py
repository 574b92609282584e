"""The Investigation: one run from passport to verdict, its evidence and its artifact."""
from .library.notebook import reproduction_check
from .library.memory import prior_evidence, search_investigations, similar_investigations
from .render import ROLES, narrate
from .result import Investigation
from .run import default_db, investigate, reopen, rerun_investigation, stderr_progress
from .library import (VersionInfo, diff_versions, investigation_stats, list_investigations,
                       record_decision, save_investigation, show_version)

__all__ = ["Investigation", "ROLES", "VersionInfo", "default_db", "diff_versions", "investigate",
           "investigation_stats", "list_investigations", "narrate", "prior_evidence", "record_decision",
           "reopen", "reproduction_check", "rerun_investigation", "save_investigation",
           "search_investigations", "show_version", "similar_investigations",
           "stderr_progress"]
