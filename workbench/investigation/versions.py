"""A library of investigations as immutable, versioned notebook artifacts.

Layout of a library (default ``./investigations``, or ``$WORKBENCH_INVESTIGATIONS``)::

    investigations/
      audit.jsonl, audit.jsonl.head      tamper-evident audit log (governance.audit)
      memory.duckdb                      searchable index of past investigations (memory)
      inv-20261118-140312-3fa2/          one investigation
        versions.jsonl                   one VersionInfo per line, append-only
        journal.jsonl                    decisions, notes, actions, clock, append-only
        v0001.ipynb                      the artifact: template + parameters + saved answer
        v0001.py                         its text twin (jupytext py:percent), for diffs
        v0001.answer.json                the saved answer, canonical JSON, for diffs
        runs/v0001-<time>.ipynb          executed copies (outputs live here, apart)

Every save is a new version: the files are created exclusively (never
overwritten) and made read-only, and the version is committed by appending
its line to ``versions.jsonl``. A version has an id (``inv-...@v0002``), a
parent, an author, a time, a message and the SHA-256 of each of its three
files (``content_hash`` is the notebook's; ``text_hash`` and ``answer_hash``
its twins').

A save survives a crash (``kill -9``, power loss) at any point. Under the
investigation's lock it

1. writes each file to a temporary name in the same folder (``.v0002.ipynb.tmp-<pid>``),
   fsyncs it and makes it read-only;
2. gives each its final name with a hard link, which fails rather than replace
   an existing file, and fsyncs the folder;
3. writes ``.pending-audit`` naming the version, appends its line to
   ``versions.jsonl`` (one ``write``, fsynced: the commit point), appends the
   journal and the audit record, and removes ``.pending-audit``.

So the index only ever lists versions whose files are complete. A crash
before the commit leaves, at worst, temporary files (removed by the next save)
or complete files under a version number no line names (never deleted: the
next version takes the number after them; :func:`verify_library` lists them).
A crash after the commit leaves ``.pending-audit``: the next save of the
investigation writes the missing audit record (``recovered: true``). A line
cut short by a crash (no final newline) is ignored with a
:class:`LibraryWarning` and removed by the next write to that file.

:func:`verify_library` (``workbench investigations verify``) checks every file
of every version against the hashes recorded at save, the index's own
consistency, and the index against the audit log's ``artifact.saved`` records
(the audit log is hash-chained, so an edit of the index shows as a mismatch).
:func:`show_version`, :func:`diff_versions`, :func:`reopen` and
:func:`reproduce_version` refuse a version whose files do not match, with the
same one-line message.

An investigation is one incident: re-running ``investigate`` on the same
passport, metric and onset (within six hours) adds a version to the
investigation already in the library instead of starting a new one.

Decisions (a hypothesis confirmed or refuted), notes and actions are
journaled per investigation and appended to the audit log; the next saved
version carries them. The journal also keeps the time-to-diagnose clock:
when the divergence was loaded, when the top cause was first shown and when
the first decision was made (:func:`investigation_stats`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import re
import secrets
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError, WorkbenchError
from ..governance.durable import append_line, end_on_complete_line, file_lock, fsync_dir, now_iso
from ..governance.audit import AuditError, AuditLog, default_actor, read_audit, verify_audit
from .._format import fmt_filter, jsonable, pct
from ..options import get_options
from . import memory as _memory
from .render import answer_lines as _answer_lines

_pct = pct
_fmt_filter = fmt_filter

ENV_ROOT = "WORKBENCH_INVESTIGATIONS"
DEFAULT_ROOT = "investigations"
AUDIT_FILE = "audit.jsonl"
STATUSES = ("confirmed", "refuted")
MERGE_WINDOW = timedelta(hours=6)
_ID_RE = re.compile(r"^inv-\d{8}-\d{6}-[0-9a-f]{4}$")
_VFILE_RE = re.compile(r"^v(\d{4,})\.(ipynb|py|answer\.json)$")
PENDING_AUDIT = ".pending-audit"
_TMP_GLOB = ".v*.tmp-*"
# Tests only: seconds to sleep between the write steps of a save, so that a test can
# SIGKILL a save at any step (tests/investigation/test_versions_crash.py).
TEST_SAVE_DELAY_ENV = "WORKBENCH_TEST_SAVE_DELAY"


class LibraryError(WorkbenchError):
    """An investigations library, investigation or version is not what was asked for."""


class LibraryWarning(UserWarning):
    """A library file shows the trace of an interrupted write, ignored or repaired."""


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class VersionInfo:
    """One saved version of an investigation (one line of ``versions.jsonl``)."""

    investigation_id: str
    version: int
    content_hash: str
    parent: str | None
    author: str
    created_at: str
    message: str
    path: str
    text_path: str
    answer_path: str
    passport: str
    passport_dir: str
    metric: str
    window: str | None
    onset: str | None
    verdict: str
    top_cause: str | None
    top_confidence: float | None
    based_on: str | None = None
    text_hash: str | None = None    # SHA-256 of the .py twin (None: saved before it was kept)
    answer_hash: str | None = None  # SHA-256 of the .answer.json

    @property
    def version_id(self) -> str:
        return f"{self.investigation_id}@v{self.version:04d}"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["version_id"] = self.version_id
        return d

    def line(self) -> str:
        top = (f"{self.top_cause} {self.top_confidence:.0%}" if self.top_cause
               and self.top_confidence is not None else "-")
        return (f"{self.version_id}  {self.created_at[:19]}  {self.author:10s} "
                f"{self.verdict:12s} top {top:18s} {self.content_hash[:10]}  {self.message}")


@dataclass(frozen=True)
class JournalEntry:
    """A decision, note, action or clock event of one investigation."""

    investigation_id: str
    ts: str
    kind: str  # loaded | shown | decision | note | action
    author: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


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


@dataclass(frozen=True)
class LibraryReport:
    """What :func:`verify_library` found.

    Attributes
    ----------
    ok:
        True when every version's files match the hashes recorded at save, the
        indexes are consistent, they agree with the audit log, and the audit
        log's chain is intact.
    problems:
        One line per problem, naming the file (and the version): edited or
        deleted files, edited index lines, audit mismatches.
    warnings:
        Traces of interrupted saves, which are not tampering: files no version
        names, temporary files, a committed version still waiting for its audit
        record, an incomplete last line.
    """

    root: str
    ok: bool
    investigations: int
    versions: int
    files: int
    audit_records: int
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["problems"], d["warnings"] = list(self.problems), list(self.warnings)
        return d

    def summary(self) -> str:
        what = (f"{self.investigations} investigations, {self.versions} versions, "
                f"{self.files} files, {self.audit_records} audit records")
        if self.ok:
            return (f"library {self.root}: OK, {what}; every file matches the hash recorded "
                    "at save" + (f" ({len(self.warnings)} warnings)" if self.warnings else ""))
        return (f"library {self.root}: {len(self.problems)} problem"
                f"{'s' if len(self.problems) != 1 else ''} ({what})")

    def __bool__(self) -> bool:
        return self.ok


# --------------------------------------------------------------------------- library
def library_root(root: str | Path | None = None) -> Path:
    """The library folder: ``root``, else ``set_options(library=...)``, else
    ``$WORKBENCH_INVESTIGATIONS``, else ``investigations``."""
    if root is not None:
        return Path(root)
    if get_options()["library"] is not None:
        return Path(get_options()["library"])
    return Path(os.environ.get(ENV_ROOT) or DEFAULT_ROOT)


def audit_path(root: str | Path | None = None) -> Path:
    return library_root(root) / AUDIT_FILE


_now = now_iso


def _ts(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    return f"{s / 3600:.1f}h"


_flock = file_lock


def _scan_jsonl(path: Path) -> tuple[list[tuple[int, dict]], str | None, str | None]:
    """``([(line number, record)], problem, note)`` of a JSON Lines file of the library.

    ``problem``: a complete line that is not JSON (the file was edited); reading
    stops there. ``note``: the last line has no newline and is not JSON, which
    is what a write cut short by a crash leaves (a record is written with one
    ``write`` ending in its newline), so the line is left out.
    """
    if not path.is_file():
        return [], None, None
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends on a newline
    out: list[tuple[int, dict]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except ValueError:
            return out, (f"{_display(path)}, line {n}: not valid JSON; the library file was "
                         "edited by hand"), None
    if tail.strip():
        try:
            out.append((len(lines) + 1, json.loads(tail)))  # complete, only its newline lost
        except ValueError:
            return out, None, (f"{_display(path)}, line {len(lines) + 1}: an incomplete last "
                               "line (a write interrupted by a crash) is ignored; the next "
                               "write to this file removes it")
    return out, None, None


def _read_jsonl(path: Path, *, numbered: bool = False) -> list:
    rows, problem, note = _scan_jsonl(path)
    if problem:
        raise LibraryError(problem)
    if note:
        warnings.warn(note, LibraryWarning, stacklevel=3)
    return rows if numbered else [d for _, d in rows]


def _end_on_complete_line(path: Path) -> None:
    """Before appending: drop a last line cut short by a crash (or end a whole one)."""
    end_on_complete_line(path, category=LibraryWarning, shown=_display(path), stacklevel=5)


def _append_jsonl(path: Path, obj: dict) -> None:
    """Append one line with a single ``write`` (callers hold the folder lock)."""
    _end_on_complete_line(path)
    append_line(path, (json.dumps(obj, sort_keys=True, default=str) + "\n").encode("utf-8"))


def _test_pause() -> None:
    """Sleep ``$WORKBENCH_TEST_SAVE_DELAY`` seconds between two write steps of a save.

    Unset (always, outside the crash test), this does nothing. The crash test
    sets it to widen the window between steps so that its random SIGKILLs land
    between every pair of them.
    """
    delay = os.environ.get(TEST_SAVE_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


_fsync_dir = fsync_dir


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsynced and read-only."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o444)
    return tmp


def _publish(tmp: Path, path: Path) -> None:
    """Give a staged file its final name; an existing file is never replaced."""
    try:
        os.link(tmp, path)  # atomic, and fails if ``path`` exists
    except FileExistsError:
        raise LibraryError(f"{_display(path)}: exists already; a saved version's file is never "
                           "overwritten") from None
    except OSError:  # pragma: no cover - a file system without hard links
        if path.exists():
            raise LibraryError(f"{_display(path)}: exists already; a saved version's file is "
                               "never overwritten") from None
        os.rename(tmp, path)
        return
    os.unlink(tmp)


def _display(path: Path | str) -> str:
    """``path`` relative to the working directory when it is under it (as people type it)."""
    p = Path(path)
    if p.is_absolute():
        with contextlib.suppress(ValueError, OSError):
            return str(p.relative_to(Path.cwd()))
    return str(p)


_VERSION_FIELDS = frozenset(VersionInfo.__dataclass_fields__)
_REQUIRED_FIELDS = frozenset(k for k, f in VersionInfo.__dataclass_fields__.items()
                             if f.default is dataclasses.MISSING)


def _version_of(path: Path, n: int, d: dict) -> VersionInfo:
    missing = sorted(_REQUIRED_FIELDS - set(d)) if isinstance(d, dict) else ["everything"]
    if missing:
        raise LibraryError(f"{_display(path)}, line {n}: not a version record (missing "
                           f"{', '.join(missing)}); the library file was edited by hand")
    return VersionInfo(**{k: v for k, v in d.items() if k in _VERSION_FIELDS})


def _versions(folder: Path) -> list[VersionInfo]:
    path = folder / "versions.jsonl"
    return [_version_of(path, n, d) for n, d in _read_jsonl(path, numbered=True)]


def _journal(folder: Path) -> list[JournalEntry]:
    return [JournalEntry(**d) for d in _read_jsonl(folder / "journal.jsonl")]


def _folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _ID_RE.match(p.name)
                  and (p / "versions.jsonl").is_file())


def _new_id(root: Path) -> str:
    for _ in range(100):
        iid = (f"inv-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}")
        try:
            (root / iid).mkdir(parents=True, exist_ok=False)
            return iid
        except FileExistsError:
            continue
    raise LibraryError(f"{root}: cannot create a new investigation folder")  # pragma: no cover


def _folder(root: Path, iid: str) -> Path:
    f = root / iid
    if not (f / "versions.jsonl").is_file():
        known = [p.name for p in _folders(root)][-5:]
        raise UsageError(f"no investigation {iid!r} in {root}; "
                         + (f"recent ones: {', '.join(known)}" if known else
                            "the library is empty (run `workbench investigate` first)"))
    return f


# --------------------------------------------------------------------------- answer
def _inv_attr(inv, name: str, default=None):
    return getattr(inv, name, default)


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


# --------------------------------------------------------------------------- ledger state
def _ledger(entries: list[JournalEntry]) -> tuple[list[dict], list[dict], list[dict]]:
    decisions, notes, actions = [], [], []
    for e in entries:
        row = {"ts": e.ts, "author": e.author, **e.details}
        if e.kind == "decision":
            decisions.append(row)
        elif e.kind == "note":
            notes.append(row)
        elif e.kind == "action":
            actions.append(row)
    return decisions, notes, actions


def _status(entries: list[JournalEntry]) -> tuple[str, str | None, str | None, dict]:
    """(status, resolution, resolved_at, latest status per hypothesis)."""
    latest: dict[str, dict] = {}
    for e in entries:
        if e.kind == "decision":
            latest[e.details["hypothesis"]] = {"status": e.details["status"], "ts": e.ts,
                                               "note": e.details.get("note"),
                                               "author": e.author}
    confirmed = [(h, d) for h, d in latest.items() if d["status"] == "confirmed"]
    if not confirmed:
        return "open", None, None, latest
    hyp, d = confirmed[-1]
    acts = [e for e in entries if e.kind == "action"]
    if acts:
        a = acts[-1].details
        resolution = a["action"] + (f" {a['target']}" if a.get("target") else "")
    else:
        resolution = f"confirmed {hyp}"
    return "resolved", resolution, min(x["ts"] for _, x in confirmed), latest


# --------------------------------------------------------------------------- save
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
    from .library.notebook import build_notebook, notebook_text

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
                      "memory": str(_memory.memory_path(root).resolve()), "memory_asof": loaded}
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
                staged.append(_stage(path, blob))
                _test_pause()
            for i in (2, 1, 0):
                _publish(staged[i], paths[i])
                _test_pause()
            _fsync_dir(folder)
            # 3: commit (the index line), then journal and audit; .pending-audit lets the
            # next save finish the audit if a crash comes between the two
            _write_small(folder / PENDING_AUDIT, json.dumps({"version_id": info.version_id}))
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


def _answer_json(answer: dict) -> str:
    return json.dumps(answer, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _write_small(path: Path, text: str) -> None:
    """Write a small bookkeeping file whole or not at all (temporary file, then rename)."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# What an ``artifact.saved`` audit record repeats of its version, checked by verify_library.
