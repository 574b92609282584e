"""``investigate``: from a passport to a verdict, slices and ranked causes.

The pipeline composes the analysis packages, which do not know each other:

1. load and validate the passport; ingest it into the DuckDB store (batches
   already stored are skipped);
2. audit data quality (gaps, duplicates);
3. detect the divergence of the metric and its onset against a seasonal
   baseline (or report it over ``window``);
4. localize it to slices, and for ratios split rate from mix;
5. ask whether the divergence survives repairing the data (gaps filled from
   the baseline, duplicates removed): if not, the verdict is ``data_quality``;
6. rank the changes of the log, against "outside the log";
7. decide the verdict: ``none`` < ``data_quality`` < ``mix_shift`` <
   ``change`` (top cause at confidence >= 0.5) < ``external``.

Every number keeps the SQL that produced it (``Investigation.queries``).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..passport import Passport, load_passport

Progress = Callable[[str], None]

#: Level of each of the three scans for an unknown divergence (total, every
#: single-dimension slice, localized conjunctions), Bonferroni-split within a scan.
SCAN_ALPHA = 0.01
#: above this many possible leaves (product of the dimensions' cardinalities) the
#: window is localized in DuckDB and the leaves frame keeps the narrow dimensions
LARGE_LEAVES = 500_000
#: a large passport's leaves frame adds narrow dimensions while their product stays below this
LEAF_BUDGET = 20_000


def stderr_progress(prefix: str = "workbench") -> Progress:
    """A progress callback printing timed steps on standard error."""
    t0 = time.perf_counter()

    def _p(msg: str) -> None:
        print(f"[{prefix} {time.perf_counter() - t0:5.1f}s] {msg}", file=sys.stderr, flush=True)

    return _p


def _quiet(_msg: str) -> None:
    return None


@dataclass
class Investigation:
    """The result of :func:`investigate`: everything the answer is made of.

    ``to_dict()`` is the JSON answer of the spec (extended with extra keys);
    ``summary()`` is the readable table the CLI prints.
    """

    passport: str
    metric: str
    metric_kind: str
    better: str
    verdict: str
    divergence: dict
    slices: list[dict]
    causes: list[dict]
    data_quality: list[dict]
    rate_mix: dict | None
    provenance: list[dict]
    queries: dict[str, str]
    db: str
    artifact: str | None = None
    external: float | None = None
    baseline: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    series: pd.DataFrame | None = field(default=None, repr=False)
    detection: Any = field(default=None, repr=False)
    localization: Any = field(default=None, repr=False)
    ranking: Any = field(default=None, repr=False)
    # The investigations library (investigation/versions.py sets these when saving).
    investigation_id: str | None = None
    version: int | None = None
    library: str | None = None
    passport_dir: str | None = None
    based_on: str | None = None
    decisions: list[dict] = field(default_factory=list)
    clock: dict = field(default_factory=dict)
    similar: list = field(default_factory=list, repr=False)
    # DoWhy verification of the top causes (workbench.causal.VerificationReport), or None
    verification: Any = field(default=None, repr=False)

    @property
    def top_cause(self) -> dict | None:
        return self.causes[0] if self.causes else None

    def to_dict(self) -> dict:
        return {
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
        }

    def save(self, message: str, *, author: str | None = None, root=None):
        """Save as a new immutable version in the investigations library.

        Returns the :class:`~workbench.investigation.versions.VersionInfo`
        (``inv-...@vNNNN``); see :func:`~workbench.investigation.versions.save_investigation`.
        """
        from .versions import save_investigation

        return save_investigation(self, message=message, author=author, root=root)

    def confirm(self, change_id: str, *, note: str | None = None, author: str | None = None):
        """Confirm a hypothesis: journaled, audited, carried by the next save."""
        from .versions import decide

        return decide(self, change_id, "confirmed", note=note, author=author)

    def refute(self, change_id: str, *, note: str | None = None, author: str | None = None):
        """Refute a hypothesis: journaled, audited, carried by the next save."""
        from .versions import decide

        return decide(self, change_id, "refuted", note=note, author=author)

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), default=_json_default, **kw)

    def to_frame(self) -> pd.DataFrame:
        """Ranked causes as a frame (the hypothesis table)."""
        return pd.DataFrame(self.causes)

    def summary(self) -> str:
        from .versions import note_shown

        note_shown(self)  # time-to-diagnose: when the top cause was first shown
        d = self.divergence
        lines = [f"Investigation of {self.metric} in {self.passport}", ""]
        if d.get("onset"):
            lines.append(f"Divergence: onset {d['onset']}, window {d['window'][0]} .. "
                         f"{d['window'][1]}")
            if d.get("onset_interval") and d["onset_interval"][0] != d["onset_interval"][1]:
                lines.append(f"  onset from the {d.get('onset_source', 'scan')}; the data "
                             f"alone place it in {d['onset_interval'][0]} .. "
                             f"{d['onset_interval'][1]} (95% likelihood-ratio set)")
            lines.append(f"  baseline {_num(d['baseline'])} -> observed {_num(d['observed'])} "
                         f"({d['relative_change']:+.1%}), score {d.get('score', 0):.1f}")
        else:
            lines.append("Divergence: none significant")
        lines.append(f"Verdict: {self.verdict.upper()}")
        if self.params.get("next_step"):
            lines.append(f"Next step: {self.params['next_step']}")
        lines.append("")
        if self.data_quality:
            lines.append("Data quality:")
            for f in self.data_quality:
                lines.append(f"  [{f['severity']}] {f['check']}: {f['detail']}")
                if f.get("bearing"):
                    lines.append(f"      -> {f['bearing']}")
            lines.append("")
        if self.slices:
            lines.append("Slices (most explanatory first):")
            lines.append(f"  {'slice':44s} {'explained':>9s} {'baseline':>10s} {'observed':>10s}")
            for s in self.slices[:5]:
                name = ", ".join(f"{k}={v}" for k, v in s["filter"].items()) or "(everything)"
                lines.append(f"  {name[:44]:44s} {s['explained_share']:>9.0%} "
                             f"{_num(s['baseline']):>10s} {_num(s['observed']):>10s}")
            lines.append("")
        if self.rate_mix:
            rm = self.rate_mix
            lines.append(f"Rate vs mix: rate {rm.get('rate_effect', 0):+.4g}, "
                         f"mix {rm.get('mix_effect', 0):+.4g} "
                         f"(mix share {rm.get('mix_share', 0):.0%})")
            lines.append("")
        if self.causes:
            lines.append("Candidate causes (confidence is a posterior; the rest is "
                         f"'outside the log': {self.external:.0%}):")
            for c in self.causes[:5]:
                lines.append(f"  {c['confidence']:5.0%}  {c['change_id']}  {c['kind']:7s} "
                             f"{c['target']}  @ {c['ts']}")
                for e in c["evidence"]:
                    lines.append(f"           - {e}")
            lines.append("")
        elif d.get("onset") and self.verdict in ("change", "external"):
            lines.append("No change in the log near the onset.")
        if self.similar:
            lines.append("Similar past investigations:")
            lines += [f"  {s.line()}" for s in self.similar]
            lines.append("")
        if self.artifact:
            lines.append(f"Artifact: {self.artifact}")
        lines.append(f"Store: {self.db}")
        return "\n".join(lines)

    def __repr__(self) -> str:  # a readable repr in notebooks and the REPL
        top = self.top_cause
        return (f"<Investigation {self.metric} verdict={self.verdict} "
                f"onset={self.divergence.get('onset')} "
                f"top={top['change_id'] + ' ' + format(top['confidence'], '.0%') if top else None}>")


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:.4g}"


def _json_default(o):
    if isinstance(o, (pd.Timestamp, datetime)):
        return o.isoformat()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _iso(t) -> str | None:
    if t is None:
        return None
    t = pd.Timestamp(t)
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_window(window) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if window is None:
        return None
    if isinstance(window, str):
        parts = window.split("/")
        if len(parts) != 2:
            raise UsageError(f"--window {window!r}: expected START/END, e.g. "
                             "2026-11-18T12:00Z/2026-11-19T00:00Z")
        window = parts
    try:
        a, b = (pd.Timestamp(x) for x in window)
    except (ValueError, TypeError):
        raise UsageError(f"--window {window!r}: cannot parse the times; expected ISO "
                         "timestamps such as 2026-11-18T12:00Z") from None
    a = a.tz_localize("UTC") if a.tzinfo is None else a.tz_convert("UTC")
    b = b.tz_localize("UTC") if b.tzinfo is None else b.tz_convert("UTC")
    if b <= a:
        raise UsageError(f"--window: END ({b}) must be after START ({a})")
    return a, b


def default_db(passport_dir: str | Path) -> Path:
    """Where a passport's store lives when no ``--db`` is given."""
    return Path(passport_dir) / ".workbench" / "store.duckdb"


