"""``watch``: ingest micro-batches as they arrive, detect continuously, tell one story.

Per batch, in one DuckDB transaction (:func:`.ledger.ingest_batch`): the ledger
row, the rows (late ones set aside by the watermark), the per-grain aggregates,
detection over the touched grains (:mod:`.alerts`) and the alert state. Only
after the commit is the batch acknowledged to its source, so a crash at any
point loses nothing (the source delivers again) and duplicates nothing (the
ledger refuses the batch id). When an alert opens, the normal investigation runs
on the passport over the divergence's window, is saved in the library, and its
story is emitted once; an alert whose story a crash cut off is told on restart.

SIGINT and SIGTERM stop the loop between batches: the batch in hand finishes
(or, if the process dies, rolls back).
"""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import PassportError, UsageError, WorkbenchError
from ..passport import load_passport
from ..store import Store
from . import alerts as al
from .ledger import ingest_batch, init_stream_tables
from .model import latest_model, retrain
from .sources import Batch, open_source, validate_batch

Emit = Callable[[dict], None]


def open_store(db: Path, *, wait: float = 120.0) -> Store:
    """Open the store for writing, waiting while another process holds its lock.

    DuckDB lets one process write a file at a time; ``watch`` holds it only for
    the length of a batch, so ``retrain`` or ``investigate`` in between (or
    ``watch`` while they run) waits its turn instead of failing.
    """
    from ..errors import StoreError

    deadline = time.monotonic() + wait
    while True:
        try:
            return Store(db)
        except StoreError as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
        time.sleep(0.1)  # the other writer's transaction is short: try again


@dataclass(frozen=True)
class WatchConfig:
    """How ``watch`` behaves.

    Attributes
    ----------
    lateness:
        Allowed lateness of event time behind the largest seen (the watermark).
    detect:
        Thresholds of continuous detection.
    metrics:
        Metrics watched (default: every metric of the passport).
    library:
        Where each story's investigation is saved (None: not saved).
    verify:
        Verify causes with DoWhy in the story's investigation.
    max_batches, idle_exit:
        Stop after that many batches, or after that many seconds with none.
    poll:
        Seconds one poll of the source waits for a batch.
    """

    lateness: pd.Timedelta = pd.Timedelta(0)
    detect: al.DetectConfig = field(default_factory=al.DetectConfig)
    metrics: tuple[str, ...] | None = None
    library: str | None = "investigations"
    verify: bool = False
    max_batches: int | None = None
    idle_exit: float | None = None
    poll: float = 0.5
    fit_days: float = 28.0


