"""Reading a library and writing its journal: lists, shown versions, decisions,
notes, actions, and the time-to-diagnose clock.

Every journal entry is also appended to the audit log and re-indexed in
memory; the next saved version carries the ledger. Time to diagnose is the
median over investigations of loaded -> top cause shown -> first decision.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError
from ...governance.audit import AuditLog, default_actor
from ..render import answer_lines as _answer_lines
from .integrity import _checked
from .records import _reindex
from .save import save_investigation
from .store import (AUDIT_FILE, STATUSES, JournalEntry, VersionInfo, _folder, _folders, _iid,
                    _inv_attr, _journal, _journal_append, _latest_answer, _now, _status, _ts,
                    _versions, library_root, resolve_version)


@dataclass(frozen=True)
class InvestigationEntry:
    """One investigation of a library, as :func:`list_investigations` shows it."""

    investigation_id: str
    passport: str
    metric: str
    onset: str | None
    verdict: str
    versions: int
    latest: VersionInfo
    status: str
    resolution: str | None

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "latest"}
        d["latest"] = self.latest.to_dict()
        return d

    def line(self) -> str:
        top = self.latest.top_cause or "-"
        res = f"resolved: {self.resolution}" if self.status == "resolved" else self.status
        return (f"{self.investigation_id}  {self.metric:16s} {self.verdict:12s} onset "
                f"{(self.onset or '-'):20s} top {top:10s} v{self.versions:<3d} "
                f"{self.latest.created_at[:16]}  {res}")


@dataclass(frozen=True)
class VersionDetail:
    """A version with its saved answer and the decisions it carries."""

    info: VersionInfo
    answer: dict

    def to_dict(self) -> dict:
        return {"version": self.info.to_dict(), "answer": self.answer}

    def summary(self) -> str:
        a, i = self.answer, self.info
        lines = [f"{i.version_id}  ({i.content_hash[:16]})",
                 f"  saved {i.created_at} by {i.author}: {i.message}",
                 f"  parent {i.parent or '-'}; notebook {i.path}"]
        lines += ["", *_answer_lines(a)]
        return "\n".join(lines)


@dataclass(frozen=True)
class DiagnoseTimes:
    """Time-to-diagnose of one investigation."""

    investigation_id: str
    metric: str
    loaded_at: str | None
    top_cause_shown_at: str | None
    decided_at: str | None
    seconds_to_cause: float | None
    seconds_to_decision: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StatsReport:
    """Time-to-diagnose over a library (:func:`investigation_stats`)."""

    rows: tuple[DiagnoseTimes, ...]
    median_seconds_to_cause: float | None
    median_seconds_to_decision: float | None

    def to_dict(self) -> dict:
        return {"investigations": len(self.rows),
                "decided": sum(r.decided_at is not None for r in self.rows),
                "median_seconds_to_cause": self.median_seconds_to_cause,
                "median_seconds_to_decision": self.median_seconds_to_decision,
                "rows": [r.to_dict() for r in self.rows]}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.rows])

    def summary(self) -> str:
        d = self.to_dict()
        lines = [f"{d['investigations']} investigations, {d['decided']} with a decision",
                 f"median time to the top cause: {_dur(self.median_seconds_to_cause)}; "
                 f"to a decision: {_dur(self.median_seconds_to_decision)}", ""]
        lines.append(f"  {'investigation':28s} {'metric':16s} {'loaded':20s} {'to cause':>9s} "
                     f"{'to decision':>11s}")
        for r in self.rows:
            loaded = (r.loaded_at or "-")[:19]
            lines.append(f"  {r.investigation_id:28s} {r.metric:16s} {loaded:20s} "
                         f"{_dur(r.seconds_to_cause):>9s} {_dur(r.seconds_to_decision):>11s}")
        return "\n".join(lines)


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    return f"{s / 3600:.1f}h"


def list_investigations(root: str | Path | None = None) -> tuple[InvestigationEntry, ...]:
    """Every investigation of the library, most recently saved first."""
    root = library_root(root)
    out = []
    for folder in _folders(root):
        vs = _versions(folder)
        if not vs:
            continue
        status, resolution, _, _ = _status(_journal(folder))
        v = vs[-1]
        out.append(InvestigationEntry(investigation_id=folder.name, passport=v.passport,
                                      metric=v.metric, onset=v.onset, verdict=v.verdict,
                                      versions=len(vs), latest=v, status=status,
                                      resolution=resolution))
    out.sort(key=lambda e: e.latest.created_at, reverse=True)
    return tuple(out)


def list_versions(root: str | Path | None, iid: str) -> tuple[VersionInfo, ...]:
    root = library_root(root)
    return tuple(_versions(_folder(root, resolve_version(root, iid).investigation_id)))


def show_version(root: str | Path | None, ref: str, *, verify: bool = True) -> VersionDetail:
    """A version and its saved answer; ``ref`` as in :func:`resolve_version`.

    With ``verify`` (the default), a version whose files differ from what was
    saved raises :class:`LibraryError` naming the file; ``verify=False`` shows
    it anyway (to see what an edit changed).
    """
    root = library_root(root)
    info = resolve_version(root, ref)
    if verify:
        _checked(root, info)
    answer = json.loads(Path(info.answer_path).read_text(encoding="utf-8"))
    return VersionDetail(info, answer)


def journal(root: str | Path | None, iid: str) -> tuple[JournalEntry, ...]:
    root = library_root(root)
    return tuple(_journal(_folder(root, resolve_version(root, iid).investigation_id)))


def record_decision(root: str | Path | None, inv_id: str, *, hypothesis: str, status: str,
                    note: str | None = None, author: str | None = None) -> JournalEntry:
    """Confirm or refute a hypothesis (a candidate change id, or ``external``).

    The decision is journaled, appended to the audit log
    (``hypothesis.confirmed`` / ``hypothesis.refuted``), re-indexed in memory
    (a confirmed cause resolves the investigation and becomes a pattern), and
    carried by the next saved version.

    Examples
    --------
    >>> record_decision("investigations", "inv-20261124-211853-3fa2", hypothesis="chg-0431",
    ...                 status="confirmed", note="payment step broken")   # doctest: +SKIP
    """
    root = library_root(root)
    if status not in STATUSES:
        raise UsageError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    iid = _iid(root, inv_id)
    causes = [c["change_id"] for c in (_latest_answer(root, iid).get("causes") or [])]
    if hypothesis != "external" and hypothesis not in causes:
        raise UsageError(f"{hypothesis!r} is not a hypothesis of {iid}; hypotheses are: "
                         + ", ".join((causes[:10] + ["external"])))
    return _record(root, iid, "decision", f"hypothesis.{status}", author,
                   {"hypothesis": hypothesis, "status": status, "note": note})


def _record(root: Path, iid: str, kind: str, action: str, author: str | None,
            details: dict) -> JournalEntry:
    """Journal an entry, append its audit record (same time) and re-index memory."""
    author = author or default_actor()
    e = _journal_append(root / iid, iid, kind, author, details)
    AuditLog(root / AUDIT_FILE).append(action, actor=author, subject=iid, details=details,
                                       ts=e.ts)
    _reindex(root, iid)
    return e


def add_note(root: str | Path | None, inv_id: str, text: str, *, author: str | None = None,
             hypothesis: str | None = None) -> JournalEntry:
    """Add a note to an investigation (journaled and audited as ``note.added``)."""
    root = library_root(root)
    if not text or not str(text).strip():
        raise UsageError("a note needs some text")
    iid = _iid(root, inv_id)
    return _record(root, iid, "note", "note.added", author,
                   {"text": str(text), "hypothesis": hypothesis})


def record_action(root: str | Path | None, inv_id: str, *, action: str,
                  target: str | None = None, note: str | None = None,
                  author: str | None = None) -> JournalEntry:
    """Record an action launched (``revert``, ``rollback``, ``hold rollout``...).

    Audited as ``action.launched``. The last action of a resolved investigation
    is its resolution ("revert chg-0431"), which memory patterns carry.
    """
    root = library_root(root)
    if not action or not str(action).strip():
        raise UsageError("an action needs a name such as revert, rollback or 'hold rollout'")
    iid = _iid(root, inv_id)
    return _record(root, iid, "action", "action.launched", author,
                   {"action": str(action), "target": target, "note": note})


def decide(inv, hypothesis: str, status: str, *, note: str | None = None,
           author: str | None = None, root: str | Path | None = None) -> JournalEntry:
    """:func:`record_decision` for an Investigation object (saving it first if it never was)."""
    if not _inv_attr(inv, "investigation_id"):
        save_investigation(inv, message="saved before recording a decision", author=author,
                           root=root)
    lib = library_root(root if root is not None else _inv_attr(inv, "library"))
    e = record_decision(lib, inv.investigation_id, hypothesis=hypothesis, status=status,
                        note=note, author=author)
    inv.record.decisions.append({"ts": e.ts, "author": e.author, **e.details})
    return e


def note_shown(inv, *, at: str | None = None) -> None:
    """Record when the top cause was first shown (call it from displays; cheap after once)."""
    clock = inv.record.clock
    if clock.get("top_cause_shown_at") or not inv.causes:
        return
    clock["top_cause_shown_at"] = at or _now()


def investigation_stats(root: str | Path | None = None) -> StatsReport:
    """Time-to-diagnose of every investigation: loaded -> top cause shown -> first decision."""
    import statistics

    root = library_root(root)
    rows = []
    for folder in _folders(root):
        vs = _versions(folder)
        entries = _journal(folder)
        first = {k: next((e for e in entries if e.kind in k), None)
                 for k in (("loaded",), ("shown",), ("decision", "action"))}
        loaded = first[("loaded",)].details.get("at") if first[("loaded",)] else None
        shown = first[("shown",)].details.get("at") if first[("shown",)] else None
        decided = first[("decision", "action")].ts if first[("decision", "action")] else None
        tl, ts_, td = _ts(loaded), _ts(shown), _ts(decided)
        rows.append(DiagnoseTimes(
            investigation_id=folder.name, metric=vs[-1].metric if vs else "-",
            loaded_at=loaded, top_cause_shown_at=shown, decided_at=decided,
            seconds_to_cause=round((ts_ - tl).total_seconds(), 3) if tl and ts_ else None,
            seconds_to_decision=round((td - tl).total_seconds(), 3) if tl and td else None))
    rows.sort(key=lambda r: r.loaded_at or "")
    tc = [r.seconds_to_cause for r in rows if r.seconds_to_cause is not None]
    td_ = [r.seconds_to_decision for r in rows if r.seconds_to_decision is not None]
    return StatsReport(tuple(rows), statistics.median(tc) if tc else None,
                       statistics.median(td_) if td_ else None)