def investigate(passport: str | Path | Passport, *, metric: str, window=None,
                db: str | Path | None = None, artifact_dir: str | Path | None = "investigations",
                progress: Progress | None = None, memory: str | Path | None = None,
                memory_asof: str | None = None, verify: bool = False) -> Investigation:
    """Investigate the most significant divergence of ``metric`` in a passport.

    Parameters
    ----------
    passport:
        A passport directory (or a loaded :class:`Passport`).
    metric:
        A metric defined in ``passport.yaml``.
    window:
        ``(start, end)`` or ``"START/END"`` to investigate that window instead of
        the most significant divergence.
    db:
        The DuckDB store file; default ``PASSPORT/.workbench/store.duckdb``.
    artifact_dir:
        Where the notebook artifact is written (None: no artifact).
    progress:
        Called with a message at each step (the CLI prints them on stderr).
    memory:
        The memory index of past investigations whose resolutions give prior
        evidence to the ranking; default ``ARTIFACT_DIR/memory.duckdb``.
    memory_asof:
        ISO time: only decisions made before it count (a saved notebook passes
        its run time, so re-running it reproduces its ranking).
    verify:
        Verify the top two causes with DoWhy (estimate, refuters,
        counterfactual, gcm mechanism attribution; ``workbench.causal``):
        ``Investigation.verification``, and lines added to each verified
        cause's evidence. Costs ~1-2 s plus DoWhy's import (~5 s, once per
        process); skipped with a note when DoWhy is not installed.

    Examples
    --------
    >>> import workbench as wb
    >>> inv = wb.investigate("sample_data/demo", metric="conversion_rate")  # doctest: +SKIP
    >>> inv.verdict, inv.top_cause["change_id"]                              # doctest: +SKIP
    ('change', 'chg-...')
    """
    from ..store import Store

    say = progress or _quiet
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    loaded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if memory is None and artifact_dir is not None:
        memory = Path(artifact_dir) / "memory.duckdb"
    t = time.perf_counter()
    win = _parse_window(window)
    pp = passport if isinstance(passport, Passport) else load_passport(passport)
    spec = pp.manifest.metric(metric)
    timings["load"] = time.perf_counter() - t
    say(f"passport {pp.name}: {len(pp.event_files)} event file(s), {len(pp.changes)} changes")
    db_path = Path(db) if db is not None else default_db(pp.directory)
    t = time.perf_counter()
    with Store(db_path) as st:
        report = st.ingest(pp, progress=say)
    timings["ingest"] = time.perf_counter() - t
    say(f"store {db_path}: {report.total_rows} event rows "
        f"({report.loaded_rows} loaded now, {report.seconds:.2f}s)")
    skipped = [Path(b.file).name for b in report.batches if b.status == "duplicate"
               and report.loaded_rows > 0]
    with Store(db_path, read_only=True) as st:
        inv = _analyse(st, pp, spec, win, say, timings, skipped, memory=memory,
                       memory_asof=memory_asof, verify=verify)
    _say_late_data(inv)
    inv.clock = {"loaded_at": loaded_at}
    inv.passport_dir = str(Path(pp.directory).resolve())
    t = time.perf_counter()
    with Store(db_path) as st:
        inv.baseline = _record_baseline(st, pp, spec, inv)
    inv.divergence["baseline_version"] = inv.baseline.get("id")
    timings["baseline_snapshot"] = time.perf_counter() - t
    say(f"baseline version {inv.baseline.get('id')}")
    inv.db = str(db_path)
    inv.provenance = [p.to_dict() for p in pp.provenance]
    inv.timings["total"] = time.perf_counter() - t_all
    if artifact_dir is not None:
        from .artifact import write_artifact
        inv.artifact = str(write_artifact(inv, pp, artifact_dir, window=window))
        say(f"artifact written: {inv.artifact}")
    return inv


def _drop_late_tail(series: pd.DataFrame, data_last, grain):
    """Drop the incomplete last buckets (late data, :mod:`workbench.quality.late`).

    Returns ``(series, data_last, tail)``; unchanged with ``tail=None`` when complete.
    """
    from ..quality.late import incomplete_tail

    tail = incomplete_tail(series, grain)
    if tail is None:
        return series, data_last, None
    kept = series[series["ts"] < tail.start].reset_index(drop=True)
    return kept, min(data_last, tail.start - grain), tail


def _say_late_data(inv: "Investigation") -> None:
    """The answer says what late data may change: ``divergence.late_data`` and next step."""
    late = inv.params.get("late_data")
    if not late:
        return
    inv.divergence["late_data"] = late
    step = inv.params.get("next_step") or ""
    inv.params["next_step"] = (step + "; " if step else "") + late["message"]


def _next_step(verdict: str, causes: list[dict], slices: list[dict], dq: list[dict]) -> str:
    """What to do now, for the verdict as a whole."""
    where = ", ".join(f"{k}={v}" for k, v in (slices[0]["filter"] if slices else {}).items()) \
        or "the whole population"
    if verdict == "change" and causes:
        return causes[0]["next_step"]
    if verdict == "data_quality":
        return (f"repair the data feed for {where} (see data quality) and re-run; do not act "
                "on the metric until then")
    if verdict == "mix_shift":
        return (f"no rollback: rates are stable; the traffic mix moved toward {where}. Report "
                "the metric per segment, or reweight to the usual mix")
    if verdict == "external":
        return (f"no change in the log explains it: look for outside events affecting {where} "
                "(campaigns, partners, outages) and add their source to the change log")
    return "nothing to do: no significant divergence"


