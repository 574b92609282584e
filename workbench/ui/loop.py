"""Close the loop from the page: launch a test of a hypothesis and watch its readout live.

:class:`LoopState` holds the launch settings and what the running test has
shown (one update per simulated hour); :class:`LoopView` is the "Act" tab:
launch controls for a role that may act, and the live readout for everyone.
The launch handler checks the caller's role on the server through the
workbench state's guard (:meth:`workbench.governance.guard.Guarded.authorize`:
refused and audited as ``access.denied``), whatever the page shows, then runs
:func:`workbench.experiments.loop.run_loop` off the event loop; each hourly
update is pushed to the page as it is made. When the test concludes, the
decision goes to the hypothesis board (the workbench state's ``decide``), so
the board's statuses move too.
"""
from __future__ import annotations

import asyncio
import html
import logging
import threading
from pathlib import Path

import panel as pn
import param

from .._format import confidence
from ..experiments.templates import TEMPLATES
from ..governance.policy import Action, local_identity
from .state import _POOL, WorkbenchState, _serving

log = logging.getLogger("workbench.ui")

_CSS = """
.wb-loop-status { font-size: 15px; }
.wb-loop-confirmed { color: #15803d; font-weight: 600; }
.wb-loop-refuted { color: #b91c1c; font-weight: 600; }
.wb-loop-undecided { color: #92400e; font-weight: 600; }
"""