_AUDITED_FIELDS = ("content_hash", "text_hash", "answer_hash", "message", "verdict",
                   "top_cause")


def _saved_details(info: VersionInfo) -> dict:
    return {"version": info.version_id, **{k: getattr(info, k) for k in _AUDITED_FIELDS}}


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


def _journal_append(folder: Path, iid: str, kind: str, author: str, details: dict,
                    ts: str | None = None) -> JournalEntry:
    with _flock(folder / ".lock"):
        return _journal_write(folder, iid, kind, author, details, ts)


def _journal_write(folder: Path, iid: str, kind: str, author: str, details: dict,
                   ts: str | None = None) -> JournalEntry:
    """Append a journal entry; the caller holds the folder lock."""
    e = JournalEntry(investigation_id=iid, ts=ts or _now(), kind=kind, author=author,
                     details=details)
    _append_jsonl(folder / "journal.jsonl", e.to_dict())
    return e


# --------------------------------------------------------------------------- verify
def _expected_hashes(folder: Path, info: VersionInfo) -> list[tuple[Path, str | None]]:
    """The files of a version, each with the SHA-256 recorded at save.

    Versions saved before the twins' hashes were recorded have None there; the
    twins are then checked against what the (checked) notebook regenerates.
    """
    names = (Path(info.path).name, Path(info.text_path).name, Path(info.answer_path).name)
    return [(folder / n, h) for n, h in zip(names, (info.content_hash, info.text_hash,
                                                     info.answer_hash))]