def _as_hypothesis(c: dict, metric: str, slices: list[dict]) -> dict:
    """Give a ranked cause its hypothesis fields: status, tests run, next step.

    ``supported`` at confidence >= 0.5; ``refuted`` when a test rules it out
    (took effect after the divergence began, the effect began before it, or its
    scope holds none of the divergence); ``open`` otherwise.
    """
    from ..events import CandidateCause  # noqa: F401  (documents the source of the fields)

    eff = c.get("effect") or {}
    tests = [{"test": "alignment", "result": f"lag {c['lag_grains']:+.0f} grains"},
             {"test": "scope", "result": f"{c['scope_share']:.0%} of the divergence, "
                                         f"{c['traffic_share']:.0%} of traffic"}]
    refuted = []
    if c["lag_grains"] < -3:
        refuted.append("took effect after the divergence began")
    if c["scope"] and c["scope_share"] <= 0.05:
        refuted.append("its scope holds none of the divergence")
    if eff:
        tests.append({"test": "difference-in-differences",
                      "result": f"{eff['estimate']:+.1%} (t={eff['t_stat']:.1f})"})
        if abs(eff.get("pre_t_stat", 0)) >= 3 and \
                abs(eff.get("pre_estimate", 0)) >= 0.5 * abs(eff["estimate"]):
            refuted.append("the effect began before the change")
            tests.append({"test": "event-study lead", "result": "pre-trend: refutes"})
        else:
            tests.append({"test": "event-study lead", "result": "no pre-trend"})
    if c["confidence"] >= 0.5:
        status = "supported"
    elif refuted or c["confidence"] < 0.01:
        refuted = refuted or ["posterior below 1%: the evidence is far weaker than for the "
                              "leading hypotheses"]
        status = "refuted"
    else:
        status = "open"
    where = ", ".join(f"{k}={v if not isinstance(v, list) else '|'.join(v)}"
                      for k, v in (c["scope"] or {}).items()) or "everywhere"
    kind, target = c["kind"], c["target"]
    if status == "supported":
        rollout = c.get("rollout")
        if kind == "flag" and rollout is not None and rollout < 100:
            step = (f"hold the rollout of {target} at {rollout:.0f}% (or set it to 0%) and "
                    f"watch {metric} in {where}")
        else:
            step = {"flag": f"revert flag {target} for {where}",
                    "deploy": f"roll back {target} to its previous version",
                    "config": f"restore the previous value of {target}",
                    "infra": f"revert the infrastructure change on {target}",
                    "experiment": f"stop experiment {target} and check its assignment (SRM)",
                    "external": f"communicate the impact of {target}; nothing to roll back",
                    }.get(kind, f"revert {target}")
    elif status == "open":
        step = (f"run an A/B test (or a holdout) of {target} in {where} to separate it from "
                "the other candidates, or add instrumentation to the affected step")
    else:
        step = "none: " + "; ".join(refuted)
    c["status"], c["tests"], c["next_step"] = status, tests, step
    return c


def _refine_onset(st, sp, spec, slices, full_idx, grain, det):
    """The top slice's own divergence when its onset differs from the total's."""
    from ..detect import detect_divergence
    from ..store import metric_series

    if not slices or not slices[0]["filter"]:
        return None
    ser = metric_series(st.con, sp, spec, filter=slices[0]["filter"]).frame
    x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
    d = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain)
    if not d.significant or d.onset is None:
        return None
    shift = abs(pd.Timestamp(d.onset) - pd.Timestamp(det.onset))
    if shift == pd.Timedelta(0) or shift > pd.Timedelta("72h"):
        return None
    if str(slices[0].get("source", "")).startswith("concentration") and \
            pd.Timestamp(d.onset) > pd.Timestamp(det.onset):
        return None  # a fallback slice may sharpen the onset, not postpone it
    if np.sign(d.relative_change or 0) != np.sign(det.relative_change or 0):
        return None
    return d


def _slice_scan(st, sp, spec, full_idx, grain, queries: dict, window=None):
    """The most significant divergence among single-dimension slices, if any.

    Every value of every dimension (up to 60 values) is tested with the same
    detector; the level is Bonferroni-corrected for the number of slices, so
    scanning many slices does not manufacture alarms. With a ``window`` (the
    user's), each slice is tested over that window only.
    """
    from ..detect import DetectConfig, detect_divergence
    from ..store import slice_series

    r = slice_series(st.con, sp, spec)
    queries["slice_series"] = r.sql
    groups = list(r.frame.groupby(["dimension", "value"], sort=False))
    if not groups:
        return None
    cfg = DetectConfig(alpha=(SCAN_ALPHA if window is None else 0.05) / len(groups))
    best = None
    for (d, v), g in groups:
        x = g.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        res = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain, config=cfg,
                                window=window)
        if res.significant and res.onset is not None and \
                (best is None or abs(res.score) > abs(best[1].score)):
            best = ({d: str(v)}, res, g)
    if best is None:
        return None
    scope, res, g = best
    series = g[["ts", "num", "den", "rows"]].reset_index(drop=True)
    series["value"] = series["num"] / series["den"] if spec.kind == "ratio" else series["num"]
    return scope, res, series


def _localized_scan(st, sp, spec, full_idx, grain, queries: dict, *, candidates: int = 5,
                    spans: tuple[str, ...] = ("1D", "3D", "7D"), window=None):
    """A divergence hidden in a conjunction (iOS 5.0, or NL x android).

    The most recent span (the last day, three days, week) is compared with the
    same span one and two weeks before, leaf by leaf: a drop that began a day
    ago is diluted six-fold in a week-long window, so each span is tried. The
    localizer (FDR-controlled over every slice of the lattice) proposes at most
    ``candidates`` slices per span, and each distinct one is confirmed by the
    detector on its own series at a Bonferroni-corrected level (over every
    candidate of every span). With a ``window`` (the user's) it is the one span,
    and each candidate is tested over it.
    """
    from ..detect import DetectConfig, detect_divergence
    from ..localize import localize
    from ..store import leaves as q_leaves
    from ..store import metric_series

    m = sp.manifest
    end = full_idx[-1] + grain
    week = pd.Timedelta("7D")
    dims = list(m.all_dimensions)
    from ..store import cardinalities

    cards = cardinalities(st.con, sp, dims)
    large = float(np.prod([max(c, 1) for c in cards.values()], dtype=float)) > LARGE_LEAVES
    picks: list[dict] = []
    if window is not None:
        spans = (window[1] - window[0],)
        end = window[1]
    for span in spans:
        w = pd.Timedelta(span)
        if end - 2 * week - w < full_idx[0]:
            continue
        obs = (end - w, end)
        base = [(end - week - w, end - week), (end - 2 * week - w, end - 2 * week)]
        if large:
            lf, ldims, loc = _localize_large(st, sp, spec, obs, base, cards, queries,
                                             leaf_budget=1)
        else:
            lv = q_leaves(st.con, sp, spec, obs=obs, base=base)
            queries[f"localized_scan_{span}"] = lv.sql
            lf, ldims = lv.frame, dims
            loc = localize(lf, dimensions=dims, kind=spec.kind,
                           hierarchies=dict(m.hierarchies))
        for s in [dict(s.filter) for s in loc.slices if dict(s.filter)][:candidates]:
            f = minimal_filter(lf, {k: str(v) for k, v in s.items()}, ldims)
            if f and f not in picks:
                picks.append(f)
    if not picks:
        return None
    cfg = DetectConfig(alpha=(SCAN_ALPHA if window is None else 0.05)
                       / (candidates * len(spans) + len(dims) * 10))
    best = None
    for f in picks:
        ser = metric_series(st.con, sp, spec, filter=f).frame
        x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        res = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain, config=cfg,
                                window=window)
        if res.significant and res.onset is not None and \
                (best is None or abs(res.score) > abs(best[1].score)):
            best = (f, res, ser[["ts", "num", "den", "rows", "value"]])
    return best


