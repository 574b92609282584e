"""Hypotheses from people: an analyst's own candidate cause, tested like a change.

An analyst often knows of an event the change log does not hold ("the CDN had
an outage in APAC from 12:00 to 14:00"). Such a hypothesis is a label, a slice
(``{dimension: value}``) and a time window. It enters the ranking as one more
candidate beside the changes of the log (:func:`workbench.events.rank_changes`)
and is held to the same tests, in the spirit of strong inference (Platt 1964,
"Strong inference", Science 146(3642)): state every alternative, including the
ones no system recorded, and let the same test tell them apart:

- **alignment**: the window's start against the divergence's onset (and its
  95% set);
- **scope**: the share of the divergence inside the slice against its share of
  traffic;
- **effect**: a difference-in-differences of the log metric, the slice against
  the rest (and against its siblings when the slice is nested in a diverging
  one, :mod:`workbench.events.siblings`), whose post-period ends with the window
  (an outage that is over does not dilute its own estimate with the hours after
  it);
- **verification**, when asked, as for the top causes of the log.

A person's hypothesis is never a change: it enters as kind ``external`` (there
is nothing to roll back), its cause carries ``origin: "person"`` in the answer
(the log's carry ``"change_log"``), and a verdict it leads is ``external``.

The CLI syntax is ``'LABEL;DIM=VAL[,DIM=VAL];START;END'`` (ISO times, UTC when
no zone is given), e.g. ``'CDN outage;region=APAC;2026-11-18T12:00Z;2026-11-18T14:00Z'``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import UsageError

__all__ = ["PersonHypothesis", "as_change_rows", "coerce_hypotheses", "parse_hypothesis",
           "with_people"]

#: ``origin`` of a cause from the change log and of one from a person.
CHANGE_LOG, PERSON = "change_log", "person"
_SYNTAX = "'LABEL;DIM=VAL[,DIM=VAL];START;END', e.g. 'CDN outage;region=APAC;" \
          "2026-11-18T12:00Z;2026-11-18T14:00Z'"


@dataclass(frozen=True)
class PersonHypothesis:
    """A hypothesis an analyst adds: a label, a slice and a time window (UTC).

    Attributes
    ----------
    label:
        What the analyst thinks happened ("CDN outage in APAC").
    slice:
        ``{dimension: value}`` where it happened; ``{}`` for everywhere.
    start, end:
        When it happened; ``end`` after ``start``.
    author:
        Who added it (the UI fills in the signed-in user).
    """

    label: str
    slice: Mapping[str, str] = field(default_factory=dict)
    start: pd.Timestamp = None  # type: ignore[assignment]
    end: pd.Timestamp = None  # type: ignore[assignment]
    author: str | None = None

    @property
    def id(self) -> str:
        """A stable id, ``hyp-`` and a short hash of label, slice and window."""
        key = "|".join([self.label, repr(sorted(self.slice.items())), self.start.isoformat(),
                        self.end.isoformat()])
        slug = re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")[:24] or "person"
        return f"hyp-{slug}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "slice": dict(self.slice),
                "start": self.start.isoformat(), "end": self.end.isoformat(),
                "author": self.author}


def _utc(value, what: str, where: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        t = pd.NaT
    if t is pd.NaT or pd.isna(t):
        raise UsageError(f"{where}: {what} {value!r} is not a time; expected ISO such as "
                         "2026-11-18T12:00Z")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _make(label, slice_, start, end, where: str, author=None) -> PersonHypothesis:
    label = str(label or "").strip()
    if not label:
        raise UsageError(f"{where}: the label is empty; expected {_SYNTAX}")
    if not isinstance(slice_, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, (str, int)) and str(v)
            for k, v in slice_.items()):
        raise UsageError(f"{where}: the slice must map dimension names to values, e.g. "
                         f"{{'region': 'APAC'}}; got {slice_!r}")
    a, b = _utc(start, "START", where), _utc(end, "END", where)
    if b <= a:
        raise UsageError(f"{where}: END ({b.isoformat()}) must be after START "
                         f"({a.isoformat()})")
    return PersonHypothesis(label, {k: str(v) for k, v in slice_.items()}, a, b, author)


def parse_hypothesis(text: str, *, where: str = "--hypothesis") -> PersonHypothesis:
    """Parse ``'LABEL;DIM=VAL[,DIM=VAL];START;END'`` (an empty slice is everywhere).

    Raises
    ------
    UsageError
        Naming what is wrong and the expected syntax.

    Examples
    --------
    >>> h = parse_hypothesis("CDN outage;region=APAC;2026-11-18T12:00Z;2026-11-18T14:00Z")
    >>> h.label, dict(h.slice), h.start.hour, h.end.hour
    ('CDN outage', {'region': 'APAC'}, 12, 14)
    """
    parts = [p.strip() for p in str(text).split(";")]
    if len(parts) != 4:
        raise UsageError(f"{where} {text!r}: expected 4 fields separated by ';' "
                         f"(got {len(parts)}): {_SYNTAX}")
    label, sl, start, end = parts
    return _make(label, parse_slice(sl, where=f"{where} {text!r}"), start, end,
                 f"{where} {text!r}")


def parse_slice(text: str, *, where: str = "slice") -> dict[str, str]:
    """``'DIM=VAL[,DIM=VAL]'`` as a dict; empty text is everywhere (``{}``)."""
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in str(text or "").split(","))):
        dim, eq, val = item.partition("=")
        if not eq or not dim.strip() or not val.strip():
            raise UsageError(f"{where}: slice item {item!r} is not DIM=VAL; expected {_SYNTAX}")
        out[dim.strip()] = val.strip()
    return out


def coerce_hypotheses(items: Iterable | None) -> tuple[PersonHypothesis, ...]:
    """Hypotheses from strings, dicts (``label, slice, start, end``) or instances."""
    out = []
    for i, h in enumerate(items or ()):
        where = f"hypotheses[{i}]"
        if isinstance(h, PersonHypothesis):
            out.append(_make(h.label, dict(h.slice), h.start, h.end, where, h.author))
        elif isinstance(h, str):
            out.append(parse_hypothesis(h, where=where))
        elif isinstance(h, Mapping):
            extra = set(h) - {"label", "slice", "start", "end", "author", "id"}  # id: derived
            if extra or not {"label", "start", "end"} <= set(h):
                raise UsageError(f"{where}: expected keys label, slice, start, end (author "
                                 f"optional); got {sorted(h)}")
            out.append(_make(h["label"], h.get("slice") or {}, h["start"], h["end"], where,
                             h.get("author")))
        else:
            raise UsageError(f"{where}: expected a string {_SYNTAX} or a dict; got "
                             f"{type(h).__name__}")
    ids = [h.id for h in out]
    if len(set(ids)) < len(ids):
        raise UsageError("hypotheses: the same hypothesis (label, slice and window) is given "
                         "twice")
    return tuple(out)


def check_dimensions(hyps: Iterable[PersonHypothesis], dimensions: Iterable[str]) -> None:
    """Every slice names known dimensions (else a :class:`UsageError` listing them)."""
    dims = list(dimensions)
    for h in hyps:
        bad = [d for d in h.slice if d not in dims]
        if bad:
            raise UsageError(f"hypothesis {h.label!r}: unknown dimension(s) {', '.join(bad)}; "
                             f"the passport's dimensions are {', '.join(dims)}")


def as_change_rows(hyps: Iterable[PersonHypothesis], columns: Iterable[str]) -> pd.DataFrame:
    """The hypotheses as rows of the change log (kind ``external``, ``origin`` person).

    ``until`` holds each window's end: the ranking ends the effect's
    post-period there. Columns missing from the log are left out.
    """
    rows = [{"id": h.id, "ts": h.start, "kind": "external", "target": h.label,
             "description": f"hypothesis from {h.author or 'a person'}: {h.label}",
             "scope": dict(h.slice), "rollout": np.nan, "author": h.author,
             "origin": PERSON, "until": h.end} for h in hyps]
    cols = list(dict.fromkeys(list(columns) + ["origin", "until"]))
    return pd.DataFrame(rows, columns=cols)


def with_people(changes: pd.DataFrame, hyps: Iterable[PersonHypothesis]) -> pd.DataFrame:
    """The change log with the hypotheses appended, every row with its ``origin``."""
    hyps = tuple(hyps)
    log = changes.assign(origin=CHANGE_LOG, until=pd.NaT)
    if not hyps:
        return log
    extra = as_change_rows(hyps, changes.columns)
    ts = pd.to_datetime(log["ts"], utc=True)
    tz = getattr(ts.dt, "tz", None)
    extra["ts"] = pd.to_datetime(extra["ts"], utc=True).dt.tz_convert(tz)
    extra["until"] = pd.to_datetime(extra["until"], utc=True).dt.tz_convert(tz)
    log["until"] = pd.Series(pd.NaT, index=log.index, dtype=extra["until"].dtype)
    both = pd.concat([log, extra.astype({c: log[c].dtype for c in ("origin",)})],
                     ignore_index=True)
    return both.sort_values(["ts", "id"], kind="stable").reset_index(drop=True)


def support_person(cause: dict, step) -> None:
    """Mark, in place, a person's hypothesis that leads an ``external`` verdict.

    The verdict caps every confidence below 0.5 (nothing in the log caused it);
    the hypothesis's posterior in the ranking (``posterior``) says how strongly
    the evidence supports the outside event the person named. At 0.5 or more
    it is ``supported`` and its step is ``step(kind, target, where=...)``
    (:func:`workbench.investigation.hypothesis.cause_step`).
    """
    if cause.get("origin") != PERSON or float(cause.get("posterior", 0.0)) < 0.5:
        return
    where = ", ".join(f"{k}={v}" for k, v in (cause.get("scope") or {}).items()) or "everywhere"
    cause["status"] = "supported"
    cause["next_step"] = step("external", cause["target"], where=where)
    cause["evidence"] = list(cause["evidence"]) + [
        f"the person's hypothesis holds {cause['posterior']:.0%} of the ranking's posterior: an "
        "outside event, not a change of the log (confidence is capped below 50% because no "
        "change caused it)"]


def origin_of(changes: pd.DataFrame) -> dict[str, str]:
    """``{change_id: origin}`` of a log made by :func:`with_people`."""
    if "origin" not in changes.columns:
        return {}
    return dict(zip(changes["id"].astype(str), changes["origin"]))


def window_end(changes: pd.DataFrame, change_id: str):
    """The window's end of a person's hypothesis (``None`` for a change of the log)."""
    if "until" not in changes.columns:
        return None
    hit = changes.loc[changes["id"].astype(str) == str(change_id), "until"]
    return None if hit.empty or pd.isna(hit.iloc[0]) else pd.Timestamp(hit.iloc[0])