def _file_problems(folder: Path, info: VersionInfo) -> list[str]:
    """One line per file of ``info`` that is missing or differs from what was saved."""
    out = []
    files = _expected_hashes(folder, info)
    nb_ok = False
    for i, (path, want) in enumerate(files):
        if not path.is_file():
            out.append(f"{_display(path)}: missing (deleted after {info.version_id} was saved?)")
            continue
        data = path.read_bytes()
        if want is None:
            if not nb_ok:
                continue  # cannot regenerate it from a notebook that is not the saved one
            want = _regenerated_hash(files[0][0], i)
        if hashlib.sha256(data).hexdigest() != want:
            out.append(f"{_display(path)}: content hash differs from the one recorded when "
                       f"{info.version_id} was saved (edited after saving?)")
        elif i == 0:
            nb_ok = True
    return out


def _regenerated_hash(notebook: Path, i: int) -> str:
    from .library.notebook import notebook_text

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    text = (notebook_text(nb) if i == 1 else
            _answer_json(nb.get("metadata", {}).get("workbench", {}).get("answer", {})))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checked(root: Path, info: VersionInfo) -> VersionInfo:
    """``info``, or a LibraryError naming the first file that is not as saved."""
    problems = _file_problems(root / info.investigation_id, info)
    if problems:
        more = len(problems) - 1
        raise LibraryError(problems[0] + (f"; and {more} more (run `workbench investigations "
                                          "verify`)" if more else ""))
    return info


