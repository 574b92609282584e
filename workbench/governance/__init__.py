"""Governance: who may see and do what, and a tamper-evident record of what was done.

The audit log (:mod:`workbench.governance.audit`) is a hash-chained JSON
Lines file; ``workbench audit verify`` finds an edited, deleted or reordered
record.
"""
from .audit import (GENESIS, AuditError, AuditLog, AuditRecord, AuditReport, append_audit,
                    default_actor, read_audit, record_hash, verify_audit)

__all__ = ["GENESIS", "AuditError", "AuditLog", "AuditRecord", "AuditReport", "append_audit",
           "default_actor", "read_audit", "record_hash", "verify_audit"]
