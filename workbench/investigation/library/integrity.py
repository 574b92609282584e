"""Verifying a library: every saved file, every index line, the audit log.

Each version's three files are checked against the SHA-256 recorded at save
(Merkle-style content addressing; the audit log that repeats the hashes is a
hash chain, Haber and Stornetta, "How to time-stamp a digital document",
J. Cryptology 1991), the index against itself (versions increase, each names
its parent) and against the ``artifact.saved`` audit records.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError
from ...governance.audit import AuditError, read_audit, verify_audit
from .store import (_AUDITED_FIELDS, _ID_RE, _TMP_GLOB, _VFILE_RE, AUDIT_FILE, ENV_ROOT,
                    PENDING_AUDIT, LibraryError, VersionInfo, _answer_json, _display,
                    _scan_jsonl, _version_of, library_root)


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
    from .notebook import notebook_text

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