def verify_library(root: str | Path | None = None) -> LibraryReport:
    """Check every saved version of a library against what was recorded when it was saved.

    For each investigation: ``versions.jsonl`` parses, its versions increase and
    each names the one before as its parent; each version's notebook, text twin
    and answer JSON exist and have the SHA-256 recorded in its line; and the
    line agrees with the ``artifact.saved`` record of the audit log (hashes,
    message, verdict, top cause, author), whose hash chain is checked too. A
    version line added, removed or edited by hand, or a file edited or deleted
    after saving, is a problem. Traces of an interrupted save are warnings.

    Returns
    -------
    LibraryReport
        ``ok``, and one line per problem and per warning, naming the file.

    Examples
    --------
    >>> rep = verify_library("investigations")          # doctest: +SKIP
    >>> rep.ok, rep.problems                            # doctest: +SKIP
    (False, ('investigations/inv-20261124-211853-3fa2/v0002.ipynb: content hash differs from
    the one recorded when inv-20261124-211853-3fa2@v0002 was saved (edited after saving?)',))
    """
    root = library_root(root)
    if not root.is_dir():
        raise UsageError(f"{root}: no investigations library there; give --root or set "
                         f"${ENV_ROOT}")
    problems: list[str] = []
    notes: list[str] = []
    n_inv = n_ver = n_files = 0
    indexed: dict[str, dict[str, VersionInfo]] = {}
    pending: dict[str, str] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _ID_RE.match(p.name)):
        index = folder / "versions.jsonl"
        if not index.is_file():
            if any(_VFILE_RE.match(p.name) for p in folder.iterdir()):
                notes.append(f"{_display(folder)}: files but no versions.jsonl (a first save "
                             "interrupted before its commit?); ignored")
            continue
        n_inv += 1
        rows, problem, note = _scan_jsonl(index)
        if problem:
            problems.append(problem)
        if note:
            notes.append(note)
        known: dict[str, VersionInfo] = {}
        prev: VersionInfo | None = None
        for n, d in rows:
            try:
                info = _version_of(index, n, d)
            except (LibraryError, TypeError) as exc:
                problems.append(str(exc) if isinstance(exc, LibraryError) else
                                f"{_display(index)}, line {n}: not a version record; the "
                                "library file was edited by hand")
                continue
            where = f"{_display(index)}, line {n} ({info.version_id})"
            if info.investigation_id != folder.name:
                problems.append(f"{where}: belongs to {info.investigation_id}, not to this "
                                "folder (the line was copied or edited by hand)")
            want_parent = prev.version_id if prev else None
            if prev is not None and info.version <= prev.version:
                problems.append(f"{where}: version {info.version} after {prev.version} (lines "
                                "were moved or edited by hand)")
            elif info.parent != want_parent:
                problems.append(f"{where}: its parent is {info.parent or 'none'} but the line "
                                f"before is {want_parent or 'none'} (a line was removed, added "
                                "or edited by hand)")
            n_ver += 1
            n_files += 3
            problems += _file_problems(folder, info)
            known[info.version_id] = info
            prev = info
        indexed[folder.name] = known
        names = {Path(x).name for v in known.values()
                 for x in (v.path, v.text_path, v.answer_path)}
        for f in sorted(folder.iterdir()):
            if _VFILE_RE.match(f.name) and f.name not in names:
                notes.append(f"{_display(f)}: not part of any saved version (left by an "
                             "interrupted save?); ignored")
            elif f.match(_TMP_GLOB) or f.name.startswith(PENDING_AUDIT + ".tmp-"):
                notes.append(f"{_display(f)}: a temporary file of an interrupted save; the "
                             "next save removes it")
        marker = folder / PENDING_AUDIT
        if marker.is_file():
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                pending[folder.name] = json.loads(marker.read_text(encoding="utf-8"))[
                    "version_id"]

    audit_file = root / AUDIT_FILE
    audit = verify_audit(audit_file)
    notes += [f"{_display(audit_file)}: {w}" for w in audit.warnings]
    if not audit.ok:
        problems.append(f"{_display(audit_file)}, line {audit.first_bad_line}: {audit.reason} "
                        "(the index cannot be checked against it)")
    else:
        problems += _audit_mismatches(root, audit_file, indexed, pending, notes)
    return LibraryReport(root=_display(root), ok=not problems, investigations=n_inv,
                         versions=n_ver, files=n_files, audit_records=audit.records,
                         problems=tuple(problems), warnings=tuple(notes))


