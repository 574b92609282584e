"""Durable-file primitives shared by the audit log and the investigations library.

Both keep append-only JSON Lines files that several processes write and that a
crash may cut short. The same four moves keep them whole:

* an exclusive advisory lock on a companion ``.lock`` file (``fcntl.flock``)
  serializes writers on one machine;
* a record is one line written with a single ``write`` on an ``O_APPEND``
  descriptor and fsynced before the call returns, so a crash leaves either the
  whole line or a torn last line, never a line in the middle (POSIX ``write``
  on a regular file; Pillai et al., "All File Systems Are Not Created Equal",
  OSDI 2014, on which orders of operations survive a crash);
* before appending, a torn last line (no newline and not JSON) is truncated, and
  a whole record that only lost its newline is ended, so the next record starts
  on a line of its own;
* a small file that is replaced whole (the audit head) is written beside its
  target, fsynced, and renamed over it: readers see the old or the new file.

Nothing here knows what the records mean; the callers decide whether a torn
line may be dropped (the audit log refuses when its head anchor says the line
was complete) and how to warn.
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["append_line", "end_on_complete_line", "file_lock", "fsync_dir", "is_torn",
           "last_line_start", "link_new", "now_iso", "replace_whole", "stage_readonly"]


def now_iso() -> str:
    """The current time, ISO 8601 UTC with microseconds and ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def file_lock(lock_path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created with its folder).

    Not POSIX (no ``fcntl``): a single writer is assumed and nothing is locked.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lf:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: single writer assumed
            yield
            return
        fcntl.flock(lf.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lf.fileno(), fcntl.LOCK_UN)


def append_line(path: str | Path, line: bytes) -> None:
    """Append ``line`` (ending in a newline) with one ``write`` and fsync it.

    Callers hold the file's lock and have called :func:`end_on_complete_line`.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:  # a regular file takes it in one write unless a signal cuts it short
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def is_torn(raw: bytes) -> bool:
    """Whether an unterminated last line is not a whole JSON value (a cut-short write)."""
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


def last_line_start(f, size: int) -> int:
    """Offset of the first byte after the last newline of a binary file (0 if none)."""
    pos, block = size, 4096
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def end_on_complete_line(path: str | Path, *, category: type[Warning] = UserWarning,
                         what: str = "line",
                         before_truncate: Callable[[int], None] | None = None,
                         shown: str | None = None, stacklevel: int = 4) -> None:
    """Before appending (under the lock): drop a last line cut short by a crash.

    A whole JSON record that only lacks its newline gets one. A torn one is
    truncated with a warning of ``category``; ``before_truncate`` is called
    first with the number of complete lines and may raise to refuse (the audit
    log does when its head anchor says the line was written whole). ``shown``
    names the file in the warning (default: the path as given).
    """
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        start = last_line_start(f, size)
        f.seek(start)
        tail = f.read()
        if not is_torn(tail):
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
        else:
            if before_truncate is not None:
                f.seek(0)
                before_truncate(f.read(start).count(b"\n"))
            f.truncate(start)
            warnings.warn(f"{shown or path}: removed an incomplete last {what} of {len(tail)} "
                          "bytes left by an interrupted write", category, stacklevel=stacklevel)
        f.flush()
        os.fsync(f.fileno())


def replace_whole(path: str | Path, text: str, *, tmp_suffix: str = ".tmp") -> None:
    """Replace a small file whole: a crash leaves the old content or the new, never half.

    The text goes to ``path`` + ``tmp_suffix`` first (a per-process suffix when
    several processes may write it), fsynced, then renamed over ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + tmp_suffix)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fsync_dir(folder: str | Path) -> None:
    """Fsync a folder so a new name in it survives a crash (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not POSIX
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def stage_readonly(path: str | Path, data: bytes) -> Path:
    """Write ``data`` beside ``path`` (``.<name>.tmp-<pid>``), fsynced and read-only.

    The first step of publishing a file that must appear complete or not at
    all; :func:`link_new` gives it its final name.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o444)
    return tmp


def link_new(tmp: str | Path, path: str | Path) -> None:
    """Give a staged file its final name; never replace an existing file.

    A hard link is atomic and fails when ``path`` exists (raising
    :class:`FileExistsError`); the staged name is then removed. Callers fsync
    the folder (:func:`fsync_dir`) so that the name survives a crash.
    """
    tmp, path = Path(tmp), Path(path)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # pragma: no cover - a file system without hard links
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.rename(tmp, path)
        return
    os.unlink(tmp)
