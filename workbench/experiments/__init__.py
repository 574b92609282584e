"""A/B analysis: sample-ratio mismatch first (more to come: CUPED, sequential tests)."""
from .srm import SRMResult, check_srm

__all__ = ["SRMResult", "check_srm"]
