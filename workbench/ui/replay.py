"""Timeline replay: what the workbench would have said at an earlier moment.

The honest way to show "what was knowable then" is to re-run the whole
investigation on the data as it was: events before the replay time, changes made
at or before it. :class:`ReplayEngine` does exactly that for a handful of steps
around the onset, each in its own temporary store, and caches every snapshot.
Nothing is interpolated between steps and no later data leaks into an earlier
answer (the detector, the localization and the ranking only see the cut data).

The cost is one ``investigate()`` per step (about two to five seconds on the demo
passport), so snapshots are computed off the event loop, nearest step first, and
the views say which steps are ready.
"""
from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

import pandas as pd

from .data import InvestigationData

__all__ = ["ReplayEngine", "default_steps", "step_label"]

#: Offsets from the onset of the live investigation, in hours, of the default steps.
STEP_OFFSETS_H = (-6, -1, 1, 2, 4, 12)


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

    def snapshot(self, t: pd.Timestamp) -> InvestigationData:
        """The investigation as it would have run at ``t`` (blocking; cached)."""
        if t in self._snapshots:
            return self._snapshots[t]
        lock = self._locks.setdefault(t, threading.Lock())
        with lock:
            if t in self._snapshots:
                return self._snapshots[t]
            try:
                snap = self._compute(t)
            except Exception as exc:
                self._errors[t] = f"{type(exc).__name__}: {exc}"
                raise
            self._snapshots[t] = snap
            return snap

    def _compute(self, t: pd.Timestamp) -> InvestigationData:
        import duckdb

        from ..investigation import investigate

        pp = self._load_passport()
        step_dir = self.workdir / f"step-{t:%Y%m%dT%H%M}"
        step_dir.mkdir(parents=True, exist_ok=True)
        events = step_dir / "events.parquet"
        tcol = pp.manifest.time_column
        cut = t.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S+00")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone='UTC'")
            sel = pp.events_sql()
            rename = f'* EXCLUDE (ts), ts AS "{tcol}"'
            con.execute(f"COPY (SELECT {rename} FROM ({sel}) WHERE ts < TIMESTAMPTZ '{cut}') "
                        f"TO '{events.as_posix()}' (FORMAT parquet)")
        finally:
            con.close()
        changes = pp.changes
        if len(changes):
            changes = changes[pd.to_datetime(changes["ts"], utc=True) <= t]
        exps = pp.experiments
        if exps is not None and "ts" in exps.columns:
            exps = exps[pd.to_datetime(exps["ts"], utc=True) < t]
        cut_pp = dataclasses.replace(pp, event_files=(events,), changes=changes,
                                     experiments=exps)
        inv = investigate(cut_pp, metric=self.live.metric, db=step_dir / "store.duckdb",
                          artifact_dir=None)
        return InvestigationData(inv, db=str(step_dir / "store.duckdb"), as_of=t,
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
                self.snapshot(t)
            except Exception:
                pass  # recorded in self.error(t); the view says so
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
