"""Causal verification of hypotheses, counterfactuals and mechanism attribution (DoWhy).

The verbs:

- :func:`verify_cause`: a change as a hypothesis, tested with DoWhy
  (``CausalModel`` -> ``identify_effect`` -> ``backdoor.linear_regression``)
  and attacked by refuters (placebo treatment, random common cause, data
  subset, placebo in time, timing); verdict ``verified`` / ``fragile`` /
  ``refuted`` / ``untestable`` and a counterfactual timeline of the metric
  without the change;
- :func:`attribute_mechanisms`: which mechanism of the measures' causal
  graph changed (``dowhy.gcm.distribution_change``);
- :func:`verify_top_causes`: both, for the top causes of an investigation,
  as a :class:`VerificationReport`;
- :func:`rank_root_causes`: which service of a call graph caused an anomaly
  (robust scoring and explaining away along the graph; no DoWhy), and
  :func:`rank_changes_by_root_cause` to turn it into a ranking of changes.

DoWhy is an optional dependency (``pip install workbench[causal]``) and slow
to import (~5 s): importing this package does not import it; the verbs do,
when called. :func:`available` says whether it is installed without
importing it.

Examples
--------
>>> from workbench.causal import verify_top_causes                  # doctest: +SKIP
>>> rep = verify_top_causes(st.con, sp, spec, inv.causes[:2], onset=onset, end=end,
...                         direction=-1, graph=pp.graph)           # doctest: +SKIP
>>> rep.verdicts, rep.to_frame().head()                              # doctest: +SKIP
"""
from __future__ import annotations

_LAZY = {
    "verify_cause": ("workbench.causal.verify", "verify_cause"),
    "VerifyConfig": ("workbench.causal.verify", "VerifyConfig"),
    "CauseVerification": ("workbench.causal.verify", "CauseVerification"),
    "Counterfactual": ("workbench.causal.counterfactual", "Counterfactual"),
    "scope_counterfactual": ("workbench.causal.counterfactual", "scope_counterfactual"),
    "ScopeCounterfactual": ("workbench.causal.counterfactual", "ScopeCounterfactual"),
    "RefuterResult": ("workbench.causal.verify", "RefuterResult"),
    "VERDICTS": ("workbench.causal.verify", "VERDICTS"),
    "attribute_mechanisms": ("workbench.causal.attribution", "attribute_mechanisms"),
    "AttributionConfig": ("workbench.causal.attribution", "AttributionConfig"),
    "MechanismAttribution": ("workbench.causal.attribution", "MechanismAttribution"),
    "verify_top_causes": ("workbench.causal.report", "verify_top_causes"),
    "VerificationReport": ("workbench.causal.report", "VerificationReport"),
    "MeasureGraph": ("workbench.causal.graph", "MeasureGraph"),
    "default_graph": ("workbench.causal.graph", "default_graph"),
    "load_graph": ("workbench.causal.graph", "load_graph"),
    "rank_root_causes": ("workbench.causal.graph_rca", "rank_root_causes"),
    "rank_changes_by_root_cause": ("workbench.causal.graph_rca", "rank_changes_by_root_cause"),
    "call_weights": ("workbench.causal.graph_rca", "call_weights"),
    "GraphRCAConfig": ("workbench.causal.graph_rca", "GraphRCAConfig"),
    "GraphRCAResult": ("workbench.causal.graph_rca", "GraphRCAResult"),
    "RootCauseCandidate": ("workbench.causal.graph_rca", "RootCauseCandidate"),
}

__all__ = sorted(_LAZY) + ["available"]


def available() -> bool:
    """Whether DoWhy is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("dowhy") is not None


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench.causal' has no attribute {name!r}")


def __dir__():
    return __all__
