"""Timeline replay: what the workbench would have said at an earlier moment.

The honest way to show "what was knowable then" is to re-run the whole
investigation on the data as it was: events before the replay time, changes made
at or before it. :class:`ReplayEngine` does exactly that for a handful of steps
around the onset, each in its own temporary store, and caches every snapshot.
Nothing is interpolated between steps and no later data leaks into an earlier
answer (the detector, the localization and the ranking only see the cut data).

The cost is one ``investigate()`` per step (about two to five seconds on the demo
passport), so snapshots are computed off the event loop, nearest step first, and
the views say which steps are ready. The background precomputation
(:meth:`ReplayEngine.start`) starts when a session first uses the replay (not when
the server starts) and runs each step in a child process at a lower CPU priority:
a thread in the server's process would hold the interpreter lock for seconds at a
time and slow every click on the page while it works, and on a two-core machine
the page's work should win. If the child dies, the precomputation skips the step
rather than computing it in the server. A step asked for directly
(:meth:`ReplayEngine.snapshot`) waits for the child already on it, or computes
in-process when no child is.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

from ..store.sql import lit, q

if TYPE_CHECKING:  # data.py builds the engine; a snapshot is made with type(live)
    from .data import InvestigationData

__all__ = ["ReplayEngine", "default_steps", "step_label"]

#: Offsets from the onset of the live investigation, in hours, of the default steps.
STEP_OFFSETS_H = (-6, -1, 1, 2, 4, 12)
#: Niceness of the child process that precomputes replay steps (0 = as the server).
STEP_NICENESS = 10

log = logging.getLogger("workbench.ui")

_STEP_PROCS: ProcessPoolExecutor | None = None
_STEP_PROCS_LOCK = threading.Lock()


def _lower_priority() -> None:  # pragma: no cover - runs in the child process
    """Child setup: a lower CPU priority, and (Linux) end with the parent.

    Without the parent-death signal a server killed with SIGKILL (or a test that
    stops it) would leave the child finishing its step alone.
    """
    try:
        os.nice(STEP_NICENESS)
    except OSError:
        pass
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def _step_processes() -> ProcessPoolExecutor:
    """One child process for replay steps, started on first use ("spawn": the server
    has threads, and a forked copy of them is unsafe)."""
    global _STEP_PROCS
    with _STEP_PROCS_LOCK:
        if _STEP_PROCS is None:
            _STEP_PROCS = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority)
        return _STEP_PROCS


def _shutdown_step_processes() -> None:
    """Stop the child now (a step in progress is abandoned; the server is going away)."""
    global _STEP_PROCS
    with _STEP_PROCS_LOCK:
        procs, _STEP_PROCS = _STEP_PROCS, None
    if procs is not None:
        children = list((getattr(procs, "_processes", None) or {}).values())
        procs.shutdown(wait=False, cancel_futures=True)
        for child in children:
            if child.is_alive():
                child.terminate()


atexit.register(_shutdown_step_processes)

_CHILD_PASSPORTS: dict = {}


def _investigate_cut(pp, metric: str, t: pd.Timestamp, step_dir: Path):
    """``investigate()`` on the passport cut at ``t``; returns the Investigation."""
    import duckdb

    from ..investigation import investigate

    step_dir.mkdir(parents=True, exist_ok=True)
    events = step_dir / "events.parquet"
    tcol = pp.manifest.time_column
    cut = t.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S+00")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        sel = pp.events_sql()
        rename = f"* EXCLUDE (ts), ts AS {q(tcol)}"
        con.execute(f"COPY (SELECT {rename} FROM ({sel}) WHERE ts < TIMESTAMPTZ {lit(cut)}) "
                    f"TO {lit(events.as_posix())} (FORMAT parquet)")
    finally:
        con.close()
    changes = pp.changes
    if len(changes):
        changes = changes[pd.to_datetime(changes["ts"], utc=True) <= t]
    exps = pp.experiments
    if exps is not None and "ts" in exps.columns:
        exps = exps[pd.to_datetime(exps["ts"], utc=True) < t]
    cut_pp = dataclasses.replace(pp, event_files=(events,), changes=changes, experiments=exps)
    return investigate(cut_pp, metric=metric, db=step_dir / "store.duckdb", artifact_dir=None)


def _child_step(passport_dir: str, metric: str, t: pd.Timestamp, step_dir: str):
    """One replay step in the child process (the passport is loaded once per child)."""
    from ..passport import load_passport

    pp = _CHILD_PASSPORTS.get(passport_dir)
    if pp is None:
        pp = _CHILD_PASSPORTS[passport_dir] = load_passport(passport_dir)
    return _investigate_cut(pp, metric, t, Path(step_dir))


def default_steps(live: InvestigationData) -> list[pd.Timestamp]:
    """Replay times around the onset (or over the last two days if there is none)."""
    start, last = live.data_range()
    end = last + live.grain  # data is complete up to here
    onset = live.onset
    if onset is not None:
        steps = [onset + pd.Timedelta(hours=h) for h in STEP_OFFSETS_H]
    else:
        steps = [end - pd.Timedelta(hours=h) for h in (48, 36, 24, 12, 6)]
    lo = start + pd.Timedelta(days=8)  # a seasonal baseline needs a week of history
    return [t for t in steps if lo <= t < end]


def step_label(t: pd.Timestamp | None, onset: pd.Timestamp | None) -> str:
    """``2026-11-18 15:00 UTC (onset +1h)``; ``now`` for the live investigation."""
    if t is None:
        return "now (all data)"
    s = f"{t.tz_convert('UTC'):%Y-%m-%d %H:%M} UTC"
    if onset is not None:
        h = (t - onset) / pd.Timedelta(hours=1)
        s += f" (onset {h:+.0f}h)"
    return s


class ReplayEngine:
    """Snapshots of an investigation at earlier moments, computed and cached.

    Parameters
    ----------
    live:
        The live investigation's data (its passport directory is replayed).
    steps:
        Replay times (UTC); :func:`default_steps` when omitted.
    workdir:
        Where the truncated passports and stores go (a temporary folder by
        default, removed by :meth:`close`).
    """

    def __init__(self, live: InvestigationData, *, steps: list[pd.Timestamp] | None = None,
                 workdir: str | Path | None = None):
        self.live = live
        self.steps = list(steps) if steps is not None else default_steps(live)
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="workbench-replay-"))
        self._snapshots: dict[pd.Timestamp, InvestigationData] = {}
        self._errors: dict[pd.Timestamp, str] = {}
        self._locks: dict[pd.Timestamp, threading.Lock] = {t: threading.Lock()
                                                           for t in self.steps}
        self._passport = None
        self._plock = threading.Lock()
        self._closed = False
        self._started = False
        self._listeners: list[Callable[[pd.Timestamp], None]] = []
        if self._own_dir:
            atexit.register(shutil.rmtree, self.workdir, True)

    # ------------------------------------------------------------------ queries
    def ready(self, t: pd.Timestamp) -> bool:
        return t in self._snapshots

    def error(self, t: pd.Timestamp) -> str | None:
        return self._errors.get(t)

    def n_ready(self) -> int:
        return sum(t in self._snapshots for t in self.steps)

    def label(self, t: pd.Timestamp | None) -> str:
        return step_label(t, self.live.onset)

    # ------------------------------------------------------------------ compute
    def _load_passport(self):
        with self._plock:
            if self._passport is None:
                from ..passport import load_passport
                if not self.live.passport_dir or not Path(self.live.passport_dir).is_dir():
                    raise FileNotFoundError(
                        f"cannot replay: the passport directory {self.live.passport_dir!r} "
                        "is not available; serve or open the workbench with the passport")
                self._passport = load_passport(self.live.passport_dir)
            return self._passport

    def snapshot(self, t: pd.Timestamp, *, in_child: bool = False,
                 fallback: bool = True) -> InvestigationData:
        """The investigation as it would have run at ``t`` (blocking; cached).

        ``in_child`` computes it in the low-priority child process (the background
        precomputation); otherwise in this process, unless a child is on it already.
        Without ``fallback`` a step the child could not run (it died, or could not
        start) raises instead of being computed in this process: the background
        precomputation must never run whole investigations beside the server's
        requests (a step asked for by a user still is computed here).
        """
        if t in self._snapshots:
            return self._snapshots[t]
        lock = self._locks.setdefault(t, threading.Lock())
        with lock:
            if t in self._snapshots:
                return self._snapshots[t]
            try:
                snap = self._compute(t, in_child=in_child, fallback=fallback)
            except Exception as exc:
                self._errors[t] = f"{type(exc).__name__}: {exc}"
                raise
            self._snapshots[t] = snap
            return snap

    def _step_dir(self, t: pd.Timestamp) -> Path:
        return self.workdir / f"step-{t:%Y%m%dT%H%M}"

    def _compute(self, t: pd.Timestamp, *, in_child: bool = False,
                 fallback: bool = True) -> InvestigationData:
        step_dir = self._step_dir(t)
        inv = None
        if in_child:
            if not self.live.passport_dir or not Path(self.live.passport_dir).is_dir():
                self._load_passport()  # raises the readable error
            try:
                inv = _step_processes().submit(_child_step, str(self.live.passport_dir),
                                               self.live.metric, t, str(step_dir)).result()
            except Exception as exc:
                from concurrent.futures.process import BrokenProcessPool
                if not isinstance(exc, (BrokenProcessPool, RuntimeError)):
                    raise  # the step itself failed: the same would happen here
                if isinstance(exc, BrokenProcessPool):
                    _shutdown_step_processes()  # a fresh child next time
                if not fallback:
                    raise
                # No child to run it (shut down, or it died): compute it here.
                log.info("replay step %s in-process: %s", t, exc)
                shutil.rmtree(step_dir, ignore_errors=True)
                inv = None
        if inv is None:
            shutil.rmtree(step_dir, ignore_errors=True)
            inv = _investigate_cut(self._load_passport(), self.live.metric, t, step_dir)
        return type(self.live)(inv, db=str(step_dir / "store.duckdb"), as_of=t,
                               passport_dir=self.live.passport_dir)

    def precompute(self, *, first: pd.Timestamp | None = None,
                   on_step: Callable[[pd.Timestamp, InvestigationData | None], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> None:
        """Compute every step (blocking; run it on a worker thread).

        ``first`` is computed first, then the others in time order; ``on_step``
        is called after each one (with ``None`` when it failed).
        """
        order = list(self.steps)
        if first is not None and first in order:
            order.remove(first)
            order.insert(0, first)
        for t in order:
            if cancelled is not None and cancelled():
                return
            try:
                snap = self.snapshot(t)
            except Exception:
                snap = None
            if on_step is not None:
                on_step(t, snap)

    def listen(self, on_step: Callable[[pd.Timestamp], None]) -> None:
        """Call ``on_step(t)`` (on the worker) after each step computed from now on."""
        with self._plock:
            self._listeners.append(on_step)

    @property
    def started(self) -> bool:
        return self._started

    def start(self, pool, *, first: pd.Timestamp | None = None,
              on_step: Callable[[pd.Timestamp], None] | None = None) -> bool:
        """Queue every step on ``pool`` (an executor), nearest ``first``; once per engine.

        One work item per step, so at interpreter exit the pool finishes the step
        it is on and drops the rest. ``on_step`` is called (on the worker) after
        each step. Returns False if the steps were queued already.
        """
        with self._plock:
            if on_step is not None:
                self._listeners.append(on_step)
            if self._started:
                return False
            self._started = True
        order = list(self.steps)
        if first in order:
            order.remove(first)
            order.insert(0, first)

        def one(t):
            if self._closed:
                return
            try:
                self.snapshot(t, in_child=True, fallback=False)
            except Exception as exc:
                # Recorded in self.error(t) (the view says so); a step the user opens
                # is tried again then.
                log.info("replay step %s not precomputed: %s", t, exc)
            for cb in list(self._listeners):
                try:
                    cb(t)
                except Exception:
                    pass

        for t in order:
            pool.submit(one, t)
        return True

    def close(self) -> None:
        self._closed = True
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
