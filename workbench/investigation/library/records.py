"""What the memory index keeps of each investigation, and keeping it current.

:func:`memory_record` condenses an investigation's latest version and journal
into the record :mod:`workbench.investigation.library.memory` indexes;
every save, decision, note and action re-indexes its investigation.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from . import memory as _memory
from .store import _folder, _folders, _journal, _status, _versions, library_root


def memory_record(root: str | Path, iid: str) -> dict:
    """What the memory index holds for one investigation (latest version + journal)."""
    folder = _folder(library_root(root), iid)
    vs = _versions(folder)
    latest = vs[-1]
    answer = json.loads(Path(latest.answer_path).read_text(encoding="utf-8")) \
        if Path(latest.answer_path).is_file() else {}
    entries = _journal(folder)
    status, resolution, resolved_at, latest_status = _status(entries)
    causes = answer.get("causes") or []
    by_id = {c["change_id"]: c for c in causes}
    decided = []
    for hyp, d in latest_status.items():
        c = by_id.get(hyp, {"change_id": hyp, "kind": "external" if hyp == "external" else None,
                            "target": hyp, "scope": {}})
        decided.append({"change_id": hyp, "kind": c.get("kind"), "target": c.get("target"),
                        "scope": c.get("scope") or {}, "status": d["status"],
                        "decided_at": d["ts"], "note": d.get("note")})
    confirmed = [d for d in decided if d["status"] == "confirmed"]
    rc = (answer.get("divergence") or {}).get("relative_change")
    texts = [v.message for v in vs]
    texts += [str(e.details.get("note") or e.details.get("text") or "") for e in entries]
    for c in causes[:3]:
        texts += [str(x) for x in c.get("evidence", [])]
    return {"investigation_id": iid, "passport": latest.passport,
            "passport_dir": latest.passport_dir, "metric": latest.metric,
            "verdict": latest.verdict, "onset": latest.onset,
            "direction": None if rc is None else ("drop" if rc < 0 else "rise"),
            "relative_change": rc, "latest_version": latest.version,
            "created_at": vs[0].created_at, "updated_at": max(
                [latest.created_at] + [e.ts for e in entries]),
            "slices": [s.get("filter", {}) for s in (answer.get("slices") or [])[:3]],
            "causes": [{k: c.get(k) for k in ("change_id", "kind", "target", "scope",
                                               "confidence")} for c in causes[:5]],
            "status": status, "resolution": resolution, "resolved_at": resolved_at,
            "confirmed": confirmed, "decided": decided, "text": "\n".join(t for t in texts if t)}


def iter_memory_records(root: str | Path) -> Iterator[dict]:
    root = library_root(root)
    for folder in _folders(root):
        yield memory_record(root, folder.name)


def rebuild_memory(root: str | Path | None = None) -> int:
    """Recreate the memory index of the library from its folders; returns the number indexed."""
    root = library_root(root)
    return _memory.rebuild_memory(root, iter_memory_records(root))


def _reindex(root: Path, iid: str) -> None:
    mdb = _memory.memory_path(root)
    stale = root / _memory.STALE_MARK
    try:
        if stale.exists():
            _memory.rebuild_memory(root, iter_memory_records(root))
        else:
            _memory.index_investigation(mdb, memory_record(root, iid))
    except _memory.MemoryLocked:
        stale.touch()  # another process holds it: the next writer rebuilds
