"""Data-quality audits: completeness, gaps, duplicates; what each puts at risk."""
from .audit import QualityConfig, QualityFinding, QualityReport, audit_quality, correct_series

__all__ = ["QualityConfig", "QualityFinding", "QualityReport", "audit_quality", "correct_series"]