def _audit_mismatches(root: Path, audit_file: Path, indexed: dict[str, dict[str, VersionInfo]],
                      pending: dict[str, str], notes: list[str]) -> list[str]:
    """Index lines and ``artifact.saved`` audit records that do not agree."""
    try:
        records = read_audit(audit_file, action="artifact.saved")
    except AuditError as exc:
        return [str(exc)]
    saved: dict[str, object] = {}
    out = []
    for r in records:
        vid = str(r.details.get("version"))
        saved.setdefault(vid, r)
        iid = vid.partition("@")[0]
        if iid not in indexed:
            out.append(f"{_display(root / iid)}: missing, but audit record #{r.seq} says "
                       f"{vid} was saved (the investigation was deleted?)")
        elif vid not in indexed[iid]:
            out.append(f"{_display(root / iid / 'versions.jsonl')}: no line for {vid}, whose "
                       f"save audit record #{r.seq} records (the line was removed by hand?)")
    for iid, known in indexed.items():
        index = _display(root / iid / "versions.jsonl")
        last = list(known)[-1] if known else None
        for vid, info in known.items():
            r = saved.get(vid)
            if r is None:
                if pending.get(iid) == vid and vid == last:
                    notes.append(f"{index}: {vid} was saved but its audit record not yet "
                                 "written (the save was interrupted); the next save of "
                                 f"{iid} writes it")
                else:
                    out.append(f"{index}: {vid} has no artifact.saved record in the audit log "
                               "(the line was added by hand?)")
                continue
            diff = [k for k in _AUDITED_FIELDS if k in r.details and r.details[k] != getattr(
                info, k)]
            if r.actor != info.author:
                diff.append("author")
            if diff:
                out.append(f"{index}: {', '.join(diff)} of {vid} differ from audit record "
                           f"#{r.seq} of its save (the line was edited by hand?)")
    return out


