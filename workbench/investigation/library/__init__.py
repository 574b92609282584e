"""The investigations library: immutable, versioned notebook artifacts.

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

The package, one job per module:

``store``      the files: paths, index and journal records, version references
``save``       saving a version (crash-safe, audited)
``integrity``  verifying every file, index line and audit record
``diff``       readable diffs of two versions
``journal``    listing, showing, decisions/notes/actions, time to diagnose
``reproduce``  executing a saved notebook headless and reading its check
``verification`` the saved verification's digest and what a re-run changed in it
``notebook``   the notebook of a version (template, parameters, saved answer)
``memory``     the searchable index of past investigations, similar ones, patterns
``records``    what memory keeps of each investigation, kept current on every write

Durable-file primitives (locks, fsynced appends, torn-line repair, staged
files) are shared with the audit log in :mod:`workbench.governance.durable`.
"""
from __future__ import annotations

from .diff import diff_answers, diff_versions
from .integrity import LibraryReport, verify_library
from .journal import (DiagnoseTimes, InvestigationEntry, StatsReport, VersionDetail, add_note,
                      decide, investigation_stats, journal, list_investigations, list_versions,
                      note_shown, record_action, record_decision, show_version)
from .records import iter_memory_records, memory_record, rebuild_memory
from .reproduce import ReproductionReport, reproduce_version
from .save import canonical_answer, passport_dir_of, save_investigation
from .store import (AUDIT_FILE, DEFAULT_ROOT, ENV_ROOT, MERGE_WINDOW, PENDING_AUDIT, STATUSES,
                    TEST_SAVE_DELAY_ENV, JournalEntry, LibraryError, LibraryWarning, VersionInfo,
                    audit_path, library_root, resolve_version)

__all__ = ["AUDIT_FILE", "DEFAULT_ROOT", "DiagnoseTimes", "ENV_ROOT", "InvestigationEntry",
           "JournalEntry", "LibraryError", "LibraryReport", "LibraryWarning", "MERGE_WINDOW",
           "PENDING_AUDIT", "ReproductionReport", "STATUSES", "StatsReport",
           "TEST_SAVE_DELAY_ENV", "VersionDetail", "VersionInfo", "add_note", "audit_path",
           "canonical_answer", "decide", "diff_answers", "diff_versions", "investigation_stats",
           "iter_memory_records", "journal", "library_root", "list_investigations",
           "list_versions", "memory_record", "note_shown", "passport_dir_of", "rebuild_memory",
           "record_action", "record_decision", "reproduce_version", "resolve_version",
           "save_investigation", "show_version", "verify_library"]