def _localize_large(st, sp, spec, obs, base, cards: dict, queries: dict, *,
                    scope: dict | None = None, named: set | None = None,
                    leaf_budget: int = LEAF_BUDGET):
    """Localize a window of a large passport in DuckDB (screen, pool, search).

    Returns a leaves frame, its dimensions and the Localization. The frame is
    grouped by the dimensions a slice, the scope or ``named`` mention, plus the
    narrowest others while the product of cardinalities stays within
    ``leaf_budget`` (what the ranking's scope shares and the rate-mix split use).
    """
    from ..localize import localize
    from ..store import leaves as q_leaves
    from ..store import window_rows

    m = sp.manifest
    dims = list(m.all_dimensions)
    src = window_rows(st.con, sp, spec, obs=obs, base=base, filter=scope or None)
    queries["leaves"] = src.sql
    lc = localize(src.relation, dimensions=dims, kind=spec.kind,
                  hierarchies=dict(m.hierarchies), labels=src.labels)
    used = {k for s_ in lc.slices for k in dict(s_.filter)} | set(scope or {}) | set(named or ())
    keep, size = set(used), 1.0
    for d in sorted((d for d in dims if d not in used), key=lambda d: cards[d]):
        if size * max(cards[d], 1) > leaf_budget:
            break
        keep.add(d)
        size *= max(cards[d], 1)
    leaf_dims = [d for d in dims if d in keep]
    if not leaf_dims:  # nothing found and nothing asked for: no leaves needed
        return pd.DataFrame(), leaf_dims, lc
    lf = q_leaves(st.con, sp, spec, obs=obs, base=base, dimensions=leaf_dims).frame
    return lf, leaf_dims, lc


def _level_adjusted(st, sp, spec, lf: pd.DataFrame, dims: list[str], obs, base,
                    data_start) -> pd.DataFrame:
    """Sum baselines moved to each leaf's level just before the onset.

    The baseline of a sum is the same hours in earlier weeks; a leaf whose volume
    drifts (an app version being adopted, a market growing) is then expected at
    its old level, and the drift reads as part of the divergence. Each leaf's
    baseline is scaled by its own drift over two days ending a day before the
    onset (those days against the same days in the base weeks), shrunk towards the
    total's drift with a prior worth ``k`` events: the seasonal naive forecast
    with a level correction (Holt 1957; Hyndman and Athanasopoulos, FPP3 ch. 8).
    """
    from ..store import leaves as q_leaves

    pre_len, gap = pd.Timedelta("48h"), pd.Timedelta("24h")
    onset = obs[0]
    shifts = [onset - b[0] for b in base]
    pre = (onset - gap - pre_len, onset - gap)  # a day clear of an onset estimated late
    pre_base = [(pre[0] - sh, pre[1] - sh) for sh in shifts
                if pre[0] - sh >= data_start and sh >= pre_len + gap]
    if not pre_base or pre[0] < data_start:
        return lf
    pv = q_leaves(st.con, sp, spec, obs=pre, base=pre_base).frame
    if pv.empty:
        return lf
    k = 200.0
    g = float(pv["obs_num"].sum() / max(pv["base_num"].sum(), 1e-12))
    pv = pv.assign(_drift=(pv["obs_num"] + k * g) / (pv["base_num"] + k))[dims + ["_drift"]]
    out = lf.merge(pv, on=dims, how="left")
    d = out.pop("_drift").fillna(g).to_numpy(dtype=float)
    out["base_num"] = out["base_num"].to_numpy(dtype=float) * d
    return out


def _concentration_slice(lf: pd.DataFrame, dims: list[str], kind: str,
                         *, min_share: float = 0.6, min_surprise: float = 0.25) -> dict | None:
    """The single value where a significant divergence concentrates, when the lattice
    search named nothing.

    The search judges each slice against a leaf noise model fitted robustly on the
    median leaf; a root cause covering more than half the leaves (a platform, a
    region) inflates that noise and can end up named nowhere. Then the value
    carrying at least ``min_share`` of the deviation with the largest excess over
    its traffic share (explanatory power minus traffic share, Adtributor's
    surprise in its simplest form, Bhagwan et al. 2014) is reported, marked as such.
    """
    from ..events import leaf_deviation

    if lf is None or lf.empty or not dims:
        return None
    dev = leaf_deviation(lf, kind)
    tot = float(dev.sum())
    if tot == 0.0:
        return None
    vol = (lf["obs_den"] if kind == "ratio" else lf["base_num"]).to_numpy(dtype=float)
    tvol = max(float(vol.sum()), 1e-12)
    best = None
    for d in dims:
        g = pd.DataFrame({"v": lf[d].astype(str).to_numpy(), "dev": dev, "vol": vol})
        agg = g.groupby("v", sort=False)[["dev", "vol"]].sum()
        share, traffic = agg["dev"] / tot, agg["vol"] / tvol
        ok = (share >= min_share) & (share - traffic >= min_surprise) & (traffic < 0.95)
        if not ok.any():
            continue
        v = (share - traffic)[ok].idxmax()
        score = float(share[v] - traffic[v])
        if best is None or score > best[0]:
            best = (score, d, v, float(share[v]))
    if best is None:
        return None
    _, d, v, share = best
    sub = lf[lf[d].astype(str) == v]
    if kind == "ratio":
        base = float(sub["base_num"].sum() / max(sub["base_den"].sum(), 1e-12))
        obs = float(sub["obs_num"].sum() / max(sub["obs_den"].sum(), 1e-12))
    else:
        base, obs = float(sub["base_num"].sum()), float(sub["obs_num"].sum())
    return {"filter": {d: v}, "explained_share": _f(share), "baseline": _f(base),
            "observed": _f(obs), "source": "concentration (no slice passed the lattice "
                                          "search's noise floor)"}


def _change_scope_dims(st, name: str, onset) -> set[str]:
    """Dimensions named by the scopes of changes within two days of the onset."""
    ch = st.changes(name)
    if ch.empty:
        return set()
    near = ch[(ch["ts"] >= onset - pd.Timedelta("48h")) & (ch["ts"] <= onset + pd.Timedelta("24h"))]
    return {k for sc in near["scope"] if isinstance(sc, dict) for k in sc}