# --------------------------------------------------------------------------- memory glue
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


# --------------------------------------------------------------------------- refs
def resolve_version(root: str | Path | None, ref: str) -> VersionInfo:
    """Find a version by ``inv-...`` (latest), ``inv-...@v0002``/``@2``/``@latest``,
    a unique prefix of an investigation id, or a content-hash prefix (6+ hex digits)."""
    root = library_root(root)
    ref = str(ref).strip()
    iid, _, vpart = ref.partition("@")
    folders = _folders(root)
    if re.fullmatch(r"[0-9a-f]{6,64}", ref):
        hits = [v for f in folders for v in _versions(f) if v.content_hash.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UsageError(f"content hash prefix {ref!r} is ambiguous: "
                             + ", ".join(v.version_id for v in hits[:5]))
    names = [f.name for f in folders]
    if iid not in names:
        cands = [n for n in names if n.startswith(iid)]
        if len(cands) == 1:
            iid = cands[0]
        elif len(cands) > 1:
            raise UsageError(f"{iid!r} matches several investigations: {', '.join(cands[:5])}")
        else:
            _folder(root, iid)  # raises with the recent ids
    vs = _versions(root / iid)
    if not vs:
        raise UsageError(f"investigation {iid} has no saved version")
    if vpart in ("", "latest"):
        return vs[-1]
    if vpart == "first":
        return vs[0]
    m = re.fullmatch(r"v?(\d+)", vpart)
    if not m:
        raise UsageError(f"version {vpart!r}: expected vNNNN, a number, 'first' or 'latest'")
    want = int(m.group(1))
    for v in vs:
        if v.version == want:
            return v
    raise UsageError(f"{iid} has no version {want}; versions are "
                     + ", ".join(f"v{v.version:04d}" for v in vs))


# --------------------------------------------------------------------------- read
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


# --------------------------------------------------------------------------- diff
def diff_versions(root: str | Path | None, a: str, b: str | None = None, *,
                  text: bool = False) -> str:
    """A readable diff of two versions: verdict, divergence, inputs, slices, causes
    with their confidence and evidence lines, decisions, data quality.

    Parameters
    ----------
    a, b:
        Version refs (:func:`resolve_version`). With ``b`` omitted, ``a`` is
        compared with its parent.
    text:
        Append a unified diff of the two notebooks' text twins (py:percent).

    Examples
    --------
    >>> iid = "inv-20261124-211853-3fa2"
    >>> print(diff_versions("investigations", f"{iid}@1", f"{iid}@2"))  # doctest: +SKIP
    inv-20261124-211853-3fa2@v0001 -> inv-20261124-211853-3fa2@v0002
    Causes:
      ~ #1 chg-0431 flag new_checkout_flow: confidence 87% -> 91%
    Decisions:
      + chg-0431 confirmed by ana: "payment step broken on iOS 5.2"
    """
    root = library_root(root)
    vb = resolve_version(root, a if b is None else b)
    if b is None:
        if vb.parent is None:
            raise UsageError(f"{vb.version_id} is the first version; give two versions to diff")
        va = resolve_version(root, vb.parent)
    else:
        va = resolve_version(root, a)
    _checked(root, va)
    _checked(root, vb)
    A = json.loads(Path(va.answer_path).read_text(encoding="utf-8"))
    B = json.loads(Path(vb.answer_path).read_text(encoding="utf-8"))
    lines = [f"{va.version_id} -> {vb.version_id}",
             f"  {va.version_id}: {va.created_at[:19]} by {va.author}: {va.message}",
             f"  {vb.version_id}: {vb.created_at[:19]} by {vb.author}: {vb.message}", ""]
    body = diff_answers(A, B)
    lines += body or ["No change in the answer."]
    if text:
        ta = Path(va.text_path).read_text(encoding="utf-8").splitlines(keepends=True)
        tb = Path(vb.text_path).read_text(encoding="utf-8").splitlines(keepends=True)
        lines += ["", "Notebook text (py:percent):", "".join(difflib.unified_diff(
            ta, tb, fromfile=Path(va.text_path).name, tofile=Path(vb.text_path).name)).rstrip()
            or "  (identical)"]
    return "\n".join(lines)


def diff_answers(A: dict, B: dict) -> list[str]:
    """The lines of a readable diff between two saved answers (empty: no change)."""
    out: list[str] = []
    if A.get("verdict") != B.get("verdict"):
        out.append(f"Verdict: {A.get('verdict')} -> {B.get('verdict')}")
    if (A.get("metric"), A.get("passport")) != (B.get("metric"), B.get("passport")):
        out.append(f"Subject: {A.get('metric')} in {A.get('passport')} -> "
                   f"{B.get('metric')} in {B.get('passport')}")
    da, db = A.get("divergence") or {}, B.get("divergence") or {}
    dl = []
    if da.get("onset") != db.get("onset"):
        dl.append(f"  onset {da.get('onset')} -> {db.get('onset')}")
    if (da.get("window") or None) != (db.get("window") or None):
        dl.append(f"  window {da.get('window')} -> {db.get('window')}")
    for k, f in (("relative_change", "{:+.2%}"), ("baseline", "{:.4g}"), ("observed", "{:.4g}"),
                 ("score", "{:.2f}")):
        x, y = da.get(k), db.get(k)
        if x is None and y is None:
            continue
        if x is None or y is None or abs(x - y) > 1e-9 * max(1.0, abs(x)):
            sx = "-" if x is None else f.format(x)
            sy = "-" if y is None else f.format(y)
            if sx != sy:
                dl.append(f"  {k} {sx} -> {sy}")
    if dl:
        out += ["Divergence:", *dl]
    pa = {p.get("path"): p.get("sha256") for p in A.get("provenance") or []}
    pb = {p.get("path"): p.get("sha256") for p in B.get("provenance") or []}
    il = []
    for path in sorted(set(pa) | set(pb), key=str):
        if path not in pa:
            il.append(f"  + {path} (sha256 {str(pb[path])[:12]})")
        elif path not in pb:
            il.append(f"  - {path}")
        elif pa[path] != pb[path]:
            il.append(f"  ~ {path}: sha256 {str(pa[path])[:12]} -> {str(pb[path])[:12]}")
    if il:
        out += ["Inputs:", *il]
    pr_a, pr_b = A.get("params") or {}, B.get("params") or {}
    if pr_a != pr_b:
        out += ["Parameters:"] + [f"  {k}: {pr_a.get(k)!r} -> {pr_b.get(k)!r}"
                                  for k in sorted(set(pr_a) | set(pr_b), key=str)
                                  if pr_a.get(k) != pr_b.get(k)]
    out += _diff_ranked("Slices", A.get("slices") or [], B.get("slices") or [],
                        key=lambda s: _fmt_filter(s.get("filter")),
                        val=lambda s: s.get("explained_share"), what="explains", limit=5)
    out += _diff_causes(A.get("causes") or [], B.get("causes") or [])
    out += _diff_list("Decisions", A.get("decisions") or [], B.get("decisions") or [],
                      lambda d: f"{d['hypothesis']} {d['status']} by {d.get('author')}"
                                + (f': "{d["note"]}"' if d.get("note") else ""))
    out += _diff_list("Actions", A.get("actions") or [], B.get("actions") or [],
                      lambda d: f"{d['action']} {d.get('target') or ''} by {d.get('author')}"
                                + (f': "{d["note"]}"' if d.get("note") else ""))
    out += _diff_list("Notes", A.get("notes") or [], B.get("notes") or [],
                      lambda d: f'{d.get("author")}: "{d["text"]}"')
    out += _diff_list("Data quality", A.get("data_quality") or [], B.get("data_quality") or [],
                      lambda f: f"[{f.get('severity')}] {f.get('check')}: {f.get('detail')}"
                                + (f" -> {f['bearing']}" if f.get("bearing") else ""))
    ka = {k: v for k, v in (A.get("queries") or {}).items()}
    kb = {k: v for k, v in (B.get("queries") or {}).items()}
    changed_q = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
    if changed_q:
        out.append("Queries changed: " + ", ".join(changed_q))
    return out


def _diff_list(title: str, a: list, b: list, fmt) -> list[str]:
    sa, sb = [fmt(x) for x in a], [fmt(x) for x in b]
    lines = [f"  - {x}" for x in sa if x not in sb] + [f"  + {x}" for x in sb if x not in sa]
    return [f"{title}:", *lines] if lines else []


def _diff_ranked(title, a, b, *, key, val, what, limit) -> list[str]:
    ia = {key(x): (i, x) for i, x in enumerate(a[:limit], 1)}
    ib = {key(x): (i, x) for i, x in enumerate(b[:limit], 1)}
    lines = []
    for k, (i, x) in ib.items():
        if k not in ia:
            lines.append(f"  + #{i} {k}: {what} {_pct(val(x))}")
            continue
        j, y = ia[k]
        bits = []
        if i != j:
            bits.append(f"rank #{j} -> #{i}")
        if _pct(val(y)) != _pct(val(x)):
            bits.append(f"{what} {_pct(val(y))} -> {_pct(val(x))}")
        if bits:
            lines.append(f"  ~ {k}: " + ", ".join(bits))
    for k, (j, y) in ia.items():
        if k not in ib:
            lines.append(f"  - #{j} {k} (was {what} {_pct(val(y))})")
    return [f"{title}:", *lines] if lines else []


def _diff_causes(a: list, b: list) -> list[str]:
    ia = {c["change_id"]: (i, c) for i, c in enumerate(a, 1)}
    ib = {c["change_id"]: (i, c) for i, c in enumerate(b, 1)}
    lines = []
    for cid, (i, c) in ib.items():
        name = f"{cid} {c.get('kind')} {c.get('target')}"
        if cid not in ia:
            if i <= 10:
                lines.append(f"  + #{i} {name}: confidence {_pct(c.get('confidence'))}")
                lines += [f"      + {e}" for e in c.get("evidence", [])]
            continue
        j, p = ia[cid]
        bits = []
        if i != j:
            bits.append(f"rank #{j} -> #{i}")
        if _pct(p.get("confidence")) != _pct(c.get("confidence")) or \
                abs((p.get("confidence") or 0) - (c.get("confidence") or 0)) >= 0.001:
            bits.append(f"confidence {_pct(p.get('confidence'))} -> {_pct(c.get('confidence'))}")
        ev_a, ev_b = list(p.get("evidence", [])), list(c.get("evidence", []))
        ev_lines = [f"      - {e}" for e in ev_a if e not in ev_b] + \
                   [f"      + {e}" for e in ev_b if e not in ev_a]
        if bits or ev_lines:
            lines.append(f"  ~ #{i} {name}" + (": " + ", ".join(bits) if bits else ""))
            lines += ev_lines
    for cid, (j, p) in ia.items():
        if cid not in ib and j <= 10:
            lines.append(f"  - #{j} {cid} {p.get('kind')} {p.get('target')} (was "
                         f"{_pct(p.get('confidence'))})")
    return ["Causes:", *lines] if lines else []


# --------------------------------------------------------------------------- decisions
def _latest_answer(root: Path, iid: str) -> dict:
    v = _versions(root / iid)[-1]
    try:
        return json.loads(Path(v.answer_path).read_text(encoding="utf-8"))
    except OSError:
        return {}


def _iid(root: Path, ref: str) -> str:
    return resolve_version(root, ref).investigation_id


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
    author = author or default_actor()
    e = _journal_append(root / iid, iid, "decision", author,
                        {"hypothesis": hypothesis, "status": status, "note": note})
    AuditLog(root / AUDIT_FILE).append(f"hypothesis.{status}", actor=author, subject=iid,
                                       details={"hypothesis": hypothesis, "status": status,
                                                "note": note}, ts=e.ts)
    _reindex(root, iid)
    return e


def add_note(root: str | Path | None, inv_id: str, text: str, *, author: str | None = None,
             hypothesis: str | None = None) -> JournalEntry:
    """Add a note to an investigation (journaled and audited as ``note.added``)."""
    root = library_root(root)
    if not text or not str(text).strip():
        raise UsageError("a note needs some text")
    iid = _iid(root, inv_id)
    author = author or default_actor()
    e = _journal_append(root / iid, iid, "note", author,
                        {"text": str(text), "hypothesis": hypothesis})
    AuditLog(root / AUDIT_FILE).append("note.added", actor=author, subject=iid,
                                       details={"text": str(text), "hypothesis": hypothesis},
                                       ts=e.ts)
    _reindex(root, iid)
    return e


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
    author = author or default_actor()
    e = _journal_append(root / iid, iid, "action", author,
                        {"action": str(action), "target": target, "note": note})
    AuditLog(root / AUDIT_FILE).append("action.launched", actor=author, subject=iid,
                                       details={"action": str(action), "target": target,
                                                "note": note}, ts=e.ts)
    _reindex(root, iid)
    return e


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
    from .library.notebook import MIME_REPRODUCTION

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
    return ReproductionReport(info.version_id, bool(check.get("reproduced")), check,
                              round(seconds, 2), str(out))


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


# --------------------------------------------------------------------------- stats
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
