"""Where micro-batches come from: the ``workbench.streams`` plug-in group.

A stream source hands ``watch`` batches as files (CSV or Parquet with the
columns of the passport's ``events``), each with a batch id, and is told after
each one whether it was stored (``ack``) or refused (``reject``). Storage is
exactly-once by batch id (:mod:`.ledger`), so a source only has to deliver at
least once: acknowledging after the commit is enough.

The built-in ``folder`` source needs no service: producers drop files into a
folder (write under a name starting with ``.`` and rename when complete, so a
half-written file is never read); a stored file moves to ``done/``, a refused
one to ``rejected/`` beside a ``.error.txt`` saying why. Brokers come as
plug-ins (``extensions/workbench-nats``: NATS JetStream).

The contract (checked by :func:`workbench.testing.check_stream_source`)::

    cls.from_url(url: str) -> source          # "folder:/path", "nats://host:port/subject?..."
    source.open(spool: Path) -> None          # spool: a folder the source may write files into
    source.poll(timeout: float) -> list[Batch]
    source.ack(batch) -> None
    source.reject(batch, reason: str) -> None
    source.close() -> None
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import UsageError
from .ledger import BATCH_ID

SUFFIXES = (".csv", ".parquet")


@dataclass
class Batch:
    """One delivered micro-batch: its id, its file and when it arrived (epoch seconds)."""

    batch_id: str
    path: Path
    arrived: float
    origin: str = ""
    token: Any = field(default=None, repr=False)
    problem: str | None = None  # set by the source when the delivery itself is unusable


class FolderSource:
    """Batches are files dropped into a folder; the batch id is the file's stem.

    Parameters
    ----------
    folder:
        The drop folder (created if missing). Only regular files directly in
        it whose names end in ``.csv`` or ``.parquet`` and do not start with
        ``.`` are read; symbolic links are refused (paths stay contained).
    """

    name = "folder"

    def __init__(self, folder: str | Path, *, interval: float = 0.05):
        self.folder = Path(folder)
        self.interval = interval

    @classmethod
    def from_url(cls, url: str) -> "FolderSource":
        path = url.split(":", 1)[1] if url.startswith("folder:") else url
        if path.startswith("//"):
            path = urlparse(url).path
        if not path:
            raise UsageError(f"--source {url!r}: expected folder:/path/to/drop-folder")
        return cls(path)

    def open(self, spool: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for sub in ("done", "rejected"):
            (self.folder / sub).mkdir(exist_ok=True)
        self.root = self.folder.resolve()

    def _ready(self) -> list[Batch]:
        out = []
        for p in self.folder.iterdir():
            if p.name.startswith(".") or p.suffix not in SUFFIXES or not p.is_file():
                continue
            if p.is_symlink() or p.resolve().parent != self.root:
                out.append(Batch(p.stem, p, p.lstat().st_mtime, str(p),
                                 problem=f"{p.name}: a symbolic link; drop the file itself"))
                continue
            out.append(Batch(p.stem, p, p.stat().st_mtime, str(p)))
        return sorted(out, key=lambda b: (b.arrived, b.path.name))

    def poll(self, timeout: float) -> list[Batch]:
        deadline = time.monotonic() + timeout
        while True:
            ready = self._ready()
            if ready or time.monotonic() >= deadline:
                return ready
            time.sleep(self.interval)  # a drop folder has no notification to wait on

    def _move(self, batch: Batch, sub: str) -> Path:
        dest = self.folder / sub / batch.path.name
        if dest.exists():  # the same name delivered again: keep both, the later numbered
            dest = dest.with_name(f"{batch.path.stem}.{time.time_ns()}{batch.path.suffix}")
        batch.path.replace(dest)
        return dest

    def ack(self, batch: Batch) -> None:
        self._move(batch, "done")

    def reject(self, batch: Batch, reason: str) -> None:
        dest = self._move(batch, "rejected")
        dest.with_name(dest.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")

    def close(self) -> None:
        return None


def validate_batch(batch: Batch) -> str | None:
    """Why a delivered batch cannot be read (bad id, a link), or None."""
    if batch.problem:
        return batch.problem
    if not BATCH_ID.fullmatch(batch.batch_id):
        return (f"batch id {batch.batch_id!r} is not valid: expected a letter or digit, then "
                "up to 127 letters, digits or . _ : -")
    return None


def open_source(url: str):
    """The source for ``url``: a plain path or ``folder:PATH`` is the drop folder;
    ``SCHEME://...`` is the ``workbench.streams`` plug-in named ``SCHEME``."""
    from ..registry import get_plugin

    if "://" in url:
        scheme = url.split("://", 1)[0]
        if scheme == "folder":
            return FolderSource.from_url(url)
        cls = get_plugin("workbench.streams", scheme)
        return cls.from_url(url)
    return FolderSource.from_url(url)
