"""When an event file a store already verified need not be verified again (issue 18).

Loading a passport validates every event file with DuckDB scans and hashes it
(SHA-256): at 10M rows, seconds of work repeated by every investigation of an
unchanged passport. After an ingest the store records, per event file, its size,
modification time in nanoseconds, hash, row count and the
:func:`validation_fingerprint` it was validated under
(``wb_meta.verified_files``). The next load trusts that record only if all of
size, modification time and fingerprint are unchanged; any difference (a file
rewritten, touched, grown, or a manifest or time bound changed) and the file is
validated and hashed in full. ``workbench validate`` never trusts a record.

This is the "quick check" of rsync and of Make (size and modification time as a
proxy for content), chosen over hashing because hashing a file costs a read of
all of it; the recorded hash still identifies the batch for exactly-once ingest.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

#: Bumped whenever the checks of :func:`_validate_events_file` change, so that files a
#: store verified under older rules are validated again.
VALIDATION_VERSION = 1


def validation_fingerprint(manifest) -> str:
    """What an event file's validation depended on: the manifest, the explicit time
    bounds (``WORKBENCH_TIME_MIN``/``MAX``) and :data:`VALIDATION_VERSION`."""
    basis = {"manifest": manifest.to_dict(), "version": VALIDATION_VERSION,
             "bounds": [os.environ.get("WORKBENCH_TIME_MIN"),
                        os.environ.get("WORKBENCH_TIME_MAX")]}
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()


def trusted_check(path: Path, stat: os.stat_result, fingerprint: str,
                   trusted: dict | None) -> dict | None:
    """The store's record of ``path`` if it still describes the file on disk."""
    rec = (trusted or {}).get(str(path.resolve()))
    if rec is None or rec.get("fingerprint") != fingerprint:
        return None
    if (int(rec["bytes"]), int(rec["mtime_ns"])) != (stat.st_size, stat.st_mtime_ns):
        return None
    return rec
