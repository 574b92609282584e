"""Times, numbers and filters written one way across the workbench.

Every package used to carry its own ``_iso``, ``_pct``, ``_fmt_filter`` and JSON
``default=`` hook, and they disagreed (``...14:00:00Z`` beside
``...14:00:00+00:00``, ``-`` beside ``n/a``). They live here, at the bottom of the
layers (pandas and numpy only), so that any package may import them.

The time format is ISO 8601 in UTC ending in ``Z`` (RFC 3339 profile), whole
seconds when the time has no fraction.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["confidence", "fmt_filter", "iso", "json_default", "jsonable", "num", "pct"]

#: a UTC time written with an explicit offset (what ``Timestamp.isoformat()`` gives)
_UTC_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)\+00:00$")


def iso(t: Any) -> str | None:
    """``t`` as ISO 8601 UTC ending in ``Z``; None for None or NaT.

    A naive time is taken as UTC. Whole seconds are written without a fraction.

    Examples
    --------
    >>> iso("2026-11-18 14:00")
    '2026-11-18T14:00:00Z'
    >>> iso(pd.Timestamp("2026-11-18T15:00:00.5+01:00"))
    '2026-11-18T14:00:00.500000Z'
    """
    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return None
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if t.microsecond == 0 and t.nanosecond == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return t.isoformat().replace("+00:00", "Z")


def json_default(o: Any) -> Any:
    """The ``default=`` hook of :func:`json.dumps` for the workbench's values.

    Times become :func:`iso` strings, numpy scalars Python numbers (a non-finite
    float becomes null), arrays, sets and tuples lists, anything else its text.
    """
    if isinstance(o, (pd.Timestamp, datetime, date, np.datetime64)):
        return iso(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def jsonable(obj: Any) -> Any:
    """Plain JSON values for ``obj``, with every UTC time in the one format.

    Mappings become dicts and sequences lists; a string holding a UTC time with
    a ``+00:00`` offset (what the analysis packages' ``isoformat()`` writes) is
    rewritten with ``Z``, so the answer carries one time format.
    """
    if isinstance(obj, str):
        m = _UTC_OFFSET.match(obj)
        return obj if m is None else iso(obj)
    if obj is None or isinstance(obj, (bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    return jsonable(json_default(obj))


def num(x: Any, missing: str = "-") -> str:
    """A number in four significant digits (``missing`` for None or non-finite)."""
    try:
        if x is None or not np.isfinite(float(x)):
            return missing
    except (TypeError, ValueError):
        return missing
    return f"{x:.4g}"


def pct(x: Any, fmt: str = ".0%", missing: str = "-") -> str:
    """A share as a percentage in ``fmt`` (``missing`` for None, NaN or text)."""
    try:
        if x is None or pd.isna(x):
            return missing
        return format(float(x), fmt)
    except (TypeError, ValueError):
        return missing


def confidence(x: Any) -> str:
    """A confidence: one decimal near the ends, and never a rounded 100% or 0%."""
    if x is None:
        return "n/a"
    if 0.999 < x < 1:
        return ">99.9%"
    if 0 < x < 0.001:
        return "<0.1%"
    return f"{x:.1%}" if 0.99 < x < 1 or 0 < x < 0.01 else f"{x:.0%}"


def fmt_filter(f: dict | None, everything: str = "(everything)") -> str:
    """``platform=ios, country=NL``; a list value reads ``a|b``; ``everything`` if empty."""
    return ", ".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in (f or {}).items()) or everything


def share_meaning(share: Any, where: str = "this slice") -> str | None:
    """A sentence for a share of the divergence above 100% or below 0%, else ``None``.

    Shares of a slice add up to the whole divergence across a partition, so a
    slice can hold more than all of it (others moved the other way and offset
    part of it) or a negative share (it moved against the divergence).

    Examples
    --------
    >>> share_meaning(0.6) is None
    True
    >>> share_meaning(1.01)[:40]
    'this slice explains 101% of the divergen'
    """
    try:
        s = float(share)
    except (TypeError, ValueError):
        return None
    if s != s or 0.0 <= s <= 1.005:
        return None
    if s > 1:
        return (f"{where} explains {s:.0%} of the divergence: more than all of it, because "
                "other slices moved the opposite way and offset part of its movement")
    return (f"{where} explains {s:.0%} of the divergence: it moved against the divergence "
            "(the opposite direction), so the other slices explain more than all of it")
