"""Saving an investigation as a new immutable version (crash-safe).

Under the investigation's lock a save writes each file to a temporary name,
fsynced and read-only, links it to its final name (never replacing a file),
fsyncs the folder, then commits by appending its line to ``versions.jsonl``
and writes the journal and the ``artifact.saved`` audit record; a
``.pending-audit`` marker lets the next save finish an audit record a crash
cut off. The write order follows Pillai et al., "All File Systems Are Not
Created Equal: On the Complexity of Crafting Crash-Consistent Applications",
OSDI 2014 (see :mod:`workbench.governance.durable`).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ...governance.audit import AuditLog, default_actor, read_audit
from ...governance.durable import fsync_dir, link_new, replace_whole, stage_readonly
from ..._format import jsonable
from . import memory as _memory
from .records import _reindex
from .store import (AUDIT_FILE, PENDING_AUDIT, TEST_SAVE_DELAY_ENV, _TMP_GLOB, _VFILE_RE,
                    LibraryError, MERGE_WINDOW, VersionInfo, _answer_json, _append_jsonl,
                    _display, _flock, _folders, _inv_attr, _journal, _journal_write, _ledger,
                    _new_id, _now, _saved_details, _ts, _versions, library_root)


def passport_dir_of(inv) -> str:
    """The passport directory an Investigation was computed from."""
    for cand in (_inv_attr(inv, "passport_dir"), (inv.params or {}).get("passport_dir")):
        if cand:
            return str(Path(cand).resolve())
    db = Path(inv.db) if inv.db else None
    if db is not None and db.parent.name == ".workbench":
        return str(db.parent.parent.resolve())
    raise UsageError("cannot tell which passport directory this investigation came from; "
                     "pass passport_dir= to save_investigation")


def _jsonable(obj) -> Any:
    return jsonable(obj)


def canonical_answer(inv, *, decisions: list[dict] | None = None,
                     notes: list[dict] | None = None, actions: list[dict] | None = None,
                     similar: list[dict] | None = None) -> dict:
    """The saved answer: ``inv.to_dict()`` without volatile parts, plus the ledger.

    Timings, the artifact path and the provenance ``loaded_at`` change on every
    run without changing the answer, so they are left out (the version's own
    time is in ``versions.jsonl``).
    """
    d = _jsonable(inv.to_dict())
    # volatile, or kept by the library itself (ids, the ledger, similar, the clock)
    for k in ("timings", "artifact", "investigation", "investigation_id", "version", "clock"):
        d.pop(k, None)
    d["provenance"] = [{k: v for k, v in p.items() if k != "loaded_at"}
                       for p in d.get("provenance") or []]
    d["decisions"] = list(decisions or [])
    d["notes"] = list(notes or [])
    d["actions"] = list(actions or [])
    d["similar"] = list(similar or [])
    return d


def _find_same_incident(root: Path, passport_dir: str, passport: str, metric: str,
                        window: str | None, onset: str | None) -> str | None:
    t_on = _ts(onset)
    for folder in reversed(_folders(root)):
        vs = _versions(folder)
        if not vs:
            continue
        v = vs[-1]
        if (v.passport, v.passport_dir, v.metric, v.window) != (passport, passport_dir, metric,
                                                                window):
            continue
        t_v = _ts(v.onset)
        if t_on is None and t_v is None:
            return folder.name
        if t_on is not None and t_v is not None and abs(t_on - t_v) <= MERGE_WINDOW:
            return folder.name
    return None


def _test_pause() -> None:
    """Sleep ``$WORKBENCH_TEST_SAVE_DELAY`` seconds between two write steps of a save.

    Unset (always, outside the crash test), this does nothing. The crash test
    sets it to widen the window between steps so that its random SIGKILLs land
    between every pair of them.
    """
    delay = os.environ.get(TEST_SAVE_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def save_investigation(inv, *, message: str | None = None, author: str | None = None,
                       root: str | Path | None = None, passport_dir: str | Path | None = None,
                       new: bool = False) -> VersionInfo:
    """Save ``inv`` as a new immutable version of its investigation.

    Parameters
    ----------
    inv:
        An :class:`~workbench.investigation.Investigation`.
    message:
        What this version says or why it was saved (default: an automatic
        message naming the top cause).
    author:
        Who saves it (default ``$WORKBENCH_USER`` or the login name).
    root:
        The library (see :func:`library_root`).
    passport_dir:
        The passport directory, when ``inv`` does not know it.
    new:
        Start a new investigation even if the library holds one of the same
        incident.

    Returns
    -------
    VersionInfo
        Its id is ``inv-...@vNNNN``; ``inv.investigation_id``, ``inv.version``
        and ``inv.artifact`` are set on ``inv``.

    Examples
    --------
    >>> import workbench as wb
    >>> inv = wb.investigate("sample_data/demo", metric="conversion_rate",
    ...                      artifact_dir=None)                     # doctest: +SKIP
    >>> save_investigation(inv, message="first look").version_id  # doctest: +SKIP
    'inv-20261124-211853-3fa2@v0001'
    """
    from .notebook import build_notebook, notebook_text

    root = library_root(root if root is not None else _inv_attr(inv, "library"))
    root.mkdir(parents=True, exist_ok=True)
    author = author or default_actor()
    pdir = str(Path(passport_dir).resolve()) if passport_dir is not None else passport_dir_of(inv)
    window = (inv.params or {}).get("window")
    window_s = "/".join(window) if isinstance(window, (list, tuple)) else window
    onset = (inv.divergence or {}).get("onset")

    similar = _similar_for(root, inv, None if new else _inv_attr(inv, "investigation_id"))
    clock = dict(_inv_attr(inv, "clock") or {})
    total = (inv.timings or {}).get("total")
    loaded = clock.get("loaded_at") or (
        (datetime.now(timezone.utc) - timedelta(seconds=float(total))).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ") if total is not None else _now())
    # One writer at a time per library from finding the investigation to committing
    # the version: two runs of the same incident must not start two investigations.
    with _flock(root / ".lock"):
        iid = None if new else _inv_attr(inv, "investigation_id")
        if iid and not (root / iid / "versions.jsonl").is_file():
            iid = None  # saved into another library before: a new investigation here
        created = False
        if not iid and not new:
            iid = _find_same_incident(root, pdir, inv.passport, inv.metric, window_s, onset)
        if not iid:
            iid = _new_id(root)
            created = True
        folder = root / iid
        similar = [s for s in similar if s.investigation_id != iid]
        with _flock(folder / ".lock"):
            _finish_interrupted_save(root, folder)
            entries = _journal(folder)
            decisions, notes, actions = _ledger(entries)
            answer = canonical_answer(inv, decisions=decisions, notes=notes, actions=actions,
                                      similar=[dict(s.to_dict(), line=s.line()) for s in similar])
            answer["investigation_id"] = iid
            prev = _versions(folder)
            n = max([v.version for v in prev] + [_max_file_version(folder)]) + 1
            params = {"passport": pdir, "metric": inv.metric, "window": window_s,
                      "db": str(Path(inv.db).resolve()) if inv.db else None,
                      "investigation_id": iid, "version": n,
                      "memory": str(_memory.memory_path(root).resolve()), "memory_asof": loaded,
                      "verify": answer.get("verification") is not None,
                      "hypotheses": (inv.params or {}).get("hypotheses")}
            nb = build_notebook(answer, params)
            stem = f"v{n:04d}"
            paths = (folder / f"{stem}.ipynb", folder / f"{stem}.py",
                     folder / f"{stem}.answer.json")
            blobs = ((json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"),
                     notebook_text(nb), _answer_json(answer))
            blobs = tuple(b.encode("utf-8") for b in blobs)
            chash, thash, ahash = (hashlib.sha256(b).hexdigest() for b in blobs)
            top = (inv.causes or [None])[0]
            if message is None:
                message = (("investigate: first run" if not prev else "investigate: re-run")
                           + (f"; top cause {top['change_id']} {top['confidence']:.0%}" if top
                              else f"; verdict {inv.verdict}"))
            info = VersionInfo(
                investigation_id=iid, version=n, content_hash=chash,
                parent=prev[-1].version_id if prev else None, author=author, created_at=_now(),
                message=message, path=str(paths[0]), text_path=str(paths[1]),
                answer_path=str(paths[2]), passport=inv.passport, passport_dir=pdir,
                metric=inv.metric, window=window_s, onset=onset, verdict=inv.verdict,
                top_cause=top["change_id"] if top else None,
                top_confidence=top["confidence"] if top else None,
                based_on=_inv_attr(inv, "based_on"), text_hash=thash, answer_hash=ahash)
            # 1-2: complete files under their final names (the notebook last), or nothing
            staged = []
            for path, blob in zip(paths, blobs):
                staged.append(stage_readonly(path, blob))
                _test_pause()
            for i in (2, 1, 0):
                _publish(staged[i], paths[i])
                _test_pause()
            fsync_dir(folder)
            # 3: commit (the index line), then journal and audit; .pending-audit lets the
            # next save finish the audit if a crash comes between the two
            replace_whole(folder / PENDING_AUDIT, json.dumps({"version_id": info.version_id}),
                          tmp_suffix=f".tmp-{os.getpid()}")
            _test_pause()
            _append_jsonl(folder / "versions.jsonl", info.to_dict())
            _test_pause()
            if created or not any(e.kind == "loaded" for e in entries):
                _journal_write(folder, iid, "loaded", author, {"at": loaded}, ts=loaded)
            if top and not any(e.kind == "shown" for e in entries):
                shown = clock.get("top_cause_shown_at") or info.created_at
                _journal_write(folder, iid, "shown", author,
                               {"at": shown, "change_id": top["change_id"]}, ts=shown)
            _test_pause()
            AuditLog(root / AUDIT_FILE).append("artifact.saved", actor=author, subject=iid,
                                               details=_saved_details(info))
            _test_pause()
            (folder / PENDING_AUDIT).unlink()

    _reindex(root, iid)
    _attach(inv, root, iid, n, paths[0], similar, pdir)
    return info


def _publish(tmp: Path, path: Path) -> None:
    """Give a staged file its final name; an existing file is never replaced."""
    try:
        link_new(tmp, path)
    except FileExistsError:
        raise LibraryError(f"{_display(path)}: exists already; a saved version's file is never "
                           "overwritten") from None


def _finish_interrupted_save(root: Path, folder: Path) -> None:
    """Clean up after a save killed in this folder (callers hold the folder lock).

    Temporary files can only be a dead writer's: writers hold the lock. A
    ``.pending-audit`` naming a committed version whose audit record is missing
    gets the record now, marked ``recovered``.
    """
    for tmp in folder.glob(_TMP_GLOB):
        tmp.unlink()
    for tmp in folder.glob(PENDING_AUDIT + ".tmp-*"):
        tmp.unlink()
    marker = folder / PENDING_AUDIT
    if not marker.is_file():
        return
    try:
        vid = json.loads(marker.read_text(encoding="utf-8"))["version_id"]
    except (ValueError, KeyError, TypeError, OSError):
        vid = None
    info = next((v for v in _versions(folder) if v.version_id == vid), None)
    log = AuditLog(root / AUDIT_FILE)
    if info is not None and not any(
            r.details.get("version") == vid
            for r in read_audit(log.path, subject=folder.name, action="artifact.saved")):
        log.append("artifact.saved", actor=info.author, subject=folder.name,
                   details={**_saved_details(info), "recovered": True})
    marker.unlink()


def _max_file_version(folder: Path) -> int:
    # every file of a version counts: a crash between two links can leave any subset
    ns = [int(m.group(1)) for p in folder.iterdir() if (m := _VFILE_RE.match(p.name))]
    return max(ns, default=0)


def _attach(inv, root: Path, iid: str, n: int, path: Path, similar, pdir: str) -> None:
    """Record where ``inv`` is kept; the answer itself is frozen (``inv.record``)."""
    rec = inv.record
    rec.investigation_id, rec.version, rec.library = iid, n, str(root)
    rec.artifact, rec.similar = str(path), list(similar)


def _similar_for(root: Path, inv, iid: str):
    try:
        return _memory.similar_investigations(_memory.memory_path(root), inv, exclude=iid)
    except _memory.MemoryLocked:
        return ()
