"""The passport manifest (``passport.yaml``): parse and validate it.

The format is the contract in ``shared/spec/passport.md``. Validation is strict
about what the spec requires and lenient about extra keys (the workbench may
accept more than the spec asks for). Every error is a :class:`PassportError`
naming ``passport.yaml`` and the key that is wrong.

Extensions over the spec (accepted, never required):

- ``files: {events: path, changes: path, ...}`` names the file of a table
  explicitly (relative to the passport directory).
- ``events`` may be a directory of batch files (``events/*.parquet|csv``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .._types import MetricSpec
from ..errors import PassportError
from ..store.sql import identifier_problem

MANIFEST = "passport.yaml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Manifest:
    """A validated ``passport.yaml``.

    Attributes
    ----------
    name, time_column, grain:
        As in the spec; ``grain_td`` is the grain as a ``pd.Timedelta``.
    dimensions:
        Dimension columns of ``events`` (strings; null is its own value).
    hierarchies:
        ``{coarse: fine}``: the coarse column (e.g. ``region``) is a roll-up of
        the fine dimension (``country``); both are columns of ``events``.
    measures:
        ``{name: {unit: ...}}``; all summable.
    metrics:
        ``{name: MetricSpec}``.
    """

    name: str
    time_column: str
    grain: str
    grain_td: pd.Timedelta
    dimensions: tuple[str, ...]
    hierarchies: dict[str, str]
    measures: dict[str, dict]
    metrics: dict[str, MetricSpec]
    pii: tuple[str, ...] = ()
    sources: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def all_dimensions(self) -> tuple[str, ...]:
        """Dimensions plus the coarse columns of hierarchies (region, ...)."""
        extra = tuple(c for c in self.hierarchies if c not in self.dimensions)
        return self.dimensions + extra

    def metric(self, name: str) -> MetricSpec:
        """The metric called ``name``; a located error listing the valid names."""
        try:
            return self.metrics[name]
        except KeyError:
            raise PassportError(
                f"metric '{name}' is not defined; defined metrics are: "
                + ", ".join(sorted(self.metrics)),
                file=MANIFEST,
            ) from None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "time_column": self.time_column, "grain": self.grain,
            "dimensions": list(self.dimensions), "hierarchies": dict(self.hierarchies),
            "measures": {k: dict(v) for k, v in self.measures.items()},
            "metrics": {k: _metric_to_yaml(m) for k, m in self.metrics.items()},
            "pii": list(self.pii), "sources": self.sources, "files": self.files,
        }


def _metric_to_yaml(m: MetricSpec) -> dict:
    d: dict[str, Any] = ({"sum": m.numerator} if m.kind == "sum"
                         else {"ratio": [m.numerator, m.denominator]})
    d["better"] = m.better
    if m.unit:
        d["unit"] = m.unit
    return d


def _err(msg: str, key: str | None = None) -> PassportError:
    return PassportError(msg if key is None else f"key '{key}': {msg}", file=MANIFEST)


def _column(name: object, key: str) -> str:
    """``name`` if it is a valid column name, else a located error naming ``key``."""
    problem = identifier_problem(name)
    if problem:
        raise _err(problem, key)
    return name  # type: ignore[return-value]


def _str_list(raw: dict, key: str, required: bool) -> tuple[str, ...]:
    v = raw.get(key)
    if v is None:
        if required:
            raise _err("is required: a list of column names", key)
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise _err(f"expected a list of column names, got {v!r}", key)
    if len(set(v)) != len(v):
        raise _err(f"names are repeated: {v}", key)
    return tuple(_column(x, key) for x in v)


def _plain(d: dict) -> dict:
    """YAML turns ISO times into datetimes; keep provenance as JSON-safe text."""
    import datetime as _dt

    out = {}
    for k, v in d.items():
        if isinstance(v, (_dt.datetime, _dt.date)):
            v = v.isoformat().replace("+00:00", "Z")
        out[str(k)] = v
    return out


def parse_grain(grain: Any) -> pd.Timedelta:
    """A pandas offset alias (``1h``, ``15min``, ``1D``) as a Timedelta."""
    try:
        td = pd.to_timedelta(pd.tseries.frequencies.to_offset(str(grain)))
    except (ValueError, TypeError):
        td = None
    if td is None or td <= pd.Timedelta(0):
        raise _err(f"expected a pandas offset alias such as 1h, 15min or 1D, got {grain!r}",
                   "grain")
    return td


def parse_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``DIRECTORY/passport.yaml``.

    Examples
    --------
    >>> m = parse_manifest("sample_data/demo")      # doctest: +SKIP
    >>> m.metric("conversion_rate").kind
    'ratio'
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise PassportError(f"no {MANIFEST} in {directory}; a passport directory needs one",
                            file=str(path))
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise _err("the file is empty; expected a YAML mapping with name, time_column, "
                   "grain, dimensions, measures and metrics")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if mark is None and getattr(exc, "position", None) is not None:
            where = f" at line {text.count(chr(10), 0, exc.position) + 1}"
        what = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        raise _err(f"is not valid YAML{where}: {' '.join(str(what).split())}") from None
    if not isinstance(raw, dict):
        raise _err(f"expected a YAML mapping at the top level, got {type(raw).__name__}")

    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(f"expected a name of letters, digits, '-', '_' or '.', got {name!r}", "name")
    time_column = raw.get("time_column", "ts")
    time_column = _column(time_column, "time_column")
    grain = str(raw.get("grain", "1h"))
    grain_td = parse_grain(grain)
    dimensions = _str_list(raw, "dimensions", required=True)
    if not dimensions:
        raise _err("needs at least one dimension", "dimensions")

    hier_raw = raw.get("hierarchies") or {}
    if not isinstance(hier_raw, dict):
        raise _err(f"expected a mapping coarse: fine, got {hier_raw!r}", "hierarchies")
    hierarchies: dict[str, str] = {}
    for coarse, fine in hier_raw.items():
        if not isinstance(fine, str) or fine not in dimensions:
            raise _err(f"'{coarse}: {fine}' must name a finer dimension among "
                       f"{', '.join(dimensions)}", "hierarchies")
        hierarchies[_column(coarse, "hierarchies")] = fine

    meas_raw = raw.get("measures")
    if isinstance(meas_raw, list):
        meas_raw = {_column(m, "measures"): {} for m in meas_raw}
    if not isinstance(meas_raw, dict) or not meas_raw:
        raise _err("is required: a mapping of numeric column -> {unit: ...}", "measures")
    measures = {_column(k, "measures"): (dict(v) if isinstance(v, dict) else {})
                for k, v in meas_raw.items()}
    overlap = set(measures) & (set(dimensions) | set(hierarchies))
    if overlap:
        raise _err(f"{sorted(overlap)} are both dimensions and measures", "measures")

    met_raw = raw.get("metrics")
    if not isinstance(met_raw, dict) or not met_raw:
        raise _err("is required: a mapping of name -> {sum: MEASURE} or "
                   "{ratio: [NUMERATOR, DENOMINATOR]}", "metrics")
    metrics: dict[str, MetricSpec] = {}
    for mname, spec in met_raw.items():
        key = f"metrics.{mname}"
        if not isinstance(spec, dict):
            raise _err("expected {sum: MEASURE} or {ratio: [NUMERATOR, DENOMINATOR]}", key)
        better = spec.get("better", "higher")
        if better not in ("higher", "lower"):
            raise _err(f"'better' must be higher or lower, got {better!r}", key)
        if ("sum" in spec) == ("ratio" in spec):
            raise _err("expected exactly one of sum: MEASURE or ratio: [NUMERATOR, DENOMINATOR]",
                       key)
        if "sum" in spec:
            num, den, kind = spec["sum"], None, "sum"
            used = [num]
        else:
            r = spec["ratio"]
            if not (isinstance(r, list) and len(r) == 2):
                raise _err(f"ratio must be [NUMERATOR, DENOMINATOR], got {r!r}", key)
            num, den, kind = r[0], r[1], "ratio"
            used = [num, den]
        for u in used:
            if not isinstance(u, str) or u not in measures:
                raise _err(f"uses '{u}', which is not a measure; measures are: "
                           + ", ".join(measures), key)
        unit = spec.get("unit") or measures.get(num, {}).get("unit")
        metrics[str(mname)] = MetricSpec(str(mname), kind, num, den, better, unit)

    pii = _str_list(raw, "pii", required=False)
    sources = raw.get("sources") or {}
    if not isinstance(sources, dict):
        raise _err(f"expected a mapping table -> {{origin: ...}}, got {sources!r}", "sources")
    sources = {str(k): (_plain(v) if isinstance(v, dict) else {"origin": str(v)})
               for k, v in sources.items()}
    files = raw.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise _err("expected a mapping table -> relative file path", "files")
    return Manifest(name=name, time_column=time_column, grain=grain, grain_td=grain_td,
                    dimensions=dimensions, hierarchies=hierarchies, measures=measures,
                    metrics=metrics, pii=pii, sources=sources, files=dict(files), raw=raw)