def _is_mix_shift(rm) -> bool:
    """The mix explains the change and rates barely moved.

    At high volume a rate drift of a few percent of the change is statistically
    significant yet explains nothing; the verdict follows magnitudes: the mix
    carries at least 75% of the change and the rate effect, in the direction of
    the change, at most 25% of it (rates moving *against* the change cannot
    explain it: the mix then explains more than all of it). The localizer's own
    hint (which also asks for a non-significant rate effect) is accepted as well.
    """
    if getattr(rm, "verdict_hint", "") == "mix_shift":
        return True
    signed = float(getattr(rm, "total_change", 0.0) or 0.0)
    total = abs(signed)
    if total == 0:
        return False
    return (float(rm.mix_share) >= 0.75
            and float(rm.rate_effect) * np.sign(signed) <= 0.25 * total)


def _mix_slices(leaves: pd.DataFrame, dims: list[str], manifest) -> list[dict]:
    """Where the traffic moved: localize the denominator as an additive measure."""
    from ..localize import localize

    den = pd.DataFrame({d: leaves[d] for d in dims})
    den["base_num"] = leaves["base_den"].to_numpy()
    den["obs_num"] = leaves["obs_den"].to_numpy()
    den["base_den"] = 1.0
    den["obs_den"] = 1.0
    loc = localize(den, dimensions=dims, kind="sum", hierarchies=dict(manifest.hierarchies))
    out = []
    for s in loc.slices[:3]:
        f = minimal_filter(leaves, {k: str(v) for k, v in dict(s.filter).items()}, dims)
        tb, to = leaves["base_den"].sum(), leaves["obs_den"].sum()
        out.append({"filter": f, "explained_share": _f(s.explained_share),
                    "baseline": _f(s.baseline / tb if tb else None),
                    "observed": _f(s.observed / to if to else None),
                    "source": "mix: share of traffic"})
    return out


def _fmt_filter(f: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in f.items()) or "the whole feed"


def _defect_divergence(st, sp, spec, qrep, full_idx, grain):
    """The first gap or duplicate whose slice diverges significantly over its window."""
    from ..detect import detect_divergence
    from ..store import metric_series

    for f in qrep.findings:
        if f.check not in ("completeness", "duplicates") or f.start is None:
            continue
        ser = metric_series(st.con, sp, spec, filter=f.slice or None).frame
        x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        if f.check == "completeness" and spec.kind == "sum":
            x.loc[(x.index >= f.start) & (x.index < f.end), ["num", "rows"]] = 0.0
            x.loc[(x.index >= f.start) & (x.index < f.end), "den"] = 1.0
        try:
            d = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain,
                                  window=(f.start, f.end))
        except UsageError:  # a ratio over a gap has no data in its window: nothing to test
            continue
        if d.significant and d.onset is not None:
            return f, d
    return None


def _record_baseline(st, pp: Passport, spec, inv: "Investigation") -> dict:
    """Store (or reuse) the versioned baseline the conclusion was drawn against.

    It is fitted on the history before the onset (all history when nothing
    diverged), with the detector's parameters recorded beside it.
    """
    from ..store import time_range
    from ..store.baselines import fit_baseline

    sp = st.passport(pp.name)
    lo, hi = time_range(st.con, sp)
    end = pd.Timestamp(inv.divergence["onset"]) if inv.divergence.get("onset") else \
        hi + sp.manifest.grain_td
    if end <= lo:
        return {}
    det = inv.detection
    params = {"detector": getattr(det, "method", None)}
    b = fit_baseline(st, pp.name, spec.name, period=(lo, end), params=params,
                     note=f"fitted for an investigation of {spec.name}")
    return {"id": b.id, "version": b.version, "parent": b.parent,
            "period": [_iso(b.period[0]), _iso(b.period[1])], "method": b.method,
            "detector": params["detector"], "active_changes": len(b.active_changes)}


