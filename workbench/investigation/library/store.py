"""The library's files: where it is, its indexes and records, and version references.

A library (default ``./investigations``, or ``$WORKBENCH_INVESTIGATIONS``) holds
one folder per investigation with an append-only ``versions.jsonl`` (one
:class:`VersionInfo` per line) and ``journal.jsonl`` (one :class:`JournalEntry`
per line). This module reads them (a last line torn by a crash is ignored with
a :class:`LibraryWarning`; a line edited by hand is a :class:`LibraryError`),
appends to them through :mod:`workbench.governance.durable` (one fsynced
``write`` per record), derives an investigation's status from its journal, and
resolves a version reference (:func:`resolve_version`). The layout and the
crash-safety argument are in :mod:`workbench.investigation.library`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ...errors import UsageError, WorkbenchError
from ...governance.durable import append_line, end_on_complete_line, file_lock, now_iso
from ...options import get_options


ENV_ROOT = "WORKBENCH_INVESTIGATIONS"
DEFAULT_ROOT = "investigations"
AUDIT_FILE = "audit.jsonl"
STATUSES = ("confirmed", "refuted")
MERGE_WINDOW = timedelta(hours=6)
_ID_RE = re.compile(r"^inv-\d{8}-\d{6}-[0-9a-f]{4}$")
_VFILE_RE = re.compile(r"^v(\d{4,})\.(ipynb|py|answer\.json)$")
PENDING_AUDIT = ".pending-audit"
_TMP_GLOB = ".v*.tmp-*"
TEST_SAVE_DELAY_ENV = "WORKBENCH_TEST_SAVE_DELAY"


class LibraryError(WorkbenchError):
    """An investigations library, investigation or version is not what was asked for."""


class LibraryWarning(UserWarning):
    """A library file shows the trace of an interrupted write, ignored or repaired."""


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


def _inv_attr(inv, name: str, default=None):
    return getattr(inv, name, default)


def _answer_json(answer: dict) -> str:
    return json.dumps(answer, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
_AUDITED_FIELDS = ("content_hash", "text_hash", "answer_hash", "message", "verdict",
                   "top_cause")


def _saved_details(info: VersionInfo) -> dict:
    return {"version": info.version_id, **{k: getattr(info, k) for k in _AUDITED_FIELDS}}


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


def _latest_answer(root: Path, iid: str) -> dict:
    v = _versions(root / iid)[-1]
    try:
        return json.loads(Path(v.answer_path).read_text(encoding="utf-8"))
    except OSError:
        return {}


def _iid(root: Path, ref: str) -> str:
    return resolve_version(root, ref).investigation_id