class Watcher:
    """One passport watched from one source.

    Examples
    --------
    >>> w = Watcher("shop", "folder:/var/spool/shop", emit=print)   # doctest: +SKIP
    >>> w.run()                                                       # doctest: +SKIP
    """

    def __init__(self, passport: str | Path, source: str | Any, *, db: str | Path | None = None,
                 config: WatchConfig | None = None, emit: Emit | None = None):
        from ..investigation import default_db

        self.config = config or WatchConfig()
        self.pp = load_passport(passport)
        self.m = self.pp.manifest
        self.db = Path(db) if db is not None else default_db(self.pp.directory)
        self.source = open_source(source) if isinstance(source, str) else source
        self.emit = emit or (lambda _e: None)
        self.stopping = False
        self.batches = 0
        self.pending: list[tuple[dict, float]] = []
        self._st: Store | None = None
        self._opened = 0.0
        metrics = self.config.metrics or tuple(self.m.metrics)
        for name in metrics:
            self.m.metric(name)  # an unknown metric is a UsageError listing the valid ones
        self.metrics = tuple(metrics)

    # ------------------------------------------------------------------ setup
    def start(self) -> None:
        with open_store(self.db) as st:
            rep = st.ingest(self.pp)
            init_stream_tables(st, self.m)
            al.init_alerts(st)
            sp = st.passport(self.m.name)
            self.models = {}
            for name in self.metrics:
                model = latest_model(st.con, sp, name)
                if model is None:  # first watch: fit once (later fits: `workbench retrain`)
                    model = retrain(st, self.m.name, name, days=self.config.fit_days).model
                self.models[name] = model
            pending = al.pending_stories(st, self.m.name, self.m.grain_td)
        self.source.open(self.db.parent / "spool")
        self.emit({"event": "started", "passport": self.m.name, "db": str(self.db),
                   "rows": rep.total_rows, "metrics": list(self.metrics),
                   "models": {k: v.id for k, v in self.models.items()}})
        self.pending = [(a, time.time()) for a in pending]  # raised, story never told
        self._tell_pending()

    def _tell_pending(self) -> None:
        """Tell the stories still owed; one that fails now (a store lock, say) waits."""
        owed, self.pending = self.pending, []
        for alert, arrived in owed:
            try:
                self._story(alert, arrived)
            except WorkbenchError as exc:
                self.pending.append((alert, arrived))
                self.emit({"event": "story_deferred", "alert_id": alert["alert_id"],
                           "detail": f"story of alert {alert['alert_id']} deferred to the next "
                                     f"batch: {exc}"})

    #: Seconds the watcher keeps the store open across batches before letting others in.
    HOLD = 10.0

    def _store(self) -> Store:
        """The store, kept open across a burst of batches (no reopen and checkpoint per batch)."""
        if self._st is None:
            self._st = open_store(self.db)
            self._opened = time.monotonic()
            self._sp = self._st.passport(self.m.name)
        return self._st

    def _release(self) -> None:
        """Close the store: when idle, before a story, and every :attr:`HOLD` seconds, so that
        ``retrain`` and ``investigate`` get their turn."""
        if self._st is not None:
            self._st.close()
            self._st = None

    def _refresh_models(self, st: Store) -> None:
        """Pick up a newer fit written by ``workbench retrain`` (one small query)."""
        from .model import KIND

        rows = st.con.execute(
            "SELECT metric, max(version) FROM wb_meta.baselines WHERE passport = ? AND "
            "json_extract_string(params, '$.kind') = ? GROUP BY metric",
            [self.m.name, KIND]).fetchall()
        for name, version in rows:
            if name not in self.models or version <= self.models[name].version:
                continue
            newer = latest_model(st.con, self._sp, name)
            if newer is not None and newer.version > self.models[name].version:
                self.models[name] = newer
                self.emit({"event": "model", "metric": name, "id": newer.id,
                           "version": newer.version})

    # ------------------------------------------------------------------ one batch
    def _detect(self, st: Store):
        sp = self._sp
        grain = self.m.grain_td

        def within(buckets: tuple, top, before):
            if not buckets or top is None:
                return None, None
            closed_before = top.floor(grain)  # buckets ending at or before the newest event
            # grains touched, and those this batch closed (they may complete a run)
            scan = tuple(buckets) + ((before.floor(grain),) if before is not None else ())
            onsets, calm = al.find_onsets(st.con, sp, self.models, scan,
                                          closed_before, self.config.detect)
            return al.update_alerts(st, self.m.name, onsets, calm), closed_before

        return within

    def process(self, batch: Batch) -> dict:
        """Store one batch exactly once, detect, acknowledge; the event emitted."""
        problem = validate_batch(batch)
        if problem is not None:
            return self._reject(batch, problem)
        st = self._store()  # a lock held elsewhere: wait, never reject
        try:
            self._refresh_models(st)
            rec = ingest_batch(st, self.m, batch.path, batch.batch_id,
                               lateness=self.config.lateness, source=self.source.name,
                               within=self._detect(st))
        except (PassportError, UsageError) as exc:  # the batch itself is bad
            return self._reject(batch, str(exc))
        except BaseException:
            self._release()
            raise
        if time.monotonic() - self._opened > self.HOLD:
            self._release()
        self.source.ack(batch)
        self.batches += 1
        ev = {"event": "batch", **rec.to_dict(),
              "latency_s": round(time.time() - batch.arrived, 4)}
        self.emit(ev)
        if rec.late_rows:
            self.emit({"event": "late", "batch_id": rec.batch_id, "rows": rec.late_rows,
                       "watermark": ev["watermark"],
                       "detail": f"{rec.late_rows} rows older than the watermark kept apart in "
                                 "late_events, not merged"})
        alert, closed_before = rec.detected if rec.detected else (None, None)
        if alert is not None:
            alert["window_end"] = closed_before.isoformat()
            self.emit({"event": "alert", **alert,
                       "latency_s": round(time.time() - batch.arrived, 4)})
            self.pending.append((alert, batch.arrived))
        if self.pending:
            self._release()  # the investigation opens the store itself
            self._tell_pending()
        return ev

    def _reject(self, batch: Batch, reason: str) -> dict:
        self.source.reject(batch, reason)
        ev = {"event": "rejected", "batch_id": batch.batch_id,
              "detail": f"batch {batch.batch_id} ({batch.path.name}) rejected, nothing "
                        f"stored: {reason}"}
        self.emit(ev)
        return ev

    def _story(self, alert: dict, arrived: float) -> None:
        """Investigate the alert's window once, save it, record and emit its story."""
        from ..investigation import investigate

        end = alert.get("window_end")
        window = (alert["onset"], end) if end and end > alert["onset"] else None
        inv = investigate(self.pp.directory, metric=alert["metric"], window=window, db=self.db,
                          artifact_dir=self.config.library, verify=self.config.verify)
        story = inv.summary()
        with open_store(self.db) as st:
            al.record_story(st, self.m.name, alert["alert_id"], story, inv.artifact)
        top_slice = dict(inv.slices[0].filter) if inv.slices else None
        top_cause = inv.causes[0].change_id if inv.causes else None
        self.emit({"event": "story", "alert_id": alert["alert_id"], "metric": alert["metric"],
                   "onset": alert["onset"], "verdict": inv.verdict, "top_slice": top_slice,
                   "top_cause": top_cause, "artifact": inv.artifact, "story": story,
                   "latency_s": round(time.time() - arrived, 4)})

    # ------------------------------------------------------------------ the loop
    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> int:
        """Watch until stopped (signal, ``max_batches``, ``idle_exit``); batches processed."""
        import threading

        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, self.stop) for s in (signal.SIGINT, signal.SIGTERM)} \
            if main else {}
        try:
            self.start()
            idle_since = time.monotonic()
            while not self.stopping:
                got = self.source.poll(self.config.poll)
                for b in got:
                    if self.stopping:
                        break
                    self.process(b)
                    if self.config.max_batches and self.batches >= self.config.max_batches:
                        self.stopping = True
                if got:
                    idle_since = time.monotonic()
                    continue
                self._release()  # idle: let retrain or an analyst in
                if self.config.idle_exit is not None and \
                        time.monotonic() - idle_since >= self.config.idle_exit:
                    break
        finally:
            self._release()
            for s, h in old.items():
                signal.signal(s, h)
            self.source.close()
        self.emit({"event": "stopped", "batches": self.batches})
        return self.batches
