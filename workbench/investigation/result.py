"""The answer of an investigation: frozen, typed, one JSON encoder, one time format.

:class:`Investigation` is what :func:`~workbench.investigation.investigate`
returns. It is assembled once, at the end of a run, and never edited after:
a dataclass with ``frozen=True`` whose parts are read-only mappings with typed
attributes (:class:`Divergence`, :class:`SliceFinding`, :class:`Cause`,
:class:`QualityFinding`). A part reads both ways, ``cause.confidence`` and
``cause["confidence"]``, so notebooks saved before the answer was typed still
run. Times in the answer are written one way, ISO 8601 in UTC ending in ``Z``
(:func:`workbench._format.iso`): the analysis packages hand over times as
timestamps or ``+00:00`` strings, and the parts rewrite them when made.

Where an answer is kept (its investigation id and version in the library, the
decisions recorded on it, when its top cause was first shown) is not part of
the analysis and changes after the run: it lives in a separate, explicitly
mutable :class:`LibraryRecord` (``inv.record``) that the library updates, with
the old attribute names (``inv.investigation_id``, ``inv.artifact``...) as
read-only views of it.

The answer's fields follow the JSON answer of ``shared/spec/passport.md``
(golden test: ``tests/investigation/test_golden.py``).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

from .._format import json_default, jsonable

__all__ = ["Cause", "Divergence", "Investigation", "LibraryRecord", "Part", "QualityFinding",
           "SliceFinding"]


def _read_only(self, *args, **kwargs):
    raise TypeError(f"{type(self).__name__} is read-only: an investigation's answer is never "
                    "edited")


class Part(dict):
    """A read-only dict with typed attributes: one piece of the answer.

    Made from a mapping (copied, times rewritten in the one format); neither
    its keys nor its attributes can be assigned. It stays a ``dict`` so that
    code and saved notebooks that index it, test ``isinstance(x, dict)`` or
    ``json.dumps`` it keep working. ``to_dict()`` gives a plain, independent copy.
    """

    __slots__ = ()

    def __init__(self, data: Mapping | None = None, /, **extra: Any) -> None:
        super().__init__(jsonable({**dict(data or {}), **extra}))

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}: an "
                                              "investigation's answer is never edited")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def __reduce__(self):  # pickle and copy by value (not item by item)
        return (type(self), (dict(self),))

    def to_dict(self) -> dict:
        """A plain, independent copy."""
        return copy.deepcopy(dict(self))


def _key(name: str, doc: str) -> property:
    return property(lambda self: self.get(name), doc=doc)


class Divergence(Part):
    """The divergence found: when, how much, how sure, and against which baseline."""

    __slots__ = ()
    onset: str | None = _key("onset", "ISO time the divergence began (None: none found)")
    window: list | None = _key("window", "[onset, end] of the window investigated")
    baseline: float | None = _key("baseline", "the metric expected over the window")
    observed: float | None = _key("observed", "the metric observed over the window")
    relative_change: float | None = _key("relative_change", "observed / baseline - 1")
    score: float | None = _key("score", "the detector's score")
    p_value: float | None = _key("p_value", "the detector's p-value")
    onset_source: str | None = _key("onset_source", "what dated the onset")
    scope: dict | None = _key("scope", "the slice the divergence was found in, if not total")
    late_data: dict | None = _key("late_data", "the incomplete last hours cut before judging "
                                  "(start, end, buckets, hours, expected_rows, observed_rows, "
                                  "missing_share, message); None when the feed is complete")
    model: dict | None = _key("model", "the streaming model of the metric (workbench retrain): "
                              "id, version, fitted_at, age_hours, max_age_hours, stale, "
                              "reasons, drift_test; None when the metric was never retrained")


class SliceFinding(Part):
    """A slice that explains part of the divergence."""

    __slots__ = ()
    filter: dict = _key("filter", "the slice: dimension -> value")
    explained_share: float | None = _key("explained_share", "share of the divergence explained")
    baseline: float | None = _key("baseline", "the slice's metric before")
    observed: float | None = _key("observed", "the slice's metric during the divergence")
    source: str | None = _key("source", "how the slice was found, when not the lattice search")


class Cause(Part):
    """A change of the log as a hypothesis: confidence, evidence, status, next step."""

    __slots__ = ()
    change_id: str = _key("change_id", "the change's id in the change log")
    kind: str = _key("kind", "flag, deploy, config, infra, experiment, external")
    target: str = _key("target", "what the change changed")
    ts: str = _key("ts", "ISO time of the change")
    scope: dict | None = _key("scope", "where the change applies")
    confidence: float = _key("confidence", "posterior probability of being the cause")
    evidence: list = _key("evidence", "the evidence, one sentence each")
    status: str | None = _key("status", "supported, open or refuted")
    tests: list = _key("tests", "the tests run on the hypothesis")
    next_step: str | None = _key("next_step", "what to do about it")
    own_effect: bool | None = _key("own_effect", "does its own comparison against its "
                                   "unexposed siblings exclude zero (None: not tested)")
    siblings: dict | None = _key("siblings", "the comparison against the unexposed siblings "
                                 "in the slice: the slice and its effect estimate, when made")


class QualityFinding(Part):
    """A data-quality finding and what it puts at risk."""

    __slots__ = ()
    check: str = _key("check", "completeness, duplicates, srm, ...")
    severity: str = _key("severity", "info, warning or error")
    detail: str = _key("detail", "what was found")
    bearing: str | None = _key("bearing", "what it means for this divergence")


@dataclass
class LibraryRecord:
    """Where an answer is kept: mutable on purpose, updated by the library.

    Saving fills ``investigation_id``, ``version``, ``library``, ``artifact`` and
    ``similar``; confirming or refuting a hypothesis appends to ``decisions``;
    the clock records when the answer was loaded and its top cause first shown.
    """

    investigation_id: str | None = None
    version: int | None = None
    library: str | None = None
    artifact: str | None = None
    based_on: str | None = None
    similar: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    clock: dict = field(default_factory=dict)


def _frozen_map(d: Mapping | None) -> Part:
    return Part(d)


@dataclass(frozen=True, eq=False)
class Investigation:
    """The result of :func:`investigate`: everything the answer is made of.

    ``to_dict()`` is the JSON answer of the spec (extended with extra keys);
    :func:`~workbench.investigation.render.summary` (``inv.summary()``) is the
    readable table the CLI prints. Lists come out as tuples of parts and
    mappings as read-only views; the analysis objects (``series``,
    ``detection``, ``localization``, ``ranking``, ``verification``) are kept
    as the analysis packages made them.
    """

    passport: str
    metric: str
    metric_kind: str
    better: str
    verdict: str
    divergence: Divergence
    slices: tuple[SliceFinding, ...]
    causes: tuple[Cause, ...]
    data_quality: tuple[QualityFinding, ...]
    rate_mix: Mapping | None
    provenance: tuple[Mapping, ...]
    queries: Mapping[str, str]
    db: str
    external: float | None = None
    baseline: Mapping = field(default_factory=dict)
    timings: Mapping = field(default_factory=dict)
    params: Mapping = field(default_factory=dict)
    series: pd.DataFrame | None = field(default=None, repr=False)
    detection: Any = field(default=None, repr=False)
    localization: Any = field(default=None, repr=False)
    ranking: Any = field(default=None, repr=False)
    passport_dir: str | None = None
    # DoWhy verification of the top causes (workbench.causal.VerificationReport), or None
    verification: Any = field(default=None, repr=False)
    #: where the answer is kept (see :class:`LibraryRecord`); a copy made with
    #: ``dataclasses.replace`` gets its own copy of it
    record: LibraryRecord | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("divergence", Divergence(self.divergence))
        put("slices", tuple(SliceFinding(s) for s in self.slices or ()))
        put("causes", tuple(Cause(c) for c in self.causes or ()))
        put("data_quality", tuple(QualityFinding(f) for f in self.data_quality or ()))
        put("rate_mix", None if self.rate_mix is None else _frozen_map(self.rate_mix))
        put("provenance", tuple(_frozen_map(p) for p in self.provenance or ()))
        for name in ("queries", "baseline", "timings", "params"):
            put(name, _frozen_map(getattr(self, name)))
        put("record", LibraryRecord() if self.record is None else copy.deepcopy(self.record))

    def __copy__(self) -> "Investigation":
        """A copy with its own :class:`LibraryRecord` (saving one does not move the other)."""
        return dataclasses.replace(self)

    # ---------------------------------------------------------------- library views
    investigation_id = property(lambda self: self.record.investigation_id,
                                doc="the investigation's id in the library (None: not saved)")
    version = property(lambda self: self.record.version, doc="the version saved last")
    library = property(lambda self: self.record.library, doc="the library folder")
    artifact = property(lambda self: self.record.artifact, doc="the saved notebook")
    based_on = property(lambda self: self.record.based_on, doc="the version it re-runs")
    similar = property(lambda self: tuple(self.record.similar),
                       doc="similar past investigations")
    decisions = property(lambda self: tuple(self.record.decisions),
                         doc="confirm/refute decisions recorded on it")
    clock = property(lambda self: MappingProxyType(self.record.clock),
                     doc="when it was loaded, when its top cause was first shown")

    @property
    def top_cause(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def to_dict(self) -> dict:
        """The JSON answer: plain values, one time format."""
        return jsonable({
            "metric": self.metric,
            "divergence": self.divergence,
            "verdict": self.verdict,
            "slices": self.slices,
            "causes": self.causes,
            "data_quality": self.data_quality,
            "artifact": self.artifact,
            "passport": self.passport,
            "rate_mix": self.rate_mix,
            "baseline": self.baseline,
            "external": self.external,
            "provenance": self.provenance,
            "queries": self.queries,
            "next_step": self.params.get("next_step"),
            "params": self.params,
            "timings": self.timings,
            "investigation": {"id": self.investigation_id, "version": self.version},
            "similar": [s.to_dict() for s in self.similar],
            "verification": None if self.verification is None else self.verification.to_dict(),
        })

    def to_json(self, **kw) -> str:
        """The JSON answer as text (``json.dumps`` keywords pass through)."""
        return json.dumps(self.to_dict(), default=json_default, **kw)

    def to_frame(self) -> pd.DataFrame:
        """Ranked causes as a frame (the hypothesis table)."""
        return pd.DataFrame([c.to_dict() for c in self.causes])

    def summary(self) -> str:
        """The readable table the CLI prints (no side effect; see ``render.summary``)."""
        from .render import summary

        return summary(self)

    def save(self, message: str, *, author: str | None = None, root=None):
        """Save as a new immutable version in the investigations library.

        Returns the :class:`~workbench.investigation.library.VersionInfo`
        (``inv-...@vNNNN``); see :func:`~workbench.investigation.library.save_investigation`.
        """
        from .library import save_investigation

        return save_investigation(self, message=message, author=author, root=root)

    def confirm(self, change_id: str, *, note: str | None = None, author: str | None = None):
        """Confirm a hypothesis: journaled, audited, carried by the next save."""
        from .library import decide

        return decide(self, change_id, "confirmed", note=note, author=author)

    def refute(self, change_id: str, *, note: str | None = None, author: str | None = None):
        """Refute a hypothesis: journaled, audited, carried by the next save."""
        from .library import decide

        return decide(self, change_id, "refuted", note=note, author=author)

    def __repr__(self) -> str:  # a readable repr in notebooks and the REPL
        top = self.top_cause
        top_s = f"{top.change_id} {top.confidence:.0%}" if top else None
        return (f"<Investigation {self.metric} verdict={self.verdict} "
                f"onset={self.divergence.get('onset')} top={top_s}>")
