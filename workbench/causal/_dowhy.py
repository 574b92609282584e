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
import weakref

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


def linear_effect_method() -> str:
    """The ``method_name`` of :class:`LinearEffect` for ``CausalModel.estimate_effect``."""
    return "backdoor." + __name__ + ".LinearEffect"


def _linear_effect_class():
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator

    class LinearEffect(LinearRegressionEstimator):
        """DoWhy's ``backdoor.linear_regression``, with the effect read off the fitted model.

        The same estimand, the same OLS fit (``_build_model``) and the same
        estimate; two costs of the parent that a refuter pays at each of its
        simulations are gone, which made the three refuters half of an
        investigation's time (measured: 42 ms a simulation, 60 simulations):

        - the parent's ``fit`` renders ``model.summary()`` for a debug log line
          even when debug logging is off;
        - the parent's ``estimate_effect`` predicts every row twice (treatment
          set to 1, then to 0) on copies of the data and averages. Without
          effect modifiers the model is linear, so the mean prediction under
          ``do(T = v)`` is the mean feature row, treatment set to ``v``, times
          the coefficients: the same number up to rounding (1e-16), and the
          mean feature row of the rows just fitted is kept from the fit.
        """

        def fit(self, data, effect_modifier_names=None):
            # RegressionEstimator.fit of dowhy 0.14 minus its eager debug summary
            self.reset_encoders()
            self._set_effect_modifiers(data, effect_modifier_names)
            names = self._target_estimand.get_adjustment_set()
            self._observed_common_causes_names = names
            self._observed_common_causes = (self._encode(data[names], "observed_common_causes")
                                            if len(names) > 0 else None)
            self.symbolic_estimator = self.construct_symbolic_estimator(self._target_estimand)
            features, self.model = self._build_model(data)
            # the mean feature row of the rows just fitted: a refuter estimates on them next.
            # A weak reference (no copy of the data when DoWhy deep-copies the estimator)
            self._fitted = (weakref.ref(data), np.asarray(features, dtype=float).mean(axis=0))
            return self

        def _do(self, treatment_val, data_df):
            if self._effect_modifier_names:  # interactions: the parent's row by row mean
                return super()._do(treatment_val, data_df)
            ref, mean = getattr(self, "_fitted", (None, None))
            if ref is None or ref() is not data_df:
                mean = np.asarray(self._build_features(data_df), dtype=float).mean(axis=0)
            mean = mean.copy()
            k = len(self._target_estimand.treatment_variable)
            mean[1:1 + k] = treatment_val  # column 0 is the constant, then the treatments
            return float(mean @ np.asarray(self.model.params, dtype=float))

    LinearEffect.__module__ = __name__
    LinearEffect.__qualname__ = "LinearEffect"
    return LinearEffect


def __getattr__(name: str):
    # DoWhy imports the estimator by its dotted name; the class is built on first use
    # so that importing this module does not import dowhy
    if name == "LinearEffect":
        cls = _linear_effect_class()
        globals()["LinearEffect"] = cls
        return cls
    raise AttributeError(name)
