"""Reproducing a saved version: execute its notebook headless and read its check.

The notebook runs on a real Jupyter kernel (nbclient); only a version whose
notebook a signed audit record vouches for is executed. The executed copy is
kept apart under ``runs/``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ...errors import UsageError
from ...governance.audit import read_audit, verify_audit
from .integrity import _checked
from .store import AUDIT_FILE, LibraryError, VersionInfo, _display, library_root, resolve_version
from .verification import verification_digest


@dataclass(frozen=True)
class ReproductionReport:
    """The result of executing a saved version headless (:func:`reproduce_version`)."""

    version_id: str
    reproduced: bool
    check: dict
    seconds: float
    executed_path: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        return (f"{self.version_id}: {'REPRODUCED' if self.reproduced else 'NOT REPRODUCED'} "
                f"in {self.seconds:.1f}s ({self.check.get('text', '')}); executed copy "
                f"{self.executed_path}")


def reproduce_version(root: str | Path | None, ref: str, *, timeout: int = 600,
                      kernel_name: str = "python3", cwd: str | Path | None = None,
                      ) -> ReproductionReport:
    """Execute a saved notebook headless with a real kernel (nbclient) and check it.

    The executed copy, with its outputs, is written apart from the immutable
    version, under ``runs/``. The notebook's last cell displays a
    :class:`~workbench.investigation.artifact.ReproductionCheck`, read back here.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        raise UsageError("executing notebooks needs nbclient and nbformat: "
                         "pip install 'workbench[notebooks]'") from None
    from .notebook import MIME_REPRODUCTION

    root = library_root(root)
    info = _checked(root, resolve_version(root, ref))
    _require_signed_record(root, info)
    nb = nbformat.read(info.path, as_version=4)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(cwd or Path.cwd())}})
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, DeadKernelError, timeouts
        raise LibraryError(f"{info.version_id}: the notebook failed to execute: "
                           f"{str(exc).strip().splitlines()[-1][:300]}") from None
    seconds = time.perf_counter() - t0
    runs = Path(info.path).parent / "runs"
    runs.mkdir(exist_ok=True)
    out = runs / f"v{info.version:04d}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}.ipynb"
    nbformat.write(nb, str(out))
    check = None
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME_REPRODUCTION in data:
                check = dict(data[MIME_REPRODUCTION])
    if check is None:
        raise LibraryError(f"{info.version_id}: the notebook shows no reproduction check")
    _older_check(check, nb.metadata.get("workbench", {}).get("answer") or {})
    return ReproductionReport(info.version_id, bool(check.get("reproduced")), check,
                              round(seconds, 2), str(out))


def _older_check(check: dict, answer: dict) -> None:
    """A check from a notebook saved before verifications were compared cannot vouch
    for the saved verification: it is not a reproduction of it (``check`` is amended)."""
    saved = verification_digest(answer.get("verification"))
    if saved is None or "verification" in check:
        return
    lines = sum(len(c["evidence"]) for c in saved["causes"])
    diff = {"change_id": None, "field": "verification", "saved": saved, "now": None,
            "text": f"the saved answer was verified ({len(saved['causes'])} hypotheses, {lines} "
                    "verification lines) but this notebook predates comparing verifications: "
                    "its re-run was not checked against them"}
    check["verification"] = [diff]
    check["differences"] = list(check.get("differences") or []) + [diff["text"]]
    check["reproduced"] = False
    check["text"] = "NOT reproduced: " + "; ".join(check["differences"])


def _require_signed_record(root: Path, info: VersionInfo) -> None:
    """Refuse to execute a notebook that no signed audit record vouches for.

    The notebook's SHA-256 must equal the ``content_hash`` of the version's
    ``artifact.saved`` record, in an audit log whose head is signed with the
    server's key or anchored outside the library (``governance.audit``). File
    hashes alone prove nothing: whoever edits a notebook can recompute them and
    re-chain the log, but cannot sign the new head.
    """
    audit_file = root / AUDIT_FILE
    rep = verify_audit(audit_file)
    if not rep.ok:
        raise LibraryError(f"{_display(audit_file)}, line {rep.first_bad_line}: {rep.reason}; "
                           f"{info.version_id} is not executed")
    if not rep.signed:
        raise LibraryError(f"{info.version_id}: not executed: the audit log "
                           f"{_display(audit_file)} is not signed or anchored, so nothing "
                           "proves the notebook is the one saved (this account's audit anchor "
                           "never saw it: saved by another account, on another machine or "
                           "before anchors); run it where it was saved, or set "
                           "WORKBENCH_AUDIT_KEY_FILE (or WORKBENCH_AUDIT_ANCHOR) there")
    digest = hashlib.sha256(Path(info.path).read_bytes()).hexdigest()
    for r in read_audit(audit_file, action="artifact.saved"):
        if r.details.get("version") == info.version_id:
            if r.details.get("content_hash") != digest:
                raise LibraryError(f"{_display(info.path)}: differs from the notebook audit "
                                   f"record #{r.seq} saved; {info.version_id} is not executed")
            return
    raise LibraryError(f"{info.version_id}: no artifact.saved record in the signed audit log; "
                       "not executed")
