"""Which service (node) caused an anomaly: robust scoring, then the call graph.

:func:`rank_root_causes` takes metrics of the nodes of a system (one column per
metric, rows in time order), the time the anomaly started and, optionally, the
call graph and the metric whose anomaly is to be explained (the *target*, e.g.
the front end's latency SLO). It returns the nodes ranked as root causes.

The method, in three steps:

1. **Robust scoring against the normal period** (BARO, Pham et al. FSE 2024;
   N-Sigma as its non-robust ancestor). Every metric is scored per row as
   ``(x - median) / scale`` where the median and the scale come from the
   normal period: the rows of ``metrics`` before ``anomaly_start`` plus the
   optional ``baseline`` rows (normal operation recorded at another time).
   The scale is ``1.4826 * MAD`` (median absolute deviation), floored at
   ``rel_floor`` times the median's magnitude. BARO scales by the IQR; the
   MAD is used here because it breaks down at 50% contamination where the
   IQR breaks down at 25%: when the given ``anomaly_start`` is late (the
   first minutes of the fault are counted as normal), the normal period
   holds anomalous rows, and mean/standard deviation (N-Sigma) or the IQR
   are pulled towards them while the median and MAD are not (measured: the
   Sock Shop ranking stays exact with 120 s of fault counted as normal, where
   IQR scaling collapses). The floor keeps near-constant metrics (memory in
   bytes) from turning jitter into enormous scores: a change smaller than ~1%
   of a metric's usual level is not evidence. A metric at 0 most of the
   normal time (an error rate) falls back to its mean absolute deviation. A
   metric's score is its largest (oriented) row score over the analysed
   rows; a node's score is that of its most anomalous metric.
2. **Alignment with the target** (the idea of the PetShop paper's ranked
   correlation baseline, Hardt et al. CLeaR 2024, made robust). With a
   target, only rows from ``anomaly_start`` on where the target itself
   scores at least ``target_threshold`` are analysed; if there are none, no
   root cause is returned (the alarm is not confirmed). Each metric's median
   score over the window's rows where the target is quiet is subtracted: a
   node broken before and regardless of the incident, or a noisy one, is not
   the root cause of a new anomaly, which must change with the target.
3. **Propagation along the call graph** (the anomaly traversal of the
   PetShop paper and of MicroHECL, Liu et al. ICSE-SEIP 2021; CIRCA's
   descendant adjustment, Li et al. KDD 2022, in spirit). Latency and errors
   travel from callee to caller, and add up: a caller's deviation is its own
   plus, per callee, the callee's deviation times the calls per request (the
   graph's edge weights; :func:`call_weights` estimates them from request
   counts). With a graph and a target, the candidates are the target's node
   and every node it calls, directly or not. An anomalous candidate whose
   anomalous callees account for at least ``explained_share`` of its
   deviation is *propagated*: it ranks below every *origin* (an anomalous
   candidate not so explained). An anomalous node the target reaches only
   through normal callers is *unconnected*: its anomaly cannot have travelled
   up to the target, so it is not a root cause of it. Nodes without data are
   transparent. Within a kind, nodes rank by score. Pass error rates
   (``100 - availability``) rather than success rates: they add up along
   calls and sit at 0 in normal operation.

Not used, with the reasons: causal discovery (RCD, Ikram et al. NeurIPS
2022), CIRCA's regression-based hypothesis testing and epsilon-Diagnosis
score Avg@5 0.50-0.80 on the Sock Shop faults in RCAEval's comparison (Pham
et al. ASE 2024), below plain robust scoring; random walks over a
correlation-weighted graph (MicroRCA, Wu et al. NOMS 2020; MicroCause, Meng
et al. IWQoS 2020) and per-node regressions need more anomalous rows than
the PetShop issues have (two or three 5-minute rows). DoWhy's
``gcm.attribute_anomalies`` (Budhathoki et al. ICML 2022) rejects the
PetShop availability targets and takes minutes per latency case there.

:func:`rank_changes_by_root_cause` turns the node ranking into a ranking of
the changes of a change log (each change with the node it touches and,
optionally, the kind of effect it can have).

References
----------
Pham, L., Ha, H. and Zhang, H. (2024). BARO: Robust root cause analysis for
microservices via multivariate Bayesian online change point detection. *FSE*.
Pham, L., Ha, H. and Zhang, H. (2024). Root cause analysis for microservices
based on causal inference: how far are we? *ASE*.
Hardt, M., Orchard, W., Bloebaum, P., Kasiviswanathan, S. and Kirschbaum, E.
(2024). The PetShop dataset - finding causes of performance issues across
microservices. *CLeaR*.
Li, M. et al. (2022). Causal inference-based root cause analysis for online
service systems with intervention recognition (CIRCA). *KDD*.
Rousseeuw, P. J. and Croux, C. (1993). Alternatives to the median absolute
deviation. *JASA* 88(424) (breakdown points of the MAD and the IQR).
Liu, D. et al. (2021). MicroHECL: high-efficient root cause localization in
large-scale microservice systems. *ICSE-SEIP*.
Ikram, A. et al. (2022). Root cause analysis of failures in microservices
through causal discovery (RCD). *NeurIPS*.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from workbench.causal.graph_rca import rank_root_causes
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame(rng.normal(1.0, 0.05, (120, 3)), columns=["web", "api", "db"])
>>> df.loc[100:, "db"] += 1.0                     # the database slows down ...
>>> df.loc[100:, "api"] += 1.0                    # ... the API waits for it ...
>>> df.loc[100:, "web"] += 1.0                    # ... and so does the web front end
>>> res = rank_root_causes(df, anomaly_start=100, target="web",
...                        graph={"web": ["api"], "api": ["db"]})
>>> res.root_causes[0]
'db'
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UsageError

_MAD_TO_SD = 1.4826
_KINDS = ("origin", "propagated", "unconnected", "normal", "no data")
_ANOMALOUS = ("origin", "propagated")


@dataclass(frozen=True)
class GraphRCAConfig:
    """Tuning of :func:`rank_root_causes`.

    Attributes
    ----------
    threshold:
        Robust score (in normal-period standard deviations) from which a node
        counts as anomalous (a root cause, a link of a propagation path, a
        callee that explains its caller).
    target_threshold:
        Score from which the target counts as anomalous: rows where it is below
        are not analysed, and without any such row no root cause is returned.
        Lower than ``threshold`` because the target comes with an alarm.
    explained_share:
        An anomalous node is *propagated* when its anomalous callees account
        for at least this share of its deviation. Latency and error rates add
        up along calls: a caller's deviation is its own plus, per callee, the
        callee's deviation times the calls per request (the graph's edge
        weights, 1 by default; :func:`call_weights` estimates them from
        request counts). So a callee 10 ms slower does not explain a caller
        500 ms slower. Deviations are compared in the metrics' units, which
        assumes callers and callees report the same kind of metric; set 0 to
        treat any anomalous callee as an explanation.
    quiet_level:
        How a metric's level in the target's quiet rows is summarised before
        it is subtracted: ``min``, ``median`` or ``max``.
    rel_floor:
        The scale of a metric is at least ``rel_floor * |median|``.
    min_normal:
        Metrics with fewer non-missing normal values are not scored.
    max_rows:
        Analyse at most this many rows from ``anomaly_start`` on (``None``: all).
    align_with_target:
        Subtract from each metric its level in the window's rows where the
        target is quiet (step 2 of the module docstring).
    explain_away:
        Rank anomalous nodes with an anomalous callee below the others (step 3).
    """

    threshold: float = 5.0
    target_threshold: float = 2.0
    explained_share: float = 0.5
    quiet_level: str = "median"
    rel_floor: float = 0.01
    min_normal: int = 10
    max_rows: int | None = None
    align_with_target: bool = True
    explain_away: bool = True

    def __post_init__(self):
        for name in ("threshold", "target_threshold"):
            if not getattr(self, name) > 0:
                raise UsageError(f"GraphRCAConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.explained_share < 0:
            raise UsageError("GraphRCAConfig.explained_share must be >= 0, got "
                             f"{self.explained_share!r}")
        if self.quiet_level not in ("min", "median", "max"):
            raise UsageError(f"GraphRCAConfig.quiet_level must be 'min', 'median' or 'max', got "
                             f"{self.quiet_level!r}")
        if self.rel_floor < 0:
            raise UsageError(f"GraphRCAConfig.rel_floor must be >= 0, got {self.rel_floor!r}")
        if self.min_normal < 2:
            raise UsageError(f"GraphRCAConfig.min_normal must be >= 2, got {self.min_normal!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise UsageError(f"GraphRCAConfig.max_rows must be >= 1 or None, got {self.max_rows!r}")


@dataclass(frozen=True)
class RootCauseCandidate:
    """One node of the ranking.

    ``kind`` is ``origin`` (anomalous, no anomalous callee), ``propagated``
    (anomalous, explained by ``explained_by``), ``normal`` or ``no data``;
    ``score`` is the robust score of the node's most anomalous ``metric``.
    """

    node: str
    rank: int
    kind: str
    score: float
    metric: str | None
    explained_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphRCAResult:
    """Nodes ranked as root causes, best first.

    ``candidates`` holds every node eligible as a root cause, ranked, normal
    ones included. :attr:`root_causes` holds the anomalous ones that can have
    caused the target's anomaly (kinds ``origin``, then ``propagated``;
    ``unconnected`` anomalies are left out); it is empty
    when a target was given and was not anomalous in the analysed rows (no
    incident to explain).
    """

    candidates: tuple[RootCauseCandidate, ...]
    target: str | None
    target_score: float | None
    target_anomalous: bool
    anomaly_start: object
    rows_analysed: tuple
    n_normal: int
    metric_scores: Mapping[str, float] = field(repr=False)
    config: GraphRCAConfig = field(repr=False)
    seconds: float = 0.0

    @property
    def root_causes(self) -> tuple[str, ...]:
        """Ranked node names; empty when the target's anomaly is not confirmed."""
        if self.target is not None and not self.target_anomalous:
            return ()
        return tuple(c.node for c in self.candidates if c.kind in _ANOMALOUS)

    def top(self, k: int = 1) -> tuple[str, ...]:
        return self.root_causes[:k]

    def rank_of(self, node: str) -> int | None:
        """1-based rank of ``node`` among :attr:`root_causes` (``None`` if absent)."""
        try:
            return self.root_causes.index(node) + 1
        except ValueError:
            return None

    def to_frame(self) -> pd.DataFrame:
        rows = [{"rank": c.rank, "node": c.node, "kind": c.kind, "score": c.score,
                 "metric": c.metric, "explained_by": ", ".join(c.explained_by)}
                for c in self.candidates]
        return pd.DataFrame(rows, columns=["rank", "node", "kind", "score", "metric",
                                           "explained_by"])

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None or not np.isfinite(v) else float(v)

        return {"target": self.target, "target_score": num(self.target_score),
                "target_anomalous": self.target_anomalous,
                "anomaly_start": str(self.anomaly_start),
                "rows_analysed": [str(r) for r in self.rows_analysed],
                "n_normal": self.n_normal, "root_causes": list(self.root_causes),
                "candidates": [{"node": c.node, "rank": c.rank, "kind": c.kind,
                                "score": num(c.score), "metric": c.metric,
                                "explained_by": list(c.explained_by)}
                               for c in self.candidates],
                "seconds": round(self.seconds, 4)}


