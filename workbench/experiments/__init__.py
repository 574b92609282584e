"""Experiments: readouts, templates, flag providers, the action ledger and the simulated world.

Public verbs: :func:`check_srm` and :func:`diagnose_srm` (sample-ratio
mismatch and where it comes from), :func:`read_experiment` (difference,
CUPED, always-valid interval, Bayesian readout, guardrails), :func:`plan_power`,
:func:`plan_experiment` (rollback / dose ramp / holdout from a hypothesis),
:func:`run_loop` (launch, watch, update). Heavier modules load on first use.
"""
from __future__ import annotations

from .srm import SRMDiagnosis, SRMResult, check_srm, diagnose_srm

_LAZY = {"read_experiment": "readout", "Readout": "readout", "plan_power": "power",
         "PowerPlan": "power", "plan_experiment": "templates", "ExperimentPlan": "templates",
         "run_loop": "loop", "LoopResult": "loop", "FlagdFileProvider": "flags",
         "load_provider": "flags", "FlagProviderError": "flags", "launch": "ledger",
         "reconcile": "ledger", "SimulatedWorld": "world"}

__all__ = ["SRMResult", "SRMDiagnosis", "check_srm", "diagnose_srm", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
