"""The workbench's state: one ``param.Parameterized`` holding every choice and result.

It holds no widgets (architecture.md, "UI is thin"): views are built from it with
``from_param`` and ``pn.bind``, and it can be driven and tested with no browser.
Every user action is a method here (drill down, next hypothesis, confirm, play),
so a keyboard shortcut, a button and a test all call the same thing.

Heavy work (the investigation, a slice's timeline on a large store, a replay
step) runs off the event loop in a served session: :meth:`WorkbenchState._spawn`
hands it to a thread pool from an ``async`` callback and applies the result back
on the loop, so the page stays responsive and shows a loading indicator meanwhile.
A result that arrives after a newer request of the same kind is dropped. In a
notebook, a script or a unit test the same work runs inline (a notebook's comm
only pushes updates made while it handles the message that caused them); the
long part of a replay, computing its steps, still runs on the replay worker.

Errors become a one-line message in ``error`` (shown in an alert); the
traceback goes to the server log, never to the page.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd
import param

from ..governance.guard import Guarded
from .data import WIDGET_VALUES, InvestigationData, slice_label
from .narrative import ROLES
from ._session import _held, _serving, friendly_error
from .verify import VerifyAction

__all__ = ["WorkbenchState", "friendly_error"]

log = logging.getLogger("workbench.ui")


def _store_retry(work: Callable[[], Any], wait_s: float = 30.0):
    """``work()``, tried again while the store cannot be opened for writing *in this process*.

    DuckDB refuses a read-write connection to a file while a read-only one is open
    in the same process ("a different configuration than existing connections"),
    and a served process opens short read-only connections for its sessions (a slice
    click, the deferred part of a page). An investigation started from the page
    (another metric, a person's hypothesis) waits for them instead of failing on
    that race; any other error, and this one after ``wait_s``, is raised as before.
    """
    from ..errors import StoreError

    deadline, pause = time.monotonic() + wait_s, 0.05
    while True:
        try:
            return work()
        except StoreError as exc:
            if "different configuration" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)

#: Work that would block the event loop runs here (shared by every session).
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workbench-ui")
#: Replay steps are long; they get their own worker so a slice click never waits behind one.
_REPLAY_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-replay")
#: Timelines of the listed slices, computed ahead of a click (one at a time).
_PREFETCH_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-prefetch")

#: How far the investigate() progress messages have got, as a percentage.
_PROGRESS_STEPS = (("passport", 10), ("store", 25), ("auditing", 35), ("detecting", 50),
                   ("localizing", 65), ("ranking", 80), ("verdict", 95))


class WorkbenchState(Guarded, VerifyAction, param.Parameterized):
    """What the workbench shows and every action on it.

    Build it from an investigation (``WorkbenchState.from_investigation(inv)``) or
    from a passport (``WorkbenchState(passport="sample_data/demo",
    metric="conversion_rate").load()``).
    """

    # ----------------------------------------------------------------- inputs
    passport = param.String(default=None, allow_None=True, doc="Passport directory.")
    db = param.String(default=None, allow_None=True,
                      doc="DuckDB store (default: the passport's own store).")
    metric = param.Selector(default=None, objects=[], allow_None=True,
                            doc="The metric under investigation.")
    background = param.Boolean(default=True, doc=(
        "Run heavy work on a worker thread in a served session; False runs it inline "
        "everywhere (notebooks and scripts always run it inline)."))

    # ----------------------------------------------------------------- results
    live = param.ClassSelector(class_=InvestigationData, default=None, allow_None=True,
                               doc="The live investigation (all data).")
    data = param.ClassSelector(class_=InvestigationData, default=None, allow_None=True,
                               doc="What the views show: the live investigation or a replay "
                                   "snapshot.")

    # ----------------------------------------------------------------- slices
    slice_filter = param.Dict(default={}, doc="The slice the timeline shows ({} = everything).")
    drill_stack = param.List(default=[], doc="Filters drilled through, for drilling back up.")
    timeline = param.DataFrame(default=None, allow_None=True,
                               doc="The shown slice's metric with its baseline band.")
    ranked = param.DataFrame(default=None, allow_None=True,
                             doc="Slices one level below the shown one, by share of the "
                                 "divergence.")
    heat_x = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap columns",
                            doc="First dimension of the heatmap.")
    heat_y = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap rows",
                            doc="Second dimension of the heatmap.")
    compare_dimension = param.Selector(default=None, objects=[], allow_None=True,
                                       label="Compare by",
                                       doc="Dimension whose two values are compared side by side.")
    compare_a = param.Selector(default=None, objects=[], allow_None=True, label="A",
                               doc="First value compared.")
    compare_b = param.Selector(default=None, objects=[], allow_None=True, label="B",
                               doc="Second value compared.")
    compare_frames = param.Dict(default={}, doc="Timelines of the two compared configurations.")
    compare_wanted = param.Boolean(default=False, doc=(
        "Compute the comparison (two slice queries) when the shown slice changes; views "
        "set it while the comparison is on screen."))
    mix_dimension = param.Selector(default=None, objects=[], allow_None=True,
                                   label="Rate vs mix by",
                                   doc="Dimension of the rate-versus-mix split.")

    # ----------------------------------------------------------------- hypotheses
    hypothesis = param.Integer(default=0, bounds=(0, None),
                               doc="Index of the selected candidate cause (j/k).")
    decisions = param.List(default=[], doc="Confirm/refute decisions, oldest first.")
    experiment = param.Dict(default=None, allow_None=True, doc=(
        "The test launched from this session, as its hourly updates arrive (ui.loop): "
        "change_id, status, hour, hypotheses (every ranked cause's confidence now) and arms "
        "(ts, arm, value: the metric per arm per hour); None before any test."))
    counterfactual = param.DataFrame(default=None, allow_None=True,
                                     doc="Timeline of the selected cause's scope, from the "
                                         "shown moment's data (None while computing).")
    counterfactual_busy = param.Boolean(default=False,
                                        doc="The selected cause's timeline is loading.")
    verifications = param.Dict(default={}, doc=(
        "DoWhy verifications asked for with Verify, by change id (CauseVerification)."))
    verifying = param.String(default="", doc="The change being verified ('' = none).")

    # ----------------------------------------------------------------- replay
    replay_steps = param.List(default=[], doc="Replay times (UTC).")
    replay_index = param.Integer(default=-1, bounds=(-1, None),
                                 doc="Shown replay step; -1 is now (all data).")
    replay_ready = param.Integer(default=0, doc="Replay steps computed so far.")
    playing = param.Boolean(default=False, doc="Replay advancing on its own.")

    # ----------------------------------------------------------------- reading
    role = param.Selector(default="engineer", objects=list(ROLES), doc="Who the story is for.")
    query = param.String(default="", doc="Search over changes, slices and past investigations.")
    library = param.String(default=None, allow_None=True, doc=(
        "Library of investigations where decisions are recorded and past investigations are "
        "searched (default $WORKBENCH_INVESTIGATIONS or ./investigations)."))
    identity = param.Parameter(default=None, doc=(
        "Who is asking (governance.policy.Identity; the OS user unless served)."))

    # ----------------------------------------------------------------- status
    busy = param.Boolean(default=False, doc="The investigation is running.")
    timeline_busy = param.Boolean(default=False, doc="The shown slice's timeline is loading.")
    replay_busy = param.Boolean(default=False, doc="A replay step is being computed.")
    progress = param.Integer(default=0, bounds=(0, 100), doc="Progress of the investigation.")
    message = param.String(default="", doc="What is happening (status line).")
    error = param.String(default="", doc="The last error, for the alert ('' = none).")

    _in_session = staticmethod(lambda: _serving())  # for VerifyAction (ui/verify.py)

    def __init__(self, **params):
        super().__init__(**Guarded.with_identity(params))
        self._gen: dict[str, int] = {}
        self._replay = None
        self._lock = threading.Lock()
        #: ``fn(passport, db, metric, progress) -> InvestigationData``; the served app
        #: sets its shared cache here so sessions do not investigate twice.
        self.investigator: Callable | None = None

    # ================================================================= building
    @classmethod
    def from_investigation(cls, inv, *, db: str | None = None, passport: str | None = None,
                           **params) -> "WorkbenchState":
        """State over an investigation already run (the notebook path: no waiting)."""
        return cls.from_data(InvestigationData(inv, db=db, passport_dir=passport), **params)

    @classmethod
    def from_data(cls, live: InvestigationData, **params) -> "WorkbenchState":
        """State over an :class:`InvestigationData` (shared caches and replay snapshots)."""
        state = cls(passport=live.passport_dir, db=live.db, **params)
        state._set_metrics(live, live.metric)
        state._set_live(live)
        return state

    def load(self, investigate_fn: Callable | None = None) -> "WorkbenchState":
        """Run the investigation of ``metric`` (off the loop when one is running)."""
        if not self.passport and not self.db:
            self.error = "Nothing to investigate: give a passport directory or a store (--db)."
            return self
        self.busy, self.progress, self.error = True, 2, ""
        self.message = f"Investigating {self.metric or 'the metric'}…"
        fn = investigate_fn or self.investigator or self._investigate

        def done(live):
            self._set_metrics(live, live.metric)
            self._set_live(live)
            self.busy, self.progress = False, 100
            self.message = (f"{live.metric}: verdict {live.inv.verdict}"
                            + (f", top cause {live.causes[0]['change_id']}" if live.causes else ""))

        def failed(exc):
            self.busy, self.progress = False, 0
            self.message = ""

        self._spawn("load", lambda: fn(self.passport, self.db, self.metric, self._on_progress),
                    done, failed=failed)
        return self

    def _on_progress(self, msg: str) -> None:
        """investigate()'s progress callback (called on the worker thread)."""
        for word, pct in _PROGRESS_STEPS:
            if msg.startswith(word) or f" {word}" in msg[:20]:
                self.progress = max(self.progress, pct)
        self.message = msg

    @staticmethod
    def _investigate(passport, db, metric, progress, hypotheses=None) -> InvestigationData:
        from ..investigation import investigate
        from ..store import Store

        if passport is None:  # a store alone: replay and re-run from the passport it names
            with Store(db, read_only=True) as st:
                sp = st.passport()
            passport = sp.directory
            if metric is None:
                metric = next(iter(sp.manifest.metrics))
        if metric is None:
            from ..passport import load_passport
            metric = next(iter(load_passport(passport).manifest.metrics))
        # The page's first paint does not wait on DoWhy: causes are verified on demand by the
        # Verify action (ui/verify.py), cached per investigation version across sessions.
        inv = _store_retry(lambda: investigate(
            passport, metric=metric, db=db, artifact_dir=None, progress=progress,
            verify=False, hypotheses=hypotheses))
        return InvestigationData(inv, passport_dir=str(passport))

    def _set_metrics(self, live: InvestigationData, metric: str) -> None:
        names = list(live.sp.manifest.metrics)
        self.param.metric.objects = names
        with param.discard_events(self):
            self.metric = metric

    def _set_live(self, live: InvestigationData) -> None:
        live = self.released(live)
        dims = list(live.dimensions)
        top = live.top_slice
        keys = list(top)
        heat_x = keys[0] if keys else dims[0]
        heat_y = next((k for k in keys[1:] if k != heat_x),
                      next(d for d in dims if d != heat_x))
        cdim = next((k for k in reversed(keys)
                     if len(live.values(k, {j: v for j, v in top.items() if j != k})) > 1),
                    dims[0])
        # Choices first, values after and unbatched: a Select widget linked to a
        # Selector resets the value when its options change; our values must win.
        for p in ("heat_x", "heat_y", "compare_dimension", "mix_dimension"):
            self.param[p].objects = dims
        self.param.update(heat_x=heat_x, heat_y=heat_y, mix_dimension=heat_x)
        with param.parameterized.batch_call_watchers(self):
            self._replay_stop()
            self.replay_index = -1
            self.playing = False
            self.replay_ready = 0
            self.live = live
            # The whole metric's timeline is the investigation's own detection: instant,
            # so the first render already has data.
            self.timeline = live.timeline({})
            self.ranked = live.ranked_slices({})  # cheap too (the leaves are small)
            self.data = live
            self.hypothesis = 0
            self.drill_stack = []
            self.slice_filter = {}
            try:
                self._replay = live.replay()
                self.replay_steps = list(self._replay.steps)
                self._replay.listen(_ready_listener(self, self._replay))
                self.replay_ready = self._replay.n_ready()
            except Exception as exc:  # no passport to replay: the rest still works
                log.info("replay unavailable: %s", exc)
                self._replay, self.replay_steps = None, []
        self.compare_dimension = cdim
        self._set_compare_values()

    # ================================================================= background work
    def _spawn(self, label: str, work: Callable[[], Any], apply: Callable[[Any], None], *,
               failed: Callable[[BaseException], None] | None = None, pool=None) -> None:
        """Run ``work`` off the event loop and ``apply`` its result on it.

        Only the newest request per ``label`` is applied. Exceptions go to the
        alert (``error``) with the traceback in the log.
        """
        with self._lock:
            gen = self._gen[label] = self._gen.get(label, 0) + 1

        def finish(result=None, exc=None):
            if self._gen.get(label) != gen:
                return  # superseded by a newer request
            if exc is not None:
                log.error("workbench: %s failed", label, exc_info=exc)
                self.error = friendly_error(exc)
                if failed is not None:
                    failed(exc)
                return
            try:
                with _held():
                    apply(result)
            except Exception as exc2:  # a bug in applying: still no traceback on the page
                log.error("workbench: applying %s failed", label, exc_info=exc2)
                self.error = friendly_error(exc2)

        if not (self.background and _serving()):
            try:
                result = work()
            except Exception as exc:
                finish(exc=exc)
                return
            finish(result)
            return

        async def task():
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(pool or _POOL, work)
            except Exception as exc:
                finish(exc=exc)
                return
            finish(result)

        import panel as pn
        pn.state.execute(task)

    # ================================================================= derived data
    @param.depends("data", "slice_filter", watch=True)
    def _refresh_timeline(self) -> None:
        data, filt = self.data, dict(self.slice_filter)
        if data is None:
            return
        if data.has_timeline(filt):
            # Cached: apply now, in this callback, with no loading indicator (and no
            # second round trip to the page).
            self._gen["timeline"] = self._gen.get("timeline", 0) + 1
            self.timeline = data.timeline(filt)
            return
        self.timeline_busy = True

        def apply(frame):
            self.timeline = frame
            self.timeline_busy = False

        self._spawn("timeline", lambda: data.timeline(filt), apply,
                    failed=lambda e: setattr(self, "timeline_busy", False))

    @param.depends("data", "slice_filter", watch=True)
    def _refresh_ranked(self) -> None:
        data, filt = self.data, dict(self.slice_filter)
        if data is None:
            return
        if data.has_ranked(filt):
            # Cached (a slice seen before): in the same message as the timeline.
            self._gen["ranked"] = self._gen.get("ranked", 0) + 1
            self.ranked = data.ranked_slices(filt)
            return
        self._spawn("ranked", lambda: data.ranked_slices(filt),
                    lambda df: setattr(self, "ranked", df))

    @param.depends("ranked", watch=True)
    def _prefetch_timelines(self) -> None:
        """Compute the timelines of the listed slices before they are clicked.

        Served sessions only, one query at a time on its own worker; a click on a
        slice still being fetched waits for that query (``InvestigationData``
        computes each key once).
        """
        data, ranked = self.data, self.ranked
        if data is None or ranked is None or not len(ranked) or not (
                self.background and _serving()):
            return
        filters = [dict(f) for f in ranked["filter"].head(10)]
        if all(data.has_timeline(f) for f in filters):
            return

        shown = dict(self.slice_filter)

        def fetch():
            for f in filters:
                if self.data is not data or self.slice_filter != shown:
                    return  # the page moved on: its own list gets fetched instead
                try:
                    data.timeline(f)
                except Exception as exc:  # the click will show the error, if any
                    log.info("prefetch of %s failed: %s", slice_label(f), exc)
        _PREFETCH_POOL.submit(fetch)

    @param.depends("compare_dimension", "slice_filter", watch=True)
    def _set_compare_values(self) -> None:
        """Pick A and B: the value the top slice names (B) against its neighbour (A)."""
        if self.live is None or self.compare_dimension is None:
            return
        d = self.compare_dimension
        base = self._compare_base()
        # The busiest values only: a dimension of a million values is never a widget's
        # option list (the search box reaches the others).
        vals = (self.live.values(d, base, limit=WIDGET_VALUES)
                or self.live.values(d, limit=WIDGET_VALUES))
        top = self.live.top_slice.get(d)
        if top is not None and top not in vals and top in self.live.values(d, base):
            vals.append(top)  # the localized value, however quiet
        ordered = sorted(vals)
        keep_b = self.compare_b if self.compare_b in vals else None
        b = keep_b or self.live.top_slice.get(d)
        if b not in vals:
            b = vals[0] if vals else None
        i = ordered.index(b) if b in ordered else 0
        a = ordered[i - 1] if i > 0 else (ordered[i + 1] if len(ordered) > 1 else b)
        if self.compare_a in vals and self.compare_a != b:
            a = self.compare_a
        # Choices only when they change, values after and unbatched: the Select widgets
        # linked to these params reset their value when their options change.
        if list(self.param.compare_a.objects) != ordered:
            self.param.compare_a.objects = ordered
            self.param.compare_b.objects = ordered
        self.param.update(compare_a=a, compare_b=b)

    def _compare_base(self) -> dict:
        shown = self.slice_filter or (self.live.top_slice if self.live else {})
        return {k: v for k, v in shown.items() if k != self.compare_dimension}

    def compare_filters(self) -> tuple[dict, dict]:
        """The two configurations compared: the shown slice (or the top one) with the
        compared dimension set to A and to B."""
        base = self._compare_base()
        d = self.compare_dimension
        return ({**base, d: self.compare_a}, {**base, d: self.compare_b})

    @param.depends("data", "compare_a", "compare_b", "slice_filter", "compare_wanted",
                   watch=True)
    def _refresh_compare(self) -> None:
        data = self.data
        if (data is None or not self.compare_wanted or self.compare_dimension is None
                or self.compare_a is None):
            return
        fa, fb = self.compare_filters()
        self._spawn("compare", lambda: {"a": (fa, data.timeline(fa)), "b": (fb, data.timeline(fb))},
                    lambda r: setattr(self, "compare_frames", r))

    @param.depends("data", watch=True)
    def _clamp_hypothesis(self) -> None:
        # Declared before the refreshes that read the selected cause, so they see it
        # clamped to the new data's candidates.
        n = len(self.data.causes) if self.data is not None else 0
        if self.hypothesis >= max(n, 1):
            self.hypothesis = max(n - 1, 0)

    @param.depends("data", "hypothesis", watch=True)
    def _refresh_counterfactual(self) -> None:
        """The selected cause's scope over time, from the shown moment's data.

        Like the timeline, it is derived from ``data``: when the frame is cached
        (always so for the live investigation once shown, and for a replay step
        warmed by :meth:`_show_replay_step`) it is set here, in the same update
        as ``data``. A frame still to compute is cleared first, so the evidence
        never shows another moment's data beside this moment's text.
        """
        data = self.data
        if data is None:
            return
        scope = self._cause_scope(data)
        if data.has_timeline(scope):
            with self._lock:
                self._gen["counterfactual"] = self._gen.get("counterfactual", 0) + 1
            self.counterfactual_busy = False
            self.counterfactual = data.timeline(scope)
            return
        self.counterfactual, self.counterfactual_busy = None, True

        def apply(frame):
            self.counterfactual, self.counterfactual_busy = frame, False

        self._spawn("counterfactual", lambda: data.timeline(scope), apply,
                    failed=lambda e: setattr(self, "counterfactual_busy", False))

    def _cause_scope(self, data: InvestigationData, hypothesis: int | None = None) -> dict:
        """Scope of the cause selected (``hypothesis``, clamped) among ``data``'s causes."""
        causes = data.causes
        if not causes:
            return {}
        h = self.hypothesis if hypothesis is None else hypothesis
        return dict(causes[min(max(h, 0), len(causes) - 1)].get("scope") or {})

    # ================================================================= slice actions
    def drill_to(self, filt: dict) -> None:
        """Show ``filt`` in the timeline (click on a slice)."""
        filt = {str(k): str(v) for k, v in (filt or {}).items()}
        if filt == self.slice_filter:
            return
        with _held(), param.parameterized.batch_call_watchers(self):
            self.drill_stack = self.drill_stack + [dict(self.slice_filter)]
            self.slice_filter = filt

    def drill_down(self) -> None:
        """Into the most explanatory slice below the shown one (key ``d``)."""
        ranked = self.ranked
        if ranked is None or self.data is None:
            ranked = self.data.ranked_slices(self.slice_filter) if self.data else None
        if ranked is None or not len(ranked):
            self.message = f"No slice below {slice_label(self.slice_filter)}."
            return
        self.drill_to(dict(ranked.iloc[0]["filter"]))

    def drill_up(self) -> None:
        """Back to the slice shown before (key ``u``); to everything when none."""
        if self.drill_stack:
            with _held(), param.parameterized.batch_call_watchers(self):
                prev = self.drill_stack[-1]
                self.drill_stack = self.drill_stack[:-1]
                self.slice_filter = prev
        elif self.slice_filter:
            with _held():
                self.slice_filter = {}

    # ================================================================= hypotheses
    @property
    def causes(self) -> list[dict]:
        return self.data.causes if self.data is not None else []

    @property
    def selected_cause(self) -> dict | None:
        c = self.causes
        return c[self.hypothesis] if 0 <= self.hypothesis < len(c) else None

    def next_hypothesis(self) -> None:
        """Select the next candidate cause (key ``j``)."""
        if self.hypothesis < len(self.causes) - 1:
            with _held():  # the old card unselected and the new one selected: one message
                self.hypothesis += 1

    def previous_hypothesis(self) -> None:
        """Select the previous candidate cause (key ``k``)."""
        if self.hypothesis > 0:
            with _held():
                self.hypothesis -= 1

    def decide(self, change_id: str, decision: str, note: str = "") -> None:
        """Record that a candidate cause is ``confirmed`` or ``refuted``.

        The decision goes to the investigation's journal in the library
        (``workbench.investigation.library.decide``: the investigation is saved
        first if it never was; the audit log and the memory index follow), off the
        event loop; ``decisions`` then lists it (a later decision on the same
        change supersedes an earlier one). Without the versions module the
        decision is kept in this state only.
        """
        from ..governance.policy import Action

        if decision not in ("confirmed", "refuted"):
            raise ValueError(f"decision {decision!r}: expected 'confirmed' or 'refuted'")
        if not self.authorize(Action.CONFIRM, f"{change_id} {decision}") or (
                note and not self.authorize(Action.NOTE, change_id)):
            return
        actor = self.identity.name
        live = self.live
        cause = next((c for c in (live.causes if live else []) if c["change_id"] == change_id),
                     None)
        if cause is None:
            self.error = (f"{change_id} is not a candidate cause of the live investigation; "
                          "go back to now (Live) to decide.")
            return
        entry = {"change_id": change_id, "decision": decision, "note": note or "",
                 "confidence": cause["confidence"], "target": cause["target"],
                 "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "recorded_in": "this session only"}
        hook = _decide_hook()
        library = self.library

        def work():
            if hook is None or live is None:
                return entry
            from ..investigation import library as lib
            if not getattr(live.inv, "investigation_id", None):
                lib.save_investigation(live.inv, root=library, passport_dir=live.passport_dir,
                                       message="saved from the workbench to record a decision",
                                       author=actor)
            e = hook(live.inv, change_id, decision, note=note or None, root=library,
                     author=actor)
            iid = getattr(live.inv, "investigation_id", None)
            return {**entry, "at": getattr(e, "ts", entry["at"]),
                    "author": getattr(e, "author", None),
                    "recorded_in": f"library {iid}" if iid else "library"}

        def apply(rec):
            self.decisions = [d for d in self.decisions if d["change_id"] != change_id] + [rec]
            self.message = f"Recorded: {change_id} {decision} ({rec['recorded_in']})."

        self.message = f"Recording: {change_id} {decision}…"
        self._spawn(f"decide-{change_id}", work, apply)

    def note_shown(self) -> None:
        """Start the time-to-diagnose clock: the top cause is on screen."""
        try:
            from ..investigation import library as lib
            if self.live is not None:
                lib.note_shown(self.live.inv)
        except Exception:  # the clock is a nicety; never break the page for it
            pass

    # ================================================================= replay
    @property
    def replay_engine(self):
        return self._replay

    def replay_label(self, index: int | None = None) -> str:
        i = self.replay_index if index is None else index
        if self._replay is None:
            return "replay unavailable"
        return self._replay.label(None if i < 0 else self.replay_steps[i])

    def start_replay(self, first: int = 0) -> None:
        """Compute every replay step in the background (nearest first; once per investigation)."""
        eng = self._replay
        if eng is None:
            return
        t0 = self.replay_steps[first] if self.replay_steps else None
        eng.start(_REPLAY_POOL, first=t0)
        self.replay_ready = eng.n_ready()

    def _replay_stop(self) -> None:
        self.playing = False

    @param.depends("replay_index", watch=True)
    def _show_replay_step(self) -> None:
        i = self.replay_index
        if i < 0 or self._replay is None:
            # A step still computing must not replace the live view when it lands.
            with self._lock:
                self._gen["replay"] = self._gen.get("replay", 0) + 1
            self.replay_busy = False
            if self.live is not None and self.data is not self.live:
                live = self.live
                # What the views derive from the live data is cached (it was shown
                # before the replay), so they switch back in this one update; a frame
                # not cached (a slice first opened during the replay) loads as usual.
                self.data = live
                self.message = (f"Now (all data): verdict {live.inv.verdict}"
                                + (f", top cause {live.causes[0]['change_id']}"
                                   if live.causes else ""))
            return
        if i >= len(self.replay_steps):
            self.replay_index = -1
            return
        t = self.replay_steps[i]
        eng = self._replay
        self.replay_busy = not eng.ready(t)
        self.message = (f"Replay: {self.replay_label(i)}"
                        + ("" if eng.ready(t) else " (computing…)"))

        def work():
            snap = self.released(eng.snapshot(t))
            # What the views derive from the step (the shown slice's timeline and list,
            # the selected cause's timeline) is computed here too, so the step lands
            # in one update: no view keeps the previous moment while the others move.
            self._warm(snap)
            return snap

        def apply(snap):
            self.replay_busy = False
            self.replay_ready = eng.n_ready()
            self.data = snap
            self.message = f"Replay: {self.replay_label(i)}: verdict {snap.inv.verdict}"

        self._spawn("replay", work, apply,
                    failed=lambda e: setattr(self, "replay_busy", False))

    def _warm(self, data: InvestigationData) -> None:
        """Compute (or find cached) the frames the views derive from ``data``."""
        filt = dict(self.slice_filter)
        try:
            data.timeline(filt)
            data.ranked_slices(filt)
            data.timeline(self._cause_scope(data))
        except Exception as exc:  # the refresh that needs it reports it
            log.info("warming %s failed: %s", data.as_of or "now", exc)

    def step_replay(self, delta: int = 1) -> None:
        """One replay step forward (or back); past the last step is now."""
        n = len(self.replay_steps)
        if n == 0:
            self.message = "Replay needs the passport directory."
            return
        self.start_replay()
        i = self.replay_index
        with _held():  # a cached step (or now) changes every view: one message
            if delta > 0:
                self.replay_index = -1 if i == n - 1 else (0 if i < 0 else i + 1)
            else:
                self.replay_index = n - 1 if i < 0 else max(i - 1, 0)

    def toggle_play(self) -> None:
        """Play or pause the replay (key space)."""
        if not self.replay_steps:
            self.message = "Replay needs the passport directory."
            return
        if not self.playing:
            self.start_replay()
            if self.replay_index < 0:
                self.replay_index = 0
        self.playing = not self.playing

    def tick(self) -> None:
        """Advance the playing replay when the shown step is ready (periodic callback)."""
        if not self.playing:
            return
        i = self.replay_index
        if i >= 0 and (self.replay_busy or self.data is None or self.data.as_of is None):
            return  # still computing the shown step
        with _held():
            if i == len(self.replay_steps) - 1:
                self.replay_index = -1
                self.playing = False
                return
            self.replay_index = i + 1

    def go_live(self) -> None:
        """Back to the live investigation (all data): every view in one update."""
        with _held():
            self.playing = False
            self.replay_index = -1

    # ================================================================= search
    def search(self, query: str | None = None) -> pd.DataFrame:
        q = self.query if query is None else query
        if self.live is None:
            return pd.DataFrame(columns=["type", "key", "title", "detail"])
        return self.releasable(self.live.search(q, library=self.library))

    def open_result(self, kind: str, key: str) -> None:
        """Act on a search hit: drill into a slice, select a cause, note the rest."""
        from .data import parse_slice

        if kind == "slice":
            self.drill_to(parse_slice(key))
        elif kind == "change":
            ids = [c["change_id"] for c in self.causes]
            if key in ids:
                self.hypothesis = ids.index(key)
                self.message = f"{key} is candidate #{self.hypothesis + 1}."
            else:
                ch = self.live.change(key) if self.live else None
                self.message = (f"{key} ({ch['kind']} {ch['target']}, {ch['ts']:%Y-%m-%d %H:%M}) "
                                "is not a candidate cause of this divergence."
                                if ch else f"{key}: not found")
        else:
            self.message = f"Past investigation: {key}"

    # ================================================================= misc
    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no background work is pending (scripts and tests)."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if not (self.busy or self.timeline_busy or self.replay_busy
                    or self.counterfactual_busy):
                return True
            time.sleep(0.05)
        return False


def _ready_listener(state: WorkbenchState, eng) -> Callable:
    """Keep ``state.replay_ready`` current; holds the state weakly (the engine is shared
    by every session and outlives them)."""
    import weakref

    ref = weakref.ref(state)

    def on_step(t):
        st = ref()
        if st is not None and st._replay is eng:
            # Runs on the replay worker; a plain integer param is safe to set from a
            # thread (Panel schedules the page update on the event loop).
            st.replay_ready = eng.n_ready()
    return on_step


def _decide_hook():
    """``workbench.investigation.library.decide`` (records on the investigation), if present."""
    try:
        from ..investigation import library as lib
    except ImportError:
        return None
    return getattr(lib, "decide", None)