# --------------------------------------------------------------------------- input


def _as_adjacency(graph) -> dict[str, dict[str, float]]:
    """Caller -> {callee: calls per request}, from a mapping, an adjacency DataFrame or pairs.

    A mapping's value is either callees (weight 1) or a mapping callee -> weight; a
    DataFrame's non-zero cell is the weight of row -> column; pairs are
    ``(caller, callee)`` or ``(caller, callee, weight)``.
    """
    adj: dict[str, dict[str, float]] = {}

    def add(a, b, w=1.0):
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise UsageError(f"graph edge {a!r} -> {b!r} has a non-numeric weight {w!r}") from None
        if not (np.isfinite(w) and w >= 0):
            raise UsageError(f"graph edge {a!r} -> {b!r} has weight {w!r}; weights (calls per "
                             "request) must be finite and >= 0")
        adj.setdefault(str(a), {})[str(b)] = w

    if isinstance(graph, pd.DataFrame):
        if list(graph.index) != list(graph.columns):
            missing = sorted(set(map(str, graph.index)) ^ set(map(str, graph.columns)))
            raise UsageError("an adjacency-matrix graph needs the same nodes as rows and "
                             f"columns (row calls column); these are on one side only: "
                             f"{', '.join(missing[:10])}")
        vals = graph.to_numpy(dtype=float)
        for i, a in enumerate(graph.index):
            adj.setdefault(str(a), {})
            for j, b in enumerate(graph.columns):
                if vals[i, j] != 0 and not np.isnan(vals[i, j]):
                    add(a, b, vals[i, j])
        return adj
    if isinstance(graph, Mapping):
        for a, callees in graph.items():
            adj.setdefault(str(a), {})
            if isinstance(callees, Mapping):
                for b, w in callees.items():
                    add(a, b, w)
            else:
                for b in ([callees] if isinstance(callees, str) else callees):
                    add(a, b)
        return adj
    try:
        for edge in graph:
            if isinstance(edge, str) or len(edge) not in (2, 3):
                raise ValueError
            add(*edge)
    except (TypeError, ValueError):
        raise UsageError("graph must be a mapping caller -> callees, an adjacency DataFrame "
                         "(row calls column) or an iterable of (caller, callee[, weight]) pairs; "
                         f"got {type(graph).__name__}") from None
    return adj