class LoopState(param.Parameterized):
    """The launch settings and the live readout of one session's test."""

    workbench = param.ClassSelector(class_=WorkbenchState, doc="The session's workbench state.")
    cause = param.Selector(default=None, objects=[], allow_None=True, label="Hypothesis",
                           doc="The ranked cause to test.")
    template = param.Selector(default="rollback", objects=list(TEMPLATES), label="Template")
    dose = param.Number(default=50, bounds=(1, 100), step=1, label="Dose (% reverted)")
    hours = param.Integer(default=6, bounds=(1, 48), label="Hours to watch")
    running = param.Boolean(default=False, doc="A test is running.")
    updates = param.List(default=[], doc="One dict per simulated hour of the running test.")
    result = param.Dict(default=None, allow_None=True, doc="The concluded test (LoopResult dict).")
    message = param.String(default="", doc="One line on what is happening.")
    error = param.String(default="", doc="What went wrong, for the page.")

    def __init__(self, **params):
        super().__init__(**params)
        self._lock = threading.Lock()
        self._launched: str | None = None
        wb = self.workbench
        if wb is not None:
            wb.param.watch(self._on_live, "live")
            self._on_live()

    # ------------------------------------------------------------------ who and where
    @property
    def identity(self):
        """The caller: the workbench state's ``identity`` (the local user without one)."""
        return self.workbench.identity if self.workbench is not None else local_identity()

    @property
    def action(self) -> Action:
        return Action.ROLLBACK if self.template == "rollback" else Action.LAUNCH_EXPERIMENT

    def can_launch(self) -> bool:
        """Whether the caller's role may launch this template (the page hides controls if not)."""
        return self.workbench is not None and self.workbench.can(self.action)

    def _paths(self) -> tuple[Path, Path]:
        from ..investigation.library import audit_path, library_root

        lib = self.workbench.library
        return audit_path(lib), library_root(lib) / "loop"

    def _on_live(self, *events) -> None:
        live = self.workbench.live if self.workbench is not None else None
        # every ranked change, not only the five cards: an operator may test one the
        # ranking put low (the cards show the first five)
        ids = [c["change_id"] for c in (live.causes if live else [])]
        self.param.cause.objects = ids
        if self.cause not in ids:
            self.cause = ids[0] if ids else None

    # ------------------------------------------------------------------ the handler
    def launch(self) -> None:
        """Launch the test of ``cause`` (checked and audited on the server)."""
        wb = self.workbench
        if wb is None:
            self.error = "no workbench state to launch from"
            return
        live = wb.live
        if not wb.authorize(self.action, str(self.cause or "")):  # refused and audited
            self.error = wb.error
            return
        audit, workdir = self._paths()
        if self.running:
            self.error = "a test is already running in this session; wait for its conclusion"
            return
        causes = live.causes if live else []
        cause = next((c for c in causes if c["change_id"] == self.cause), None)
        if cause is None:
            self.error = f"{self.cause} is not a ranked cause of the live investigation"
            return
        from ..experiments.flags import FlagdFileProvider
        from ..experiments.loop import run_loop
        from ..passport import load_passport

        self.error, self.result, self.updates, self.running = "", None, [], True
        wb.experiment, self._launched = None, str(self.cause)
        self.message = f"Launching a {self.template} of {self.cause} at {self.dose:g}%…"
        settings = dict(template=self.template, dose=float(self.dose), hours=int(self.hours))
        identity, passport = self.identity, wb.passport
        metric, focus = wb.metric, dict(live.top_slice or {})
        stamp = len(list(workdir.glob("run-*"))) if workdir.is_dir() else 0

        def work(on_update):
            pp = load_passport(passport)
            return run_loop(pp, metric=metric, cause=cause, workdir=workdir / f"run-{stamp}",
                            audit=audit, provider=FlagdFileProvider(workdir / "flags.json"),
                            identity=identity, other_causes=list(causes), focus=focus,
                            on_update=on_update, **settings).to_dict()

        self._run(work)

    def _apply_update(self, upd: dict) -> None:
        self.updates = [*self.updates, upd]
        self._publish(upd.get("status") or "running")
        self.message = (f"hour {upd['hour']}: confidence {upd['confidence']:.3f}, "
                        f"effect {upd['effect']:+.4f}")

    def _publish(self, status: str) -> None:
        """Hand the test's state to the workbench so the hypothesis board and the timeline
        move hour by hour (a new dict each time: one change event per update)."""
        wb = self.workbench
        if wb is None or not self.updates:
            return
        last = self.updates[-1]
        arms = [{"ts": u["ts"], "arm": arm, "value": v}
                for u in self.updates for arm, v in (u.get("arms") or {}).items()]
        wb.experiment = {"change_id": self._launched, "status": status, "hour": last["hour"],
                         "template": self.template, "dose": float(self.dose),
                         "hypotheses": list(last.get("hypotheses") or []), "arms": arms}

    def _finish(self, res: dict | None, exc: BaseException | None) -> None:
        self.running = False
        if res is not None:
            self._publish(res["status"])
        if exc is not None:
            log.error("workbench: loop failed", exc_info=exc)
            self.error = str(exc) if not isinstance(exc, AssertionError) else repr(exc)
            self.message = ""
            return
        self.result = res
        self.message = f"{res['action']['change_id']}: {res['status']}"
        if res["status"] in ("confirmed", "refuted") and self.workbench is not None:
            try:  # the board's status follows the test (recorded like a click)
                self.workbench.decide(res["action"]["change_id"], res["status"],
                                      note=f"{res['action']['template']} test at "
                                           f"{res['action']['dose']:g}%: {res['status']}")
            except Exception as e:  # the readout stands even if the journal is unavailable
                log.warning("workbench: could not record the test's decision: %s", e)

    def _run(self, work) -> None:
        if not _serving():  # notebooks, scripts and tests: inline
            try:
                res = work(self._apply_update)
            except Exception as exc:
                self._finish(None, exc)
                return
            self._finish(res, None)
            return

        async def task():
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue = asyncio.Queue()
            fut = loop.run_in_executor(
                _POOL, work, lambda u: loop.call_soon_threadsafe(queue.put_nowait, u))
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, fut},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    self._apply_update(getter.result())
                    continue
                getter.cancel()
                while not queue.empty():
                    self._apply_update(queue.get_nowait())
                try:
                    self._finish(fut.result(), None)
                except Exception as exc:
                    self._finish(None, exc)
                return

        pn.state.execute(task)


def board_line(exp: dict | None, c: dict) -> tuple[float, str]:
    """A card's confidence while a test runs (the test's hourly update moves every ranked
    cause) and a line on the tested one: its status, hour and confidence."""
    if not exp:
        return c["confidence"], ""
    now = {h["change_id"]: h["confidence"] for h in exp.get("hypotheses") or []}
    conf = float(now.get(c["change_id"], c["confidence"]))
    if c["change_id"] != exp.get("change_id"):
        return conf, ""
    status = html.escape(str(exp.get("status") or "running"))
    return conf, (f"\n\n<span class='wb-badge wb-test-{status}'>{html.escape(exp['template'])} "
                  f"test at {exp['dose']:g}%: {status} · hour {exp['hour']} · confidence "
                  f"{confidence(conf)}</span>")


def _status_html(state: LoopState) -> str:
    res, ups = state.result, state.updates
    if not ups and not res:
        return ("<span class='wb-muted'>No test yet. A rollback test reverts the change for a "
                "random share of its scope and watches the metric.</span>")
    last = ups[-1] if ups else {}
    status = res["status"] if res else (last.get("status") or "running")
    when = (f" after {res['hours_to_decision']} h" if res and res.get("hours_to_decision")
            else "")
    return (f"<span class='wb-loop-{html.escape(status)}'>{html.escape(status)}{when}</span>"
            f" · confidence {last.get('confidence', 0):.3f} · effect "
            f"{last.get('effect', 0):+.4f} (always-valid interval "
            f"{last.get('ci_low', 0):+.4f}..{last.get('ci_high', 0):+.4f})")