def _base_windows(onset, end_excl, data_start, grain) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Same hours one and two weeks earlier when the data has them, else the period before."""
    out = []
    for k in (1, 2, 3):
        off = pd.Timedelta(days=7 * k)
        if onset - off >= data_start and end_excl - off <= onset:
            out.append((onset - off, end_excl - off))
    if not out:
        length = end_excl - onset
        out.append((max(onset - length, data_start), onset))
    return out


def _seasonal_fill(series: pd.DataFrame, weeks=(1, 2, 3)) -> pd.DataFrame:
    """Expected ``num, den`` per bucket from the same bucket in earlier weeks."""
    s = series.set_index("ts")[["num", "den"]]
    parts = [s.shift(freq=pd.Timedelta(days=7 * k)) for k in weeks]
    out = pd.concat(parts).groupby(level=0).mean()
    return out


def _analyse(st, pp: Passport, spec, win, say: Progress, timings: dict,
             skipped: list[str], *, memory=None, memory_asof: str | None = None,
             verify: bool = False) -> Investigation:
    from ..detect import detect_divergence
    from ..events import rank_changes
    from ..localize import decompose_rate_mix, localize
    from ..quality import audit_quality, correct_series
    from ..store import leaves as q_leaves
    from ..store import metric_series, time_range

    sp = st.passport(pp.name)
    m = sp.manifest
    grain = m.grain_td
    queries: dict[str, str] = {}

    t = time.perf_counter()
    ser = metric_series(st.con, sp, spec)
    queries["metric_series"] = ser.sql
    series = ser.frame
    data_start, data_last = time_range(st.con, sp)
    timings["series"] = time.perf_counter() - t

    t = time.perf_counter()
    say("auditing data quality (gaps, duplicates)")
    qrep = audit_quality(st.con, sp, skipped_batches=skipped)
    series, data_last, late = _drop_late_tail(series, data_last, grain)
    timings["quality"] = time.perf_counter() - t

    t = time.perf_counter()
    say("detecting the divergence against the seasonal baseline")
    full_idx = pd.date_range(data_start.floor(grain), data_last.floor(grain), freq=grain)
    det_in = series.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
    from ..detect import DetectConfig

    # Scanning for an unknown onset is held to a stricter level than testing a
    # window the user named: three looks (total, single slices, conjunctions)
    # at SCAN_ALPHA keep quiet passports quiet (benchmarks/detection.py).
    det = detect_divergence(det_in, kind=spec.kind, better=spec.better, grain=grain, window=win,
                            config=DetectConfig(alpha=SCAN_ALPHA if win is None else 0.05))
    timings["detect"] = time.perf_counter() - t

    base_inv = dict(passport=pp.name, metric=spec.name, metric_kind=spec.kind,
                    better=spec.better, provenance=[], queries=queries, db="",
                    timings=timings, series=series, detection=det,
                    params={"window": None if win is None else [_iso(w) for w in win]})
    if late is not None:
        base_inv["params"]["late_data"] = late.to_dict()
    srm_findings = _srm_findings(pp)
    dq_all = [f.to_dict() for f in qrep.findings] + srm_findings
    if not det.significant or det.onset is None:
        # Nothing diverged in total; a defect can still distort a slice badly enough
        # to mislead anyone reading it. Test each defect's slice over its window.
        hit = _defect_divergence(st, sp, spec, qrep, full_idx, grain)
        if hit is not None:
            f, det_f = hit
            dq = []
            for d, g in zip(dq_all, list(qrep.findings) + [None] * len(srm_findings)):
                if g is f:
                    d = dict(d, severity="error", bearing=(
                        f"explains a divergence of {spec.name} in "
                        f"{_fmt_filter(f.slice)} ({det_f.relative_change:+.1%} over "
                        f"{f.buckets} buckets); with complete data it would not be there"))
                dq.append(d)
            say(f"no divergence in total; {f.check} distorts {_fmt_filter(f.slice)}")
            div = _div_dict(det_f)
            div["scope"] = dict(f.slice)
            base_inv["params"]["next_step"] = _next_step(
                "data_quality", [], [{"filter": dict(f.slice)}], dq)
            return Investigation(verdict="data_quality", divergence=div,
                                 slices=[{"filter": dict(f.slice), "explained_share": 1.0,
                                          "baseline": _f(det_f.baseline),
                                          "observed": _f(det_f.observed),
                                          "source": "data_quality"}],
                                 causes=[], data_quality=dq, rate_mix=None, external=None,
                                 **base_inv)
        say("no divergence in total; scanning every dimension value")
        t = time.perf_counter()
        found = _slice_scan(st, sp, spec, full_idx, grain, queries, window=win)
        if found is None:
            found = _localized_scan(st, sp, spec, full_idx, grain, queries, window=win)
        timings["slice_scan"] = time.perf_counter() - t
        if found is None:
            say("no significant divergence")
            base_inv["params"]["next_step"] = _next_step("none", [], [], dq_all)
            return Investigation(verdict="none", divergence=_div_dict(det), slices=[],
                                 causes=[], data_quality=dq_all, rate_mix=None, external=None,
                                 **base_inv)
        scope, det, series = found
        onset_from = f"scan of {_fmt_filter(scope)}" + ("" if win is None else
                                                         " within the window given")
        base_inv["detection"] = det
        say(f"divergence in {_fmt_filter(scope)} (score {det.score:.1f})")
    else:
        scope = {}
        onset_from = "scan of the total" + ("" if win is None else " within the window given")
    onset_set = det.params.get("onset_set")

    onset, end = pd.Timestamp(det.onset), pd.Timestamp(det.end)
    obs = (onset, end + grain)
    base = _base_windows(onset, obs[1], data_start, grain)

    t = time.perf_counter()
    say(f"localizing: onset {_iso(onset)}, window to {_iso(end)}")
    dims = list(m.all_dimensions)
    # Unit-level facts with wide dimensions (user ids, SKUs) have millions of
    # leaves: the localizer then screens and pools in DuckDB (window_rows), and
    # the leaves the ranking and the rate-mix split need are grouped over the
    # narrow dimensions plus any a slice or a candidate change names.
    from ..store import cardinalities

    cards = cardinalities(st.con, sp, dims)
    large = float(np.prod([max(c, 1) for c in cards.values()], dtype=float)) > LARGE_LEAVES
    scoped_dims = _change_scope_dims(st, pp.name, onset) if large else set()
    leaf_dims = dims

    def _localize_window(obs, base):
        nonlocal leaf_dims
        if large:  # the scope is applied in DuckDB; slices come out inside it
            lf, leaf_dims, lc = _localize_large(st, sp, spec, obs, base, cards, queries,
                                                scope=scope, named=scoped_dims)
            out = _slices_out(lc, spec, lf, leaf_dims)
        else:
            lv = q_leaves(st.con, sp, spec, obs=obs, base=base)
            queries["leaves"] = lv.sql
            lf = lv.frame
            if spec.kind == "sum":
                lf = _level_adjusted(st, sp, spec, lf, dims, obs, base, data_start)
            if scope:  # found in a slice: explain within it
                from ..events import scope_mask

                inside = lf[scope_mask(lf, scope)].reset_index(drop=True)
            else:
                inside = lf
            lc = localize(inside, dimensions=dims, kind=spec.kind,
                          hierarchies=dict(m.hierarchies))
            out = _slices_out(lc, spec, inside, dims)
        if scope:  # then name the slices within the scope
            for sl in out:
                sl["filter"] = minimal_filter(lf, {**scope, **sl["filter"]}, leaf_dims)
            if not out:
                out = [{"filter": dict(scope), "explained_share": 1.0,
                        "baseline": _f(det.baseline), "observed": _f(det.observed)}]
        elif not out:
            conc = _concentration_slice(lf, leaf_dims, spec.kind)
            out = [conc] if conc is not None else []
        return lf, lc, out

    leaves, loc, slices = _localize_window(obs, base)
    # The top slice carries the signal undiluted: its onset is sharper than the
    # total's. Re-estimate there and, if it moved, localize again on that window.
    # (not for a mix shift: its slices' rates did not move, a bump in one of them is noise)
    mix_first = spec.kind == "ratio" and not scope and _is_mix_shift(
        decompose_rate_mix(leaves, dimensions=list(leaf_dims)))
    refined = None if mix_first else _refine_onset(st, sp, spec, slices, full_idx, grain, det)
    if refined is not None:
        det_slice = refined
        onset_set = det_slice.params.get("onset_set")
        onset_from = f"scan of the top slice {_fmt_filter(slices[0]['filter'])}"
        onset, end = pd.Timestamp(det_slice.onset), pd.Timestamp(det_slice.end)
        say(f"onset refined on the top slice: {_iso(onset)} .. {_iso(end)}")
        obs = (onset, end + grain)
        base = _base_windows(onset, obs[1], data_start, grain)
        base_inv["params"]["onset_refined_on"] = slices[0]["filter"] if slices else None
        leaves, loc, slices = _localize_window(obs, base)
        # the total over the refined window (the numbers the answer reports)
        src = series.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        det = detect_divergence(src, kind=spec.kind, better=spec.better, grain=grain,
                                window=obs)
    rm = None
    if spec.kind == "ratio":
        # the divergence's own population: inside the scope it was found in
        from ..events import scope_mask

        pop = leaves[scope_mask(leaves, scope)].reset_index(drop=True) if scope else leaves
        rm = decompose_rate_mix(pop, dimensions=[d for d in leaf_dims if d not in scope])
    timings["localize"] = time.perf_counter() - t

    # -------- does the divergence survive repairing the data?
    t = time.perf_counter()
    overlapping = [f for f in qrep.findings if f.check in ("completeness", "duplicates")
                   and f.start is not None and f.start < obs[1] + grain and f.end > onset - grain]
    dq_verdict, survive_share = False, 1.0
    data_quality = [f.to_dict() for f in qrep.findings]
    if overlapping:
        fills = {}
        for f in overlapping:
            if f.check == "completeness":
                fs = metric_series(st.con, sp, spec, filter=f.slice or None).frame
                fills[(f.start, tuple(sorted(f.slice.items())))] = _seasonal_fill(fs)
        corrected = correct_series(series, qrep, spec, gap_fill=fills)
        cin = corrected.set_index("ts")[["num", "den"]].reindex(full_idx)
        det2 = detect_divergence(cin, kind=spec.kind, better=spec.better, grain=grain,
                                 window=(onset, obs[1]))
        det2_free = detect_divergence(cin, kind=spec.kind, better=spec.better, grain=grain)
        rc0 = det.relative_change or 0.0
        survive_share = (abs(det2.relative_change) / abs(rc0)) if rc0 else 1.0
        survives = det2_free.significant and det2_free.onset is not None and \
            abs(pd.Timestamp(det2_free.onset) - onset) <= 3 * grain and survive_share > 0.35
        for d, f in zip(data_quality, qrep.findings):
            if f in overlapping:
                what = ("filled from the seasonal baseline" if f.check == "completeness"
                        else "with the duplicates removed")
                if survives:
                    d["bearing"] = (f"overlaps the divergence; {what}, the change in "
                                    f"{spec.name} is {det2.relative_change:+.1%} instead of "
                                    f"{rc0:+.1%}: the divergence is real")
                else:
                    d["bearing"] = (f"explains the divergence: {what}, {spec.name} changes "
                                    f"{det2.relative_change:+.1%} instead of {rc0:+.1%} and "
                                    "no divergence remains")
                    d["severity"] = "error"
        dq_verdict = not survives
    data_quality += srm_findings
    timings["quality_bearing"] = time.perf_counter() - t

    # -------- rank changes
    t = time.perf_counter()
    say("ranking changes near the onset")
    changes = st.changes(pp.name)
    sign = float(np.sign((det.observed or 0) - (det.baseline or 0))) or -1.0

    s_start, s_end = onset - pd.Timedelta("15D"), obs[1]
    s_cache: dict = {}

    def series_fn(filt: dict, negate: bool) -> pd.DataFrame:
        # One query per scope: the unexposed group is the total minus the exposed
        # one (sums are additive), so each change costs one scan, and a scope
        # shared by several changes costs one scan in all.
        key = tuple(sorted((k, str(v)) for k, v in (filt or {}).items()))
        if key not in s_cache:
            s_cache[key] = metric_series(st.con, sp, spec, filter=filt or None,
                                         start=s_start, end=s_end).frame
        ex = s_cache[key]
        if not negate:
            return ex
        if () not in s_cache:
            s_cache[()] = metric_series(st.con, sp, spec, start=s_start, end=s_end).frame
        tot = s_cache[()].set_index("ts")[["num", "den", "rows"]]
        un = tot.sub(ex.set_index("ts")[["num", "den", "rows"]].reindex(tot.index).fillna(0.0))
        un = un[un["rows"] > 0].reset_index()
        un["value"] = un["num"] / un["den"] if spec.kind == "ratio" else un["num"]
        return un

    def panel_fn(scopes: list, start, stop) -> pd.DataFrame:
        from ..store import metric_panel

        r = metric_panel(st.con, sp, spec, scopes, start=start, end=stop)
        queries["joint_panel"] = r.sql
        return r.frame

    prior = None
    if memory is not None and Path(memory).is_file():
        from .memory import prior_evidence

        onset_iso, direction = _iso(onset), ("drop" if sign < 0 else "rise")

        def prior(change):  # resolved past investigations as prior log-odds, shown as such
            return prior_evidence(memory, metric=spec.name, slices=slices, candidate=change,
                                  direction=direction, passport=pp.name, onset=onset_iso,
                                  asof=memory_asof)

    ranking = rank_changes(changes, onset=onset, end=end, grain=grain, kind=spec.kind,
                           direction_sign=sign, leaves=leaves, top_slices=slices,
                           series=series_fn, data_end=data_last, focus=scope or None, prior=prior,
                           panel=panel_fn, onset_set=onset_set)
    timings["rank"] = time.perf_counter() - t
    dose = getattr(ranking, "dose", None)
    # a dose-response that follows the exposure dates the ramp from its first step;
    # otherwise the first step whose exposed units diverge does
    first_dose = None if dose is None else (
        (dose.first_step, dose.first_step_id, "first step of the rollout") if dose.consistent
        else (*dose.first_diverging(sign, grain), "first rollout step whose exposed units "
              "diverge") if dose.first_diverging(sign, grain) else None)
    if first_dose is not None and first_dose[0] < onset:
        say(f"dose-response: the divergence began with the {first_dose[2]} "
            f"{_iso(first_dose[0])}")
        onset = first_dose[0]
        onset_from = f"{first_dose[2]} ({first_dose[1]})"
        base_inv["params"]["onset_from_first_dose"] = first_dose[1]
        # rank again from the first dose: the ramp's first row is now aligned
        ranking = rank_changes(changes, onset=onset, end=end, grain=grain, kind=spec.kind,
                               direction_sign=sign, leaves=leaves, top_slices=slices,
                               series=series_fn, data_end=data_last, focus=scope or None,
                               prior=prior, panel=panel_fn)
    causes = [c.to_dict() for c in ranking.causes]

    # -------- verdict
    mix_share = float(rm.mix_share) if rm is not None else 0.0
    if dq_verdict:
        verdict = "data_quality"
        scale = min(survive_share, 1.0)
        # the defect explains the divergence: it began when the defect did (a gap at
        # night shows in the total only once the slice's volume makes it visible)
        starts = [f.start for f in overlapping if f.start is not None and
                  onset - pd.Timedelta("24h") <= f.start < onset]
        if starts:
            onset = min(starts)
            onset_from = "start of the data-quality defect that explains it"
        gap = next((f for f in overlapping if f.slice), None)
        if gap is not None:
            slices = [_gap_slice(gap, slices)] + [s for s in slices if s["filter"] != gap.slice]
    else:
        from ..events.verdict import decide_verdict

        verdict = decide_verdict(data_quality_explains=False,
                                 strict_mix=rm is not None and _is_mix_shift(rm), rm=rm,
                                 divergence_sign=sign, top=causes[0] if causes else None)
        scale = 1.0
        if verdict == "mix_shift":
            scale = max(0.0, min(1.0, 1.0 - mix_share))
            slices = _mix_slices(leaves, leaf_dims, m) + slices
    if verdict != "change":
        for c in causes:
            c["confidence"] = round(min(c["confidence"] * scale, 0.49), 4)
            if scale < 1.0:
                c["evidence"] = c["evidence"] + [
                    f"confidence scaled by {scale:.2f}: the verdict is {verdict}"]
    causes.sort(key=lambda c: -c["confidence"])
    # A change the evidence names as the cause, at a time the data cannot tell from
    # the scan's onset (inside its 95% set), dates the divergence: the scan's own
    # estimate wanders inside a flat likelihood (a night, a small slice), the
    # change's time does not. Ranked first, then dated, so the dating adds no blame.
    if verdict == "change" and causes and onset_set and onset_from.startswith("scan") \
            and ranking.aligned is not None and causes[0].get("own_effect") is not False:
        t_top = pd.Timestamp(causes[0]["ts"]).floor(grain)
        s_lo, s_hi = ranking.aligned  # as far as the ranking aligned changes
        # (one grain of slack: the set's edges fall between buckets)
        if s_lo - grain <= t_top <= s_hi + grain and t_top != onset:
            onset_from = (f"time of {causes[0]['change_id']}, inside the 95% set of the "
                          f"{onset_from}")
            causes[0]["evidence"] = list(causes[0]["evidence"]) + [
                f"the divergence is dated from this change: the scan put the onset at "
                f"{_iso(onset)}, and the data alone allow {_iso(onset_set[0])} .. "
                f"{_iso(onset_set[1])}"]
            onset = t_top
    for c in causes:
        _as_hypothesis(c, spec.name, slices)
    verification = None
    if verify and causes and verdict in ("change", "external"):
        verification = _verify_causes(st, pp, sp, spec, causes, onset=onset, end=end,
                                      grain=grain, sign=sign, slices=slices, changes=changes,
                                      say=say, timings=timings)
    base_inv["params"]["next_step"] = _next_step(verdict, causes, slices, data_quality)
    div = _div_dict(det)
    div["onset"], div["window"] = _iso(onset), [_iso(onset), _iso(end)]
    if onset_set:  # the 95% likelihood-ratio set of the scan's onset (Siegmund 1988)
        div["onset_interval"] = [_iso(onset_set[0]), _iso(onset_set[1])]
    div["onset_source"] = onset_from
    if scope:
        div["scope"] = scope
    if ranking.stability is not None:
        div["top_cause_stability"] = ranking.stability
    inv = Investigation(verdict=verdict, divergence=div, slices=slices,
                        causes=causes, data_quality=data_quality,
                        rate_mix=None if rm is None else _safe_dict(rm),
                        external=ranking.external, localization=loc, ranking=ranking,
                        verification=verification, **base_inv)
    say(f"verdict {verdict}; top cause "
        f"{causes[0]['change_id'] + ' ' + format(causes[0]['confidence'], '.0%') if causes else '-'}")
    return inv


def _verify_causes(st, pp, sp, spec, causes: list[dict], *, onset, end, grain, sign,
                   slices: list[dict], changes, say: Progress, timings: dict):
    """DoWhy verification of the top two causes; their evidence and tests gain its lines."""
    from ..causal import available

    if not available():
        say("DoWhy is not installed (pip install 'workbench[causal]'): causes not verified")
        return None
    from ..causal import verify_top_causes

    t = time.perf_counter()
    say("verifying the top causes with DoWhy (estimate, refuters, counterfactual, gcm)")
    rep = verify_top_causes(st.con, sp, spec, causes[:2], onset=onset, end=end, grain=grain,
                            direction=sign, graph=pp.graph, changes=changes,
                            slice=slices[0]["filter"] if slices else None)
    for c in causes:
        v = rep.by_id(c["change_id"])
        if v is None:
            continue
        c["verification"] = v.verdict
        c["evidence"] = c["evidence"] + rep.evidence_for(c["change_id"])
        c.setdefault("tests", []).append({"test": "DoWhy verification", "result": v.reason})
    timings["verify"] = time.perf_counter() - t
    say("verification: " + ", ".join(f"{k} {v}" for k, v in rep.verdicts.items()))
    return rep


def _srm_findings(pp: Passport) -> list[dict]:
    """Sample-ratio mismatch of the passport's experiments, as quality findings."""
    if pp.experiments is None or len(pp.experiments) == 0:
        return []
    from ..experiments import check_srm

    out = []
    for r in check_srm(pp.experiments):
        out.append({"check": "srm", "severity": "error" if r.mismatch else "info",
                    "detail": r.detail(), "slice": r.worst_slice,
                    "puts_at_risk": ([f"any effect read from experiment {r.experiment}: its "
                                      "assignment or logging is broken"] if r.mismatch else []),
                    "experiment": r.to_dict()})
    return out