def call_weights(graph, requests: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Weight each call edge by callee requests / caller requests (calls per request).

    ``requests`` holds a typical request count per node (e.g. the median over the
    normal period). The ratio overstates the calls per request of a caller when the
    callee has other callers too; an edge with a missing or zero count keeps weight 1.
    """
    adj = _as_adjacency(graph)
    out: dict[str, dict[str, float]] = {}
    for a, callees in adj.items():
        out[a] = {}
        for b, w in callees.items():
            ra, rb = requests.get(a), requests.get(b)
            ok = ra is not None and rb is not None and np.isfinite(ra) and np.isfinite(rb) and ra > 0
            out[a][b] = float(rb / ra) if ok else w
    return out


def _descendants(adj: Mapping[str, set[str]], node: str) -> set[str]:
    seen: set[str] = set()
    todo = [node]
    while todo:
        for b in adj.get(todo.pop(), ()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _node_mapper(node_of, columns) -> dict[str, str]:
    if node_of is None:
        return {c: c for c in columns}
    if isinstance(node_of, Mapping):
        missing = [c for c in columns if c not in node_of]
        if missing:
            raise UsageError(f"node_of has no node for columns {', '.join(map(str, missing[:10]))}; "
                             "give a node for every column of metrics")
        return {c: str(node_of[c]) for c in columns}
    if callable(node_of):
        return {c: str(node_of(c)) for c in columns}
    raise UsageError(f"node_of must be a mapping or a callable, got {type(node_of).__name__}")


def _check_frame(df, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"{what} must be a pandas DataFrame (rows in time order, one column "
                         f"per metric), got {type(df).__name__}")
    if df.empty or df.shape[1] == 0:
        raise UsageError(f"{what} is empty ({df.shape[0]} rows, {df.shape[1]} columns)")
    if df.columns.duplicated().any():
        dup = sorted(map(str, df.columns[df.columns.duplicated()].unique()))
        raise UsageError(f"{what} has duplicated columns: {', '.join(dup[:10])}")
    bad = [str(c) for c, dt in df.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)
           or pd.api.types.is_bool_dtype(dt)]
    if bad:
        raise UsageError(f"{what} has non-numeric columns {', '.join(bad[:10])}; pass only "
                         "metric columns (put time in the index)")
    if not df.index.is_monotonic_increasing:
        df = df.sort_index(kind="stable")
    return df


# --------------------------------------------------------------------------- method


def _robust_center_scale(normal: np.ndarray, rel_floor: float, min_normal: int):
    """Column medians and scales (1.4826 MAD floored at rel_floor*|median|); NaN if too few."""
    n_ok = np.sum(~np.isnan(normal), axis=0)
    med = np.full(normal.shape[1], np.nan)
    scale = np.full(normal.shape[1], np.nan)
    ok = n_ok >= min_normal
    if ok.any():
        sub = normal[:, ok]
        m = np.nanmedian(sub, axis=0)
        mad = _MAD_TO_SD * np.nanmedian(np.abs(sub - m), axis=0)
        floor = rel_floor * np.abs(m)
        s = np.maximum(mad, floor)
        # a metric constant at 0 in the normal period: any departure is news; its
        # scale falls back to the mean absolute deviation, then to a tiny number
        zero = ~(s > 0)
        if zero.any():
            mean_abs = np.nanmean(np.abs(sub[:, zero] - m[zero]), axis=0)
            s[zero] = np.where(mean_abs > 0, mean_abs, 1e-9)
        med[ok], scale[ok] = m, s
    return med, scale


def _peak(x: np.ndarray) -> np.ndarray:
    """Column maxima ignoring NaN (NaN for an all-NaN or empty column)."""
    if x.shape[0] == 0:
        return np.full(x.shape[1], np.nan)
    ok = ~np.isnan(x).all(axis=0)
    out = np.full(x.shape[1], np.nan)
    out[ok] = np.nanmax(x[:, ok], axis=0)
    return out


def _quiet_level(x: np.ndarray, how: str) -> np.ndarray:
    """How anomalous each column already is in the target's quiet rows, clipped at 0;
    0 for a column without data there."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1])
    ok = ~np.isnan(x).all(axis=0)
    out = np.zeros(x.shape[1])
    f = {"min": np.nanmin, "median": np.nanmedian, "max": np.nanmax}[how]
    out[ok] = np.clip(f(x[:, ok], axis=0), 0, None)
    return out


def rank_root_causes(metrics: pd.DataFrame, *, anomaly_start, baseline: pd.DataFrame | None = None,
                     graph=None, target: str | None = None,
                     node_of: Mapping[str, str] | Callable[[str], str] | None = None,
                     direction: int | Mapping[str, int] = 0,
                     candidates: Iterable[str] | None = None,
                     config: GraphRCAConfig | None = None) -> GraphRCAResult:
    """Rank the nodes of a system as root causes of an anomaly.

    Parameters
    ----------
    metrics:
        One column per metric, rows in time order (the index: timestamps or
        numbers). Rows before ``anomaly_start`` are normal operation; rows from
        it on are analysed.
    anomaly_start:
        Index label where the anomaly starts (as detected: it may be late).
        Must lie within the index of ``metrics``.
    baseline:
        Optional normal-operation rows recorded at another time, with the same
        columns (extra columns are ignored). Added to the normal period.
    graph:
        Optional call graph: a mapping caller -> callees, an adjacency
        DataFrame (row calls column) or (caller, callee) pairs. Used with a
        ``target`` (step 3 of the module docstring).
    target:
        Optional column whose anomaly is explained (an SLO metric). Without it
        every metric's anomaly counts and no root cause is ever withheld.
    node_of:
        Maps a column to its node (service); a mapping or a callable. Default:
        each column is its own node.
    direction:
        Which deviations count: ``+1`` increases, ``-1`` decreases, ``0``
        both; one value for all columns or a mapping column -> value
        (columns left out: ``0``).
    candidates:
        Optional nodes eligible as root causes (e.g. instrumented services
        only). Other nodes still explain their callers' anomalies.
    config:
        :class:`GraphRCAConfig`.

    Returns
    -------
    GraphRCAResult
        ``.root_causes`` (ranked node names), ``.candidates`` (with kind, score
        and explaining callees), ``.to_frame()``.

    Raises
    ------
    UsageError
        Missing columns, ``anomaly_start`` outside the data, no normal rows,
        an unknown target or candidate, a target node absent from the graph.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame(rng.normal(10, 1, (200, 2)), columns=["a_cpu", "b_cpu"])
    >>> df.loc[150:, "b_cpu"] += 30
    >>> rank_root_causes(df, anomaly_start=150, node_of=lambda c: c.split("_")[0]).top(1)
    ('b',)
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else GraphRCAConfig()
    if not isinstance(cfg, GraphRCAConfig):
        raise UsageError(f"config must be a GraphRCAConfig, got {type(cfg).__name__}")
    metrics = _check_frame(metrics, "metrics")
    columns = list(metrics.columns)
    if baseline is not None:
        baseline = _check_frame(baseline, "baseline")
        missing = [str(c) for c in columns if c not in baseline.columns]
        if missing:
            raise UsageError(f"baseline has no column {', '.join(missing[:10])}"
                             f"{' ...' if len(missing) > 10 else ''} of metrics; baseline needs "
                             "the same metric columns (extra ones are ignored)")
    if target is not None and target not in columns:
        raise UsageError(f"target {target!r} is not a column of metrics; columns are: "
                         f"{', '.join(map(str, columns[:20]))}{' ...' if len(columns) > 20 else ''}")
    if isinstance(direction, Mapping):
        unknown = [str(c) for c in direction if c not in columns]
        if unknown:
            raise UsageError(f"direction names columns not in metrics: {', '.join(unknown[:10])}")
        sign = np.array([float(direction.get(c, 0)) for c in columns])
    else:
        sign = np.full(len(columns), float(direction))
    if not np.isin(sign, (-1.0, 0.0, 1.0)).all():
        raise UsageError("direction must be +1 (increases), -1 (decreases) or 0 (both), "
                         f"got {direction!r}")

    # ---- split into normal and analysed rows
    index = metrics.index
    try:
        if isinstance(index, pd.DatetimeIndex) and not isinstance(anomaly_start, pd.Timestamp):
            anomaly_start = pd.Timestamp(anomaly_start)
        lo, hi = index[0], index[-1]
        outside = anomaly_start < lo or anomaly_start > hi
    except (TypeError, ValueError):
        raise UsageError(f"anomaly_start {anomaly_start!r} cannot be compared with the index of "
                         f"metrics ({index.dtype}); give a value of the same kind") from None
    if outside:
        raise UsageError(f"anomaly_start {anomaly_start!r} is outside the data: metrics runs from "
                         f"{lo!r} to {hi!r}; pass the time the anomaly started, within that range")
    start = int(index.searchsorted(anomaly_start, side="left"))
    stop = len(index) if cfg.max_rows is None else min(len(index), start + cfg.max_rows)
    values = metrics.to_numpy(dtype=float)
    pre, post = values[:start], values[start:stop]
    normal = pre if baseline is None else np.vstack(
        [baseline[columns].to_numpy(dtype=float), pre])
    if normal.shape[0] < cfg.min_normal:
        raise UsageError(f"only {normal.shape[0]} normal rows before anomaly_start {anomaly_start!r}"
                         f" (need at least {cfg.min_normal}); start later or pass baseline=")

    # ---- step 1: robust scores per row, oriented
    med, scale = _robust_center_scale(normal, cfg.rel_floor, cfg.min_normal)
    dev_all = values - med
    dev_all = np.where(sign == 0, np.abs(dev_all), np.clip(dev_all * sign, 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        z_all = dev_all / scale
    z_post, dev_post = z_all[start:stop], dev_all[start:stop]

    # ---- step 2: rows to analyse, alignment with the target
    rows = np.arange(z_post.shape[0])
    target_score = None
    target_anomalous = True
    quiet_z = np.zeros(len(columns))
    quiet_dev = np.zeros(len(columns))
    if target is not None:
        ti = columns.index(target)
        tz = np.nan_to_num(z_post[:, ti], nan=0.0)
        target_score = float(tz.max()) if len(tz) else float("nan")
        rows = np.flatnonzero(tz >= cfg.target_threshold)
        target_anomalous = len(rows) > 0
        if cfg.align_with_target:
            quiet = np.flatnonzero(np.nan_to_num(z_all[:stop, ti], nan=0.0) < cfg.target_threshold)
            if len(quiet):
                quiet_z = _quiet_level(z_all[quiet], cfg.quiet_level)
                quiet_dev = _quiet_level(dev_all[quiet], cfg.quiet_level)
        if not target_anomalous:
            rows = np.arange(z_post.shape[0])  # score anyway, for the record
    col_score = _peak(z_post[rows]) - quiet_z
    col_dev = _peak(dev_post[rows]) - quiet_dev
    col_score = np.where(np.isnan(scale), np.nan, col_score)
    metric_scores = {str(c): float(v) for c, v in zip(columns, col_score)}

    # ---- node scores: the node's most anomalous metric
    node_map = _node_mapper(node_of, columns)
    node_score: dict[str, float] = {}
    node_dev: dict[str, float] = {}
    node_metric: dict[str, str] = {}
    for c, v, d in zip(columns, col_score, col_dev):
        n = node_map[c]
        node_score.setdefault(n, float("nan"))
        if np.isfinite(v) and not (node_score[n] >= v):
            node_score[n], node_dev[n], node_metric[n] = float(v), float(d), str(c)
    nodes = list(node_score)

    # ---- candidates
    adj = _as_adjacency(graph) if graph is not None else None
    eligible = set(nodes)
    tnode = node_map[target] if target is not None else None
    if adj is not None and tnode is not None:
        if tnode not in adj and not any(tnode in v for v in adj.values()):
            known = sorted(set(adj) | {b for v in adj.values() for b in v})
            raise UsageError(f"the target's node {tnode!r} is not in the graph; graph nodes are: "
                             f"{', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
        eligible = ({tnode} | _descendants(adj, tnode)) & set(nodes)
    if candidates is not None:
        wanted = set(map(str, candidates))
        unknown = sorted(wanted - set(nodes))
        if unknown:
            raise UsageError(f"candidates names nodes without metrics: {', '.join(unknown[:10])}; "
                             f"nodes are: {', '.join(sorted(nodes)[:20])}")
        eligible &= wanted

    # ---- step 3: propagation paths and explaining away
    thr = cfg.threshold

    def has_data(n: str) -> bool:
        return bool(np.isfinite(node_score.get(n, float("nan"))))

    def anomalous(n: str) -> bool:
        return has_data(n) and node_score[n] >= thr

    def effective_callees(n: str) -> dict[str, float]:
        """Callees with data -> calls per request, looking through nodes without data."""
        out: dict[str, float] = {}
        seen, todo = {n}, list(adj.get(n, {}).items())
        while todo:
            b, w = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            if has_data(b):
                out[b] = w
            else:
                todo.extend((c, w * wc) for c, wc in adj.get(b, {}).items())
        return out

    # nodes the target reaches through anomalous (or unobserved) callers only: an anomaly
    # elsewhere cannot have travelled up to the target
    connected = None
    if adj is not None and tnode is not None:
        connected, todo = {tnode}, [tnode]
        while todo:
            a = todo.pop()
            if a != tnode and has_data(a) and not anomalous(a):
                continue
            for b in adj.get(a, ()):
                if b not in connected:
                    connected.add(b)
                    todo.append(b)

    ranked = []
    for n in eligible:
        s, by = node_score[n], ()
        if not np.isfinite(s):
            kind = "no data"
        elif s < thr:
            kind = "normal"
        elif connected is not None and n not in connected:
            kind = "unconnected"
        else:
            if adj is not None and cfg.explain_away:
                part = {b: w * max(node_dev[b], 0.0) for b, w in effective_callees(n).items()
                        if anomalous(b)}
                if part and sum(part.values()) >= cfg.explained_share * max(node_dev[n], 0.0):
                    by = tuple(sorted(part, key=lambda b: -part[b]))
            kind = "propagated" if by else "origin"
        ranked.append((_KINDS.index(kind), -s if np.isfinite(s) else np.inf, n, kind, s, by))
    ranked.sort()
    cands = tuple(RootCauseCandidate(node=n, rank=i + 1, kind=kind, score=float(s),
                                     metric=node_metric.get(n), explained_by=by)
                  for i, (_, _, n, kind, s, by) in enumerate(ranked))
    return GraphRCAResult(candidates=cands, target=target, target_score=target_score,
                          target_anomalous=target_anomalous, anomaly_start=anomaly_start,
                          rows_analysed=tuple(index[start:stop][rows]) if target_anomalous else (),
                          n_normal=int(normal.shape[0]), metric_scores=metric_scores,
                          config=cfg, seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- changes


def rank_changes_by_root_cause(result: GraphRCAResult, changes: pd.DataFrame, *,
                               effect: str | None = None) -> pd.DataFrame:
    """Rank the changes of a change log by the root-cause rank of the node each touches.

    Parameters
    ----------
    result:
        A :class:`GraphRCAResult`.
    changes:
        One row per change: ``change`` (an id or the command), ``node`` (the
        node it touches) and optionally ``effect`` (the kind of symptom it can
        cause, e.g. ``latency`` or ``availability``; empty: any).
    effect:
        The kind of the symptom being explained; changes whose ``effect``
        differs rank below those that match or say nothing.

    Returns
    -------
    pandas.DataFrame
        The changes with ``node_rank`` (``NaN``: the node is not among the
        root causes), ``effect_match`` and ``rank`` (1 = most likely), sorted.
        Changes with the same node and effect tie; they keep the log's order.
    """
    if not isinstance(changes, pd.DataFrame):
        raise UsageError(f"changes must be a DataFrame, got {type(changes).__name__}")
    missing = [c for c in ("change", "node") if c not in changes.columns]
    if missing:
        raise UsageError(f"changes has no column {', '.join(missing)}; it needs 'change' and "
                         f"'node' (optionally 'effect'); columns are: "
                         f"{', '.join(map(str, changes.columns))}")
    out = changes.copy()
    roots = result.root_causes
    out["node_rank"] = [float(roots.index(n) + 1) if n in roots else np.nan for n in out["node"]]
    if "effect" in out.columns and effect is not None:
        eff = out["effect"]
        out["effect_match"] = eff.isna() | (eff.astype("string").fillna("") == "") | (eff == effect)
    else:
        out["effect_match"] = True
    out["_order"] = np.arange(len(out))
    out = out.sort_values(["effect_match", "node_rank", "_order"],
                          ascending=[False, True, True], na_position="last", kind="stable")
    out = out.drop(columns="_order").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out
