"""A tamper-evident, append-only audit log: who did what, and when.

Every action that changes what an investigation says is recorded: an
artifact saved, a hypothesis confirmed or refuted, a note added, an action
launched. The log is a JSON Lines file; each record carries

- ``seq``: its position, counting from 1;
- ``prev_hash``: the ``hash`` of the record before it (64 zeros for the first);
- ``hash``: the SHA-256 of the record's canonical JSON without ``hash``
  (keys sorted, no spaces, UTF-8).

This is a hash chain (Haber and Stornetta, "How to time-stamp a digital
document", J. Cryptology 1991; the same construction as Crosby and Wallach,
"Efficient data structures for tamper-evident logging", USENIX Security
2009, without their Merkle trees). Editing a record breaks its own hash;
rehashing it breaks the ``prev_hash`` of the next; deleting, inserting or
moving a record breaks ``seq`` and the chain at that point. Deleting records
*at the end* leaves a valid shorter chain, so every append also rewrites a
small **head anchor** (``<log>.head``: the last ``seq`` and ``hash``), and
:func:`verify_audit` checks the log against it.

Without more, the log is tamper-*evident*, not tamper-proof: someone who can
rewrite the whole file *and* its head can forge a consistent history (edit a
record, recompute every hash after it, rewrite the head). Two anchors close
that gap, both held where the library's editor cannot write:

- **a signed head** (``WORKBENCH_AUDIT_KEY_FILE``: a file holding a secret key,
  readable by the server, outside the library): the head carries an HMAC-SHA256
  (Bellare, Canetti and Krawczyk, "Keying hash functions for message
  authentication", CRYPTO 1996; RFC 2104) of its ``seq`` and ``hash``. A
  re-chained log needs a new head, and a new head needs the key;
- **an anchor file**, opened with ``O_APPEND`` on every append and given one
  line ``{log, seq, hash, mac}``. It keeps every head ever written, so it also
  catches a log cut back to an older, validly signed head (a rollback) or
  deleted. By default it is :func:`default_anchor`, one file per library in the
  user's state folder (``$XDG_STATE_HOME``, else ``~/.local/state``), so a new
  user is anchored with nothing to configure; ``WORKBENCH_AUDIT_ANCHOR`` names
  another path outside the library instead.

A configured key is always required; an anchor file named by
``WORKBENCH_AUDIT_ANCHOR`` must hold every log it is asked about; the default
anchor checks the logs it has seen and leaves others (written by another
account or machine, or before anchors) a bare chain. ``signed`` in the report
says the log matched a signed or anchored head. Copying the head hash somewhere
else (a ticket, a commit) and passing it as ``expected_head`` works too.

Appends take an exclusive lock (``fcntl.flock`` on ``<log>.lock``) so that
concurrent writers never interleave or fork the chain.

A record is written with one ``write`` of its whole line and fsynced before
the head anchor moves. A crash (``kill -9``, power loss) can therefore leave
at most a last line cut short, with no newline, past the head anchor: that is
not tampering. :func:`verify_audit` reports it as a warning and the next
append removes it (with an :class:`AuditWarning`). A cut-short line that the
head anchor says was complete is tampering, and is reported as such.

Examples
--------
>>> import tempfile, pathlib
>>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "audit.jsonl")
>>> rec = log.append("note.added", actor="ana", subject="inv-1", details={"text": "hi"})
>>> rec.seq, verify_audit(log.path).ok
(1, True)
"""
from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WorkbenchError
from .durable import append_line, end_on_complete_line, file_lock, now_iso, replace_whole
from .durable import is_torn as _is_torn

GENESIS = "0" * 64
FIELDS = ("seq", "ts", "actor", "action", "subject", "details", "prev_hash", "hash")


class AuditError(WorkbenchError):
    """The audit log cannot be written or read as asked."""


class AuditWarning(UserWarning):
    """The audit log showed the trace of an interrupted append, and it was removed."""


