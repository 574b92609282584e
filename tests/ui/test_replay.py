"""workbench/ui/replay.py and the served app's warm-up: replay work stays off the clicks.

Each replay step is a whole investigation. The served app computes none at start
(only when a session first uses the replay), and the background precomputation
never falls back to computing a step inside the server's process.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pandas as pd
import pytest

from workbench.ui import replay as replay_mod
from workbench.ui.data import InvestigationData

from .conftest import DEMO


class _Inline:
    """An executor that runs each item at once (the replay worker, synchronously)."""

    def submit(self, fn, *args):
        fut = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # pragma: no cover - one() catches its own
            fut.set_exception(exc)
        return fut


class _DeadChild:
    """A child process pool whose child died: every step submitted fails."""

    def submit(self, *args, **kwargs):
        fut = Future()
        fut.set_exception(BrokenProcessPool("the child was terminated abruptly"))
        return fut


@pytest.fixture
def live(demo_inv):
    return InvestigationData(dataclasses.replace(demo_inv), passport_dir=str(DEMO))


def test_background_precompute_never_computes_a_step_in_the_server(live, monkeypatch, tmp_path):
    in_process = []
    monkeypatch.setattr(replay_mod, "_step_processes", lambda: _DeadChild())
    monkeypatch.setattr(replay_mod, "_shutdown_step_processes", lambda: None)
    monkeypatch.setattr(replay_mod, "_investigate_cut",
                        lambda *a, **k: in_process.append(a[2]) or pytest.fail("in-process"))
    steps = [live.onset + pd.Timedelta(hours=h) for h in (-6, 12)]
    eng = replay_mod.ReplayEngine(live, steps=steps, workdir=tmp_path)
    done = []
    assert eng.start(_Inline(), on_step=done.append)
    assert done == steps  # each step was tried, and reported
    assert not in_process
    assert eng.n_ready() == 0
    assert all("terminated abruptly" in eng.error(t) for t in steps)


def test_served_app_computes_no_replay_step_until_a_session_uses_the_replay(tmp_path,
                                                                            monkeypatch):
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.state import WorkbenchState

    started = []
    monkeypatch.setattr(replay_mod.ReplayEngine, "start",
                        lambda self, pool, **kw: started.append(self) or True)
    app = WorkbenchApp(str(DEMO), db=str(tmp_path / "store.duckdb"), metric="conversion_rate")
    app.warm()
    live = app.live("conversion_rate")  # waits for the warm-up's investigation
    import threading
    for t in threading.enumerate():  # and for the warm-up to have done all it does
        if t.name == "workbench-warm":
            t.join()
    state = WorkbenchState.from_data(live, background=False)
    assert app.ready("conversion_rate") and state.replay_steps
    assert not started  # the first investigation alone
    state.start_replay()  # what a step or play does first
    assert started == [live.replay()]