def _safe_dict(obj) -> dict:
    d = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return json.loads(json.dumps(d, default=_json_default))


def _gap_slice(f, slices) -> dict:
    for s in slices:
        if s["filter"] == f.slice:
            return s
    return {"filter": dict(f.slice), "explained_share": 1.0, "baseline": None,
            "observed": None, "source": "data_quality"}


def _div_dict(det) -> dict:
    d = {"onset": _iso(det.onset),
         "window": [_iso(det.onset), _iso(det.end)] if det.onset is not None else None,
         "baseline": _f(det.baseline), "observed": _f(det.observed),
         "relative_change": _f(det.relative_change), "score": _f(det.score),
         "p_value": _f(getattr(det, "p_value", None)),
         "direction": getattr(det, "direction", None),
         "method": getattr(det, "method", None)}
    return d


def _f(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def minimal_filter(leaves: pd.DataFrame, filt: dict, order: list[str] | None = None) -> dict:
    """Drop conditions implied by the others (``browser=app`` given ``platform=ios``).

    A condition is implied when removing it leaves the same set of leaves with
    traffic; the shorter filter names the same slice and reads better.
    """
    from ..events import scope_mask

    active = leaves[(leaves["obs_den"] > 0) | (leaves["base_den"] > 0)] \
        if "obs_den" in leaves else leaves
    cur = dict(filt)
    target = scope_mask(active, cur)
    for k in sorted(filt, key=lambda d: active[d].nunique() if d in active else 0):
        trial = {d: v for d, v in cur.items() if d != k}
        if trial and np.array_equal(scope_mask(active, trial), target):
            cur = trial
    return canonical_filter(active, cur, order)


def canonical_filter(leaves: pd.DataFrame, filt: dict, order: list[str] | None = None) -> dict:
    """Name each condition by the earliest equivalent dimension in ``order``.

    ``app_version=web`` and ``platform=web`` select the same leaves; the
    manifest's dimension order decides which name is shown.
    """
    from ..events import scope_mask

    order = order or list(leaves.columns)
    out = {}
    for d, v in filt.items():
        m = scope_mask(leaves, {d: v})
        best = (d, v)
        for d2 in order:
            if d2 == d or d2 not in leaves or d2 in filt:
                continue
            if order.index(d2) >= (order.index(d) if d in order else len(order)):
                break
            vals = leaves.loc[m, d2].astype(str).unique()
            if len(vals) == 1 and np.array_equal(scope_mask(leaves, {d2: vals[0]}), m):
                best = (d2, str(vals[0]))
                break
        out[best[0]] = best[1]
    return out


def _slices_out(loc, spec, leaves: pd.DataFrame | None = None,
                order: list[str] | None = None) -> list[dict]:
    out = []
    for s in getattr(loc, "slices", ()):
        f = {k: str(v) for k, v in dict(s.filter).items()}
        if leaves is not None:
            f = minimal_filter(leaves, f, order)
        d = {"filter": f,
             "explained_share": _f(s.explained_share), "baseline": _f(s.baseline),
             "observed": _f(s.observed)}
        for extra in ("relative_change", "effect_size", "p_value", "q_value", "confidence",
                      "den_share"):
            if hasattr(s, extra):
                d[extra] = _f(getattr(s, extra))
        out.append(d)
    return out
