"""The one door to DoWhy: imported late, quiet, deterministic.

``import dowhy`` costs about 5 s and 300 MB (it pulls in matplotlib, sklearn
and statsmodels), so nothing in ``workbench`` imports it at module level; the
functions here import it when a verification or attribution actually runs.

DoWhy talks through :mod:`logging` (a WARNING for every estimate made without
a graph file, one per refutation with fewer than 100 simulations) and, under
pandas 3, through a deprecation warning of its regression estimator. Left
alone, the logging module's last-resort handler prints those on standard
error of every CLI run; :func:`quiet` silences exactly them for the duration
of a call and restores everything afterwards.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np


@contextlib.contextmanager
def quiet(seed: int | None = None):
    """Silence DoWhy's logging and its known pandas-3 deprecation; one BLAS thread; seed numpy.

    DoWhy's gcm and some refuters draw from ``np.random`` directly; the
    previous global state is restored on exit so callers are not affected.
    """
    from threadpoolctl import threadpool_limits

    loggers = [logging.getLogger(n) for n in ("dowhy", "dowhy.causal_model",
                                              "dowhy.causal_refuter", "dowhy.gcm")]
    levels = [lg.level for lg in loggers]
    state = np.random.get_state() if seed is not None else None
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        # One BLAS thread: the regressions here are small (thousands of rows, a dozen
        # columns), and a multi-threaded OpenBLAS on a busy 2-core machine spends its
        # time waiting for its own threads (measured: 100 ms per OLS fit instead of 3).
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            from pandas.errors import Pandas4Warning

            # dowhy 0.14's regression estimator calls DataFrame.astype(copy=False);
            # pandas 3 deprecates the keyword (harmless: copy-on-write is on).
            warnings.filterwarnings("ignore", message="The copy keyword is deprecated",
                                    category=Pandas4Warning, module=r"dowhy\.")
            # DoWhy's normal-approximation p-value divides by the spread of the
            # simulated effects; when every simulation gives the same effect it
            # warns and returns p = 0 or nan, which the verdicts treat as such.
            warnings.filterwarnings("ignore", message="(divide by zero|invalid value) "
                                    "encountered in scalar divide", category=RuntimeWarning,
                                    module=r"dowhy\.causal_refuter")
            if seed is not None:
                np.random.seed(seed)
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)
        if state is not None:
            np.random.set_state(state)


@contextlib.contextmanager
def gcm_settings():
    """No progress bars and no worker processes for ``dowhy.gcm`` during a call."""
    from dowhy.gcm import config

    bars, jobs = config.show_progress_bars, config.default_n_jobs
    config.disable_progress_bars()
    config.set_default_n_jobs(1)  # joblib workers cost more than they save on 2 cores
    try:
        yield config
    finally:
        config.show_progress_bars = bars
        config.set_default_n_jobs(jobs)