def default_actor() -> str:
    """Who is acting: ``$WORKBENCH_USER``, else the login name, else ``unknown``."""
    env = os.environ.get("WORKBENCH_USER")
    if env:
        return env
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def canonical_json(obj) -> str:
    """The one serialization that is hashed: sorted keys, no spaces, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def record_hash(record: dict) -> str:
    """SHA-256 of a record's canonical JSON, ``hash`` itself left out."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log."""

    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    details: dict
    prev_hash: str
    hash: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    def line(self) -> str:
        """A one-line rendering for people: ``#3 2026-11-18T15:02:11Z ana hypothesis.confirmed``."""
        extra = ", ".join(f"{k}={v}" for k, v in self.details.items()
                          if k in ("version", "hypothesis", "status", "action", "target",
                                   "message", "note", "text") and v not in (None, ""))
        return (f"#{self.seq:<4d} {self.ts} {self.actor:12s} {self.action:22s} {self.subject}"
                + (f"  ({extra})" if extra else ""))


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify_audit` found.

    Attributes
    ----------
    ok:
        True when every record's hash, sequence number and link is intact and
        the log ends where its head anchor says.
    records:
        Number of lines read.
    first_bad_line:
        1-based line number of the first record that fails (``None`` if ok);
        for a truncated log, the line where the missing records should be.
    reason:
        Why it fails, in one sentence.
    head_hash:
        Hash of the last record (give it to :func:`verify_audit` later as
        ``expected_head`` to detect a rewrite of the whole file).
    warnings:
        Traces of an interrupted append that are not tampering (an incomplete
        last line past the head anchor, which the next append removes).
    """

    path: str
    ok: bool
    records: int
    first_bad_line: int | None = None
    reason: str | None = None
    head_hash: str | None = None
    warnings: tuple[str, ...] = ()
    signed: bool = False

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["warnings"] = list(self.warnings)
        return d

    def summary(self) -> str:
        if self.ok:
            return (f"audit log {self.path}: OK, {self.records} records, head "
                    f"{(self.head_hash or GENESIS)[:16]}"
                    + "".join(f"; warning: {w}" for w in self.warnings))
        return f"audit log {self.path}: TAMPERED at line {self.first_bad_line}: {self.reason}"

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class AuditLog:
    """An append-only audit log file (see the module docstring).

    Parameters
    ----------
    path:
        The JSONL file; created (with its parent folder) on the first append.
    """

    path: Path
    _lock_path: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @property
    def head_path(self) -> Path:
        return self.path.with_name(self.path.name + ".head")

    def _locked(self):
        return file_lock(self._lock_path)

    def append(self, action: str, *, actor: str | None = None, subject: str = "",
               details: dict | None = None, ts: str | None = None) -> AuditRecord:
        """Append one record and move the head anchor to it.

        Parameters
        ----------
        action:
            What happened, dotted: ``artifact.saved``, ``hypothesis.confirmed``,
            ``hypothesis.refuted``, ``note.added``, ``action.launched``.
        actor:
            Who did it (default :func:`default_actor`).
        subject:
            What it was done to (an investigation id).
        details:
            JSON-serializable facts (version, hypothesis, note...).
        ts:
            ISO UTC time (default now).
        """
        if not action or not isinstance(action, str):
            raise AuditError("an audit record needs an action such as 'note.added'")
        details = dict(details or {})
        try:
            canonical_json(details)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit details for {action!r} are not plain JSON: {exc}") from None
        _check_anchor_config(self.path)
        with self._locked():
            _end_on_complete_line(self.path, self.head_path)
            last = _last_record(self.path)
            prev = last["hash"] if last else GENESIS
            seq = int(last["seq"]) + 1 if last else 1
            rec = {"seq": seq, "ts": ts or _now(), "actor": actor or default_actor(),
                   "action": action, "subject": str(subject), "details": details,
                   "prev_hash": prev}
            rec["hash"] = record_hash(rec)
            line = (canonical_json(rec) + "\n").encode("utf-8")
            anchor_fd = _open_anchor(self.path)
            try:
                append_line(self.path, line)
            except BaseException:
                os.close(anchor_fd)
                raise
            _anchor_append(anchor_fd, self.path, seq, rec["hash"])
            _write_head(self.head_path, seq, rec["hash"])
        return AuditRecord(**rec)

    def records(self) -> tuple[AuditRecord, ...]:
        return read_audit(self.path)

    def verify(self, *, expected_head: str | None = None) -> AuditReport:
        return verify_audit(self.path, expected_head=expected_head)


def append_audit(path: str | Path, action: str, **kw) -> AuditRecord:
    """Append to the audit log at ``path``; see :meth:`AuditLog.append`."""
    return AuditLog(Path(path)).append(action, **kw)


def read_audit(path: str | Path, *, subject: str | None = None, actor: str | None = None,
               action: str | None = None) -> tuple[AuditRecord, ...]:
    """The records of a log, optionally filtered (``action`` matches a prefix).

    Reading does not verify; use :func:`verify_audit` for that. A line that
    is not a record raises :class:`AuditError` naming it, except a last line
    cut short by a crash (no newline, not JSON), which is no record yet.
    """
    path = Path(path)
    if not path.is_file():
        return ()
    out = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n") and _is_torn(line.encode("utf-8", "surrogateescape")):
                break
            try:
                d = json.loads(line)
                rec = AuditRecord(**{k: d[k] for k in FIELDS})
            except (ValueError, KeyError, TypeError):
                raise AuditError(f"{path}, line {n}: not an audit record; run "
                                 f"`workbench audit verify --log {path}`") from None
            if subject is not None and rec.subject != subject:
                continue
            if actor is not None and rec.actor != actor:
                continue
            if action is not None and not rec.action.startswith(action):
                continue
            out.append(rec)
    return tuple(out)


def verify_audit(path: str | Path, *, expected_head: str | None = None) -> AuditReport:
    """Check the whole chain of an audit log and locate the first bad record.

    Parameters
    ----------
    path:
        The JSONL log.
    expected_head:
        A head hash recorded elsewhere earlier (:attr:`AuditReport.head_hash`).
        The log must still contain it at the same place, which detects a
        rewrite of the whole file together with its head anchor.

    Returns
    -------
    AuditReport
        ``ok`` and, when not, the line and the reason.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> for i in range(3):
    ...     _ = append_audit(p, "note.added", actor="bo", subject="inv-1")
    >>> lines = p.read_text().splitlines()
    >>> _ = p.write_text("\\n".join([lines[0], lines[2], lines[1]]) + "\\n")
    >>> r = verify_audit(p); r.ok, r.first_bad_line
    (False, 2)
    """
    path = Path(path)
    spath = str(path)
    _check_anchor_config(path)
    head = _read_head(path.with_name(path.name + ".head"))
    if not path.exists():
        if head and head.get("seq"):
            return AuditReport(spath, False, 0, 1, f"the log is missing but its head anchor "
                                                   f"says it held {head['seq']} records")
        seen = _last_anchor(anchor_path(path), path)
        if seen and int(seen.get("seq", 0)):
            return AuditReport(spath, False, 0, 1, f"the log is missing but the anchor file "
                               f"{anchor_path(path)} saw record {seen['seq']}")
        return AuditReport(spath, True, 0, head_hash=GENESIS)
    prev, n, seen_expected = GENESIS, 0, expected_head is None
    notes: tuple[str, ...] = ()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            bad = _check_line(raw, n, prev)
            if bad and not raw.endswith(b"\n") and _is_torn(raw):
                # the last line, cut short: an append interrupted before the head moved,
                # unless the head anchor says this record was complete
                if head is not None and int(head.get("seq", -1)) >= n:
                    return AuditReport(spath, False, n - 1, n,
                                       f"line {n} is incomplete but the head anchor says record "
                                       f"{head.get('seq')} was written whole (it was cut short)")
                notes = (f"line {n} is an incomplete record left by an interrupted append; "
                         "the next append removes it",)
                n -= 1
                break
            if bad:
                return AuditReport(spath, False, n - 1, n, bad)
            d = json.loads(raw)
            prev = d["hash"]
            if expected_head is not None and prev == expected_head:
                seen_expected = True
    if head is None:
        if n:
            return AuditReport(spath, False, n, n, "the head anchor "
                               f"{path.name}.head is missing: records at the end may have "
                               "been deleted")
    else:
        hseq, hhash = int(head.get("seq", -1)), head.get("hash")
        if hseq > n:
            return AuditReport(spath, False, n, n + 1,
                               f"the log ends after {n} records but its head anchor says "
                               f"{hseq}: records at the end were deleted")
        if hseq >= 1 and _hash_at(path, hseq) != hhash:
            return AuditReport(spath, False, n, hseq,
                               f"record {hseq} does not match the head anchor: it was "
                               "edited and rehashed, or records were rewritten")
    if not seen_expected:
        return AuditReport(spath, False, n, None,
                           f"the expected head {expected_head[:16]}... is not in the log: "
                           "the history was rewritten")
    unanchored = _anchor_problem(path, head, n)
    if unanchored:
        return AuditReport(spath, False, n, unanchored[0], unanchored[1])
    return AuditReport(spath, True, n, head_hash=prev, warnings=notes,
                       signed=bool(n) and (audit_key() is not None or _anchored(path)))


# --------------------------------------------------------------------------- helpers
def _end_on_complete_line(path: Path, head_path: Path) -> None:
    """Before appending (under the lock): drop a last line cut short by a crash.

    Only a line past the head anchor is dropped; one the head says was written
    whole was cut short by someone else, and appending stops there. A whole
    record that only lacks its newline gets one.
    """
    def refuse_if_anchored(complete: int) -> None:
        head = _read_head(head_path)
        if head is not None and int(head.get("seq", -1)) > complete:
            raise AuditError(f"{path}: the last record is damaged; run "
                             f"`workbench audit verify --log {path}` before appending")

    end_on_complete_line(path, category=AuditWarning, what="record",
                         before_truncate=refuse_if_anchored, stacklevel=5)


def _check_line(raw: bytes, n: int, prev: str) -> str | None:
    """Why line ``n`` is bad given the previous hash, or None."""
    if not raw.strip():
        return f"line {n} is empty (a record was blanked out)"
    try:
        d = json.loads(raw)
    except ValueError:
        return f"line {n} is not valid JSON (it was edited)"
    if not isinstance(d, dict):
        return f"line {n} is not a JSON object (it was edited)"
    missing = [k for k in FIELDS if k not in d]
    extra = [k for k in d if k not in FIELDS]
    if missing or extra:
        what = (f"missing {', '.join(missing)}" if missing else "") + \
               ("; " if missing and extra else "") + \
               (f"unexpected {', '.join(extra)}" if extra else "")
        return f"line {n}: {what} (it was edited)"
    try:
        h = record_hash(d)
    except (TypeError, ValueError):
        return f"line {n}: the record cannot be hashed (it was edited)"
    if h != d["hash"]:
        return f"line {n}: the record does not match its hash (it was edited)"
    if d["seq"] != n:
        return (f"line {n}: holds record #{d['seq']}, expected #{n} (a record before it was "
                "deleted or inserted, or records were reordered)")
    if d["prev_hash"] != prev:
        return (f"line {n}: prev_hash does not match the hash of line {n - 1} (the record "
                "before it was edited and rehashed, replaced, or the records were reordered)")
    return None


def _hash_at(path: Path, seq: int) -> str | None:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == seq:
                try:
                    return json.loads(raw).get("hash")
                except ValueError:
                    return None
    return None


def _last_record(path: Path) -> dict | None:
    """The last line of the log, read from the end (logs grow; appends stay O(1))."""
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return None
        block, data = 4096, b""
        pos = size
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
            if data.rstrip(b"\n").count(b"\n") >= 1:
                break
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        d = json.loads(last)
        _ = d["hash"], int(d["seq"])
        return d
    except (ValueError, KeyError, TypeError):
        raise AuditError(f"{path}: the last record is damaged; run "
                         f"`workbench audit verify --log {path}` before appending") from None


def _write_head(path: Path, seq: int, h: str) -> None:
    """Replace the head anchor whole: a crash leaves the old head or the new, never half."""
    replace_whole(path, json.dumps(_head_body(seq, h)) + "\n")


def _read_head(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {"seq": -1}
    except ValueError:
        return {"seq": -1, "hash": None}


_now = now_iso


# --------------------------------------------------------------------------- anchors
def audit_key() -> bytes | None:
    """The HMAC key of the head signature, from the file ``$WORKBENCH_AUDIT_KEY_FILE``.

    ``None`` when the variable is unset. The file holds at least 32 bytes of secret
    (surrounding white space is ignored); keep it where the server can read it and the
    people who edit the library cannot.
    """
    name = os.environ.get("WORKBENCH_AUDIT_KEY_FILE")
    if not name:
        return None
    try:
        key = Path(name).read_bytes().strip()
    except OSError as exc:
        raise AuditError(f"WORKBENCH_AUDIT_KEY_FILE={name}: cannot read the audit key "
                         f"({exc.strerror})") from None
    if len(key) < 32:
        raise AuditError(f"WORKBENCH_AUDIT_KEY_FILE={name}: the key has {len(key)} bytes; "
                         "expected at least 32 (e.g. `openssl rand -hex 32 > FILE`)")
    return key


def anchor_path(log: Path | None = None) -> Path | None:
    """The append-only anchor file of ``log``.

    ``$WORKBENCH_AUDIT_ANCHOR`` when set; otherwise, given a log, its library's default
    anchor :func:`default_anchor` (outside the library, in the user's state folder);
    ``None`` when neither applies.
    """
    name = os.environ.get("WORKBENCH_AUDIT_ANCHOR")
    if name:
        return Path(name)
    return default_anchor(log) if log is not None else None


def _log_id(log: Path) -> str:
    """The identity of a log in an anchor file: its folder resolved, its own name kept (a
    log replaced by a symlink to a re-chained copy keeps the identity of the original)."""
    return str(Path(log).absolute().parent.resolve() / Path(log).name)


def state_home() -> Path:
    """``$XDG_STATE_HOME`` when it is an absolute path, else ``~/.local/state`` (the XDG
    Base Directory specification)."""
    name = os.environ.get("XDG_STATE_HOME", "")
    if name and os.path.isabs(name):
        return Path(name)
    return Path.home() / ".local" / "state"


def default_anchor(log: Path) -> Path:
    """``<state home>/workbench/anchors/<sha256 of the library's resolved path>.log``.

    The library is the folder of the log. It is the anchor used when
    ``WORKBENCH_AUDIT_ANCHOR`` is not set, so that every library written by this account
    is anchored with no configuration. It vouches only for logs it has seen: a log with
    no entry in it (written by another account, on another machine, or before anchors
    existed) verifies as a bare chain, ``signed`` false.
    """
    lib = str(Path(log).absolute().parent.resolve())
    return (state_home() / "workbench" / "anchors"
            / f"{hashlib.sha256(lib.encode('utf-8')).hexdigest()}.log")


def _anchor_label(anchor: Path) -> str:
    return (f"WORKBENCH_AUDIT_ANCHOR={anchor}" if os.environ.get("WORKBENCH_AUDIT_ANCHOR")
            else f"the default audit anchor {anchor}")


def head_mac(key: bytes, seq: int, h: str) -> str:
    """HMAC-SHA256 of a head (``seq`` and record hash) under ``key``, as hex."""
    return hmac.new(key, canonical_json({"seq": int(seq), "hash": h}).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def _head_body(seq: int, h: str) -> dict:
    body: dict = {"seq": seq, "hash": h}
    key = audit_key()
    if key is not None:
        body["mac"] = head_mac(key, seq, h)
    return body


def _check_anchor_config(log: Path) -> None:
    """A configured key that cannot be read, or an anchor file beside the log, is an error
    before anything is written or trusted."""
    audit_key()
    _check_outside(anchor_path(log), log)


def _check_outside(anchor: Path, log: Path) -> None:
    if anchor.resolve().is_relative_to(log.resolve().parent):
        raise AuditError(f"{_anchor_label(anchor)}: the anchor file sits in the folder of "
                         "the log it anchors; expected a place the library's editors cannot "
                         "write (set WORKBENCH_AUDIT_ANCHOR to a path outside the library)")


def _open_anchor(log: Path) -> int:
    """Open the anchor file of ``log`` for appending (``O_APPEND``: earlier lines are never
    rewritten), before the log changes, so that an anchor that cannot be written stops
    the append with nothing written."""
    anchor = anchor_path(log)
    _check_outside(anchor, log)
    try:
        anchor.parent.mkdir(parents=True, exist_ok=True)
        return os.open(anchor, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AuditError(f"{_anchor_label(anchor)}: cannot write the audit anchor "
                         f"({exc.strerror}); set WORKBENCH_AUDIT_ANCHOR (or XDG_STATE_HOME) "
                         "to a writable place outside the library") from None


def _anchor_append(fd: int, log: Path, seq: int, h: str) -> None:
    """Add this head to the open anchor file and close it."""
    try:
        os.write(fd, (canonical_json({"log": _log_id(log), **_head_body(seq, h)})
                      + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_anchor(anchor: Path, log: Path) -> dict | None:
    """The last line of the anchor file about ``log``."""
    if not anchor.is_file():
        return None
    me, last = _log_id(log), None
    try:
        f = open(anchor, "rb")
    except OSError as exc:
        raise AuditError(f"{_anchor_label(anchor)}: cannot read the audit anchor "
                         f"({exc.strerror})") from None
    with f:
        for raw in f:
            try:
                d = json.loads(raw)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("log") == me:
                last = d
    return last


def _anchor_problem(path: Path, head: dict | None, n: int) -> tuple[int, str] | None:
    """``(line, reason)`` when the key or the anchor file does not vouch for the log.

    An anchor named by ``WORKBENCH_AUDIT_ANCHOR`` must hold the log; the default anchor
    checks only the logs it has seen (see :func:`default_anchor`).
    """
    key = audit_key()
    if key is not None and n:
        mac = (head or {}).get("mac")
        want = head_mac(key, int((head or {}).get("seq", -1)), str((head or {}).get("hash")))
        if not isinstance(mac, str) or not hmac.compare_digest(mac, want):
            return n, ("the head anchor is not signed by the configured audit key "
                       "(WORKBENCH_AUDIT_KEY_FILE): the log and its head were rewritten by "
                       "someone without the key, or written before the key was set")
    anchor = anchor_path(path)
    _check_outside(anchor, path)
    last = _last_anchor(anchor, path)
    if last is None:
        if n and os.environ.get("WORKBENCH_AUDIT_ANCHOR"):
            return n, (f"the anchor file {anchor} has no entry for this log: its records "
                       "were not written through the workbench")
        return None
    seq = int(last.get("seq", 0))
    if seq > n:
        return n + 1, (f"the log ends after {n} records but the anchor file {anchor} "
                       f"saw record {seq}: records at the end were deleted")
    if _hash_at(path, seq) != last.get("hash"):
        return seq, (f"record {seq} differs from the hash the anchor file {anchor} "
                     "recorded when it was written: the log was rewritten")
    # one record past the anchor with the head not moved is an append cut short
    # between its write and its anchor line; more, or a head past it, is not
    if n > seq and (n > seq + 1 or int((head or {}).get("seq", 0)) > seq):
        return seq + 1, (f"records after #{seq} are not in the anchor file {anchor}: "
                         "they were not written through the workbench")
    return None


def _anchored(path: Path) -> bool:
    """Whether the anchor file of ``path`` holds an entry for it."""
    return _last_anchor(anchor_path(path), path) is not None
