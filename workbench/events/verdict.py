"""Verdict rules that agree with the evidence.

In order:

1. ``data_quality`` when a defect overlaps the window and explains it (the
   divergence does not survive repairing the data);
2. ``mix_shift`` when the rate-versus-mix split (Kitagawa 1955) puts more of
   the change on the mix than on the rates, in the divergence's direction,
   unless a change carries an effect of its own (its own comparison's 95%
   interval excludes zero, :mod:`workbench.events.siblings`) and the posterior
   names it; a strict mix shift (mix at least 75%, rates at most 25%) stays a
   mix shift whatever the log says;
3. ``change`` when the top cause has an effect of its own and the changes
   with effects of their own hold 0.5 or more of the posterior together (two
   harmful changes landing together split a posterior over mutually exclusive
   hypotheses: 0.49 each still says "a change did it", at 0.98);
4. ``external`` otherwise: the divergence covers a slice uniformly across exposed
   and unexposed units, or nothing in the log is near it.

Reference: Kitagawa, E. M. (1955). Components of a difference between two
rates. JASA 50(272), 1168-1194.
"""
from __future__ import annotations

import numpy as np


def mix_dominates(rm, divergence_sign: float) -> bool:
    """Does the mix carry more of the change than the rates, in the divergence's direction?"""
    if rm is None:
        return False
    total = float(getattr(rm, "total_change", 0.0) or 0.0)
    if total == 0 or np.sign(total) != np.sign(divergence_sign):
        return False
    mix = float(getattr(rm, "mix_effect", 0.0) or 0.0) * np.sign(total)
    rate = float(getattr(rm, "rate_effect", 0.0) or 0.0) * np.sign(total)
    return mix > 0 and mix > rate


def decide_verdict(*, data_quality_explains: bool, strict_mix: bool, rm,
                   divergence_sign: float, top: dict | None,
                   causes: list[dict] | None = None) -> str:
    """The verdict from the evidence; ``top`` is the top cause's ``to_dict()`` (or ``None``).

    ``causes`` (all of them, as dicts) adds the confidence of every other cause with
    an effect of its own to the top cause's.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> rm = NS(total_change=-0.004, mix_effect=-0.0028, rate_effect=-0.0012)
    >>> decide_verdict(data_quality_explains=False, strict_mix=False, rm=rm,
    ...                divergence_sign=-1, top={"confidence": 0.8, "own_effect": False})
    'mix_shift'
    """
    if data_quality_explains:
        return "data_quality"
    mass = 0.0 if top is None else float(top.get("confidence", 0.0))
    if top is not None and top.get("own_effect") is True:
        mass += sum(float(c.get("confidence", 0.0)) for c in causes or ()
                    if c is not top and c.get("own_effect") is True)
    named = top is not None and mass >= 0.5
    own = named and top.get("own_effect") is not False
    if rm is not None and np.sign(float(getattr(rm, "total_change", 0.0) or 0.0)) == \
            np.sign(divergence_sign):
        if strict_mix or (mix_dominates(rm, divergence_sign) and not own):
            return "mix_shift"
    if named and own:
        return "change"
    return "external"