def _updates_md(ups: list[dict]) -> str:
    if not ups:
        return ""
    rows = ["| hour | dose | confidence | effect | interval | status |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {u['ts'][5:16].replace('T', ' ')} | {u['dose']:g}% | {u['confidence']:.3f} | "
             f"{u['effect']:+.4f} | {u['ci_low']:+.4f}..{u['ci_high']:+.4f} | {u['status']} |"
             for u in ups]
    return "\n".join(rows)


def _result_md(res: dict | None) -> str:
    if not res:
        return ""
    a = res["action"]
    found = res["updates"][-1]["effect"] if res.get("updates") else float("nan")
    out = [f"**Prediction.** If {a['change_id']} caused the divergence, reverting it should "
           f"move {html.escape(res['plan']['metric'])} by {res['plan']['expected_effect']:+.4f} "
           f"in {html.escape(_where(a.get('readout_scope') or {}))}; the test found "
           f"{found:+.4f}.",
           f"**Readout.** {html.escape(res['readout'].get('summary', ''))}",
           f"**After the action.** {html.escape(res['divergence'].get('text', ''))}"]
    board = (res.get("updates") or [{}])[-1].get("hypotheses") or []
    if board:
        out.append("**Hypotheses after the test.** " + ", ".join(
            f"{html.escape(h['change_id'])} {h['confidence']:.1%}" for h in board))
    if res.get("next_steps"):
        out.append("**Next steps**\n\n" + "\n".join(f"- {html.escape(s)}"
                                                    for s in res["next_steps"]))
    out.append(f"<span class='wb-muted'>{a['template']} of {a['change_id']} at {a['dose']:g}% "
               f"through {a['provider']}; audit #{a['intent_audit_seq']} intent, "
               f"#{a['outcome_audit_seq']} outcome, #{a['concluded_audit_seq']} conclusion"
               "</span>")
    return "\n\n".join(out)


def _where(scope: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "all traffic"


class LoopView(pn.viewable.Viewer):
    """The "Act" tab: launch controls (for roles that may act) and the live readout."""

    state = param.ClassSelector(class_=LoopState)

    def __init__(self, **params):
        super().__init__(**params)
        st = self.state
        md = dict(stylesheets=[_CSS], sizing_mode="stretch_width")
        self._status = pn.pane.HTML(_status_html(st), css_classes=["wb-loop-status"], **md)
        self._table = pn.pane.Markdown("", css_classes=["wb-loop-updates"], **md)
        self._result = pn.pane.Markdown("", css_classes=["wb-loop-result"], **md)
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                    css_classes=["wb-loop-alert"], sizing_mode="stretch_width")
        st.param.watch(self._refresh, ["updates", "result", "running", "error"])
        parts = [pn.pane.Markdown("### Test a hypothesis", margin=(0, 10))]
        if st.can_launch():
            self._button = pn.widgets.Button(
                label="Launch test", color="primary", width=140,
                description="Write the flag (audited), then watch the readout hour by hour",
                css_classes=["wb-loop-launch"])
            self._button.on_click(lambda ev: st.launch())
            parts += [pn.Row(pn.widgets.Select.from_param(st.param.cause, width=130),
                             pn.widgets.Select.from_param(st.param.template, width=110),
                             sizing_mode="stretch_width"),
                      pn.Row(pn.widgets.IntInput.from_param(st.param.hours, width=90),
                             pn.widgets.FloatInput.from_param(st.param.dose, width=110),
                             self._button)]
        else:
            self._button = None
            parts.append(pn.pane.Markdown(
                f"<span class='wb-muted'>Your role ({st.identity.role.value}) can follow "
                "tests but not launch them.</span>", css_classes=["wb-loop-readonly"],
                stylesheets=[_CSS]))
        parts += [pn.pane.Markdown(pn.bind(html.escape, st.param.message),
                                   styles={"color": "#6b7280"}),
                  self._alert, self._status, self._table, self._result]
        self._layout = pn.Column(*parts, sizing_mode="stretch_width", css_classes=["wb-loop"])

    def _refresh(self, *events) -> None:
        st = self.state
        self._status.object = _status_html(st)
        self._table.object = _updates_md(st.updates)
        self._result.object = _result_md(st.result)
        self._alert.object = html.escape(st.error)
        self._alert.visible = bool(st.error)
        if self._button is not None:
            self._button.disabled = st.running

    def __panel__(self):
        return self._layout
