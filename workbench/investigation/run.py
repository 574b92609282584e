"""``investigate``: from a passport to a verdict, slices and ranked causes.

The verb only: load and validate the passport, ingest it into the DuckDB
store (batches already stored are skipped), run the stages of the analysis
over one read-only connection (:mod:`.stages`: audit, detect, localize, bear,
rank, decide), record the baseline the conclusion was drawn against, assemble
the frozen answer once (:mod:`.result`), and save it in the library when one
is given (:mod:`.versions`). Re-running a saved version (:func:`rerun_investigation`,
:func:`reopen`) lives here too: it is ``investigate`` again.

Every number keeps the SQL that produced it (``Investigation.queries``).
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .._format import iso
from ..errors import UsageError
from ..options import get_options
from ..passport import Passport, load_passport
from .result import Investigation, LibraryRecord
from .stages import analyse, open_context

_iso = iso

Progress = Callable[[str], None]
#: ``investigate(artifact_dir=...)`` left out: the library of ``set_options``, if any
FROM_OPTIONS: Any = type("FromOptions", (), {"__repr__": lambda self: "<from set_options>"})()


def stderr_progress(prefix: str = "workbench") -> Progress:
    """A progress callback printing timed steps on standard error."""
    t0 = time.perf_counter()

    def _p(msg: str) -> None:
        print(f"[{prefix} {time.perf_counter() - t0:5.1f}s] {msg}", file=sys.stderr, flush=True)

    return _p


def _quiet(_msg: str) -> None:
    return None


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
                db: str | Path | None = None, artifact_dir: Any = FROM_OPTIONS,
                progress: Progress | None = None, memory: str | Path | None = None,
                memory_asof: str | None = None, verify: bool | None = None,
                detector=None, localizer=None, hypotheses=None) -> Investigation:
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
        The library the run is saved into as a version (a notebook artifact);
        None: not saved. By default, ``workbench.set_options(library=...)``,
        and nothing is saved when no library was set (a Python run does not
        become a version of another investigation behind the user's back).
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
        process); skipped with a note when DoWhy is not installed. Default:
        ``workbench.set_options(verify=...)`` (False).
    detector:
        The divergence detector: a name of the ``workbench.detectors`` plug-in
        group (``workbench plugins list``), a class or an object; default the
        built-in ``seasonal``. Every detection of the run uses it (the total,
        the slice scans, the refined onset, the repaired series).
    localizer:
        The slice finder: a name of ``workbench.localizers`` or a callable with
        the signature of :func:`workbench.localize.localize`; default the
        built-in ``search``. A large passport (localized in DuckDB) always uses
        the built-in.
    hypotheses:
        People's hypotheses, tested and ranked with the changes of the log
        (:mod:`workbench.events.people`): strings ``'LABEL;DIM=VAL;START;END'``,
        dicts ``{label, slice, start, end}`` or
        :class:`~workbench.events.people.PersonHypothesis`. Their causes carry
        ``origin: "person"``; a verdict one of them leads is ``external``.

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
    opts = get_options()
    if artifact_dir is FROM_OPTIONS:
        artifact_dir = opts["library"]
    if verify is None:
        verify = opts["verify"]
    if memory is None and artifact_dir is not None:
        memory = Path(artifact_dir) / "memory.duckdb"
    t = time.perf_counter()
    win = _parse_window(window)
    from ..events.people import coerce_hypotheses

    hyps = coerce_hypotheses(hypotheses)
    if not isinstance(passport, Passport):  # files the store verified unchanged: not again
        from ..store import verified_files

        known = verified_files(Path(db) if db is not None else default_db(passport))
    pp = passport if isinstance(passport, Passport) else load_passport(passport, trusted=known)
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
        ctx = open_context(st, pp, spec, win, say, timings, skipped=skipped, memory=memory,
                           memory_asof=memory_asof, verify=verify, detector=detector,
                           localizer=localizer, hypotheses=hyps)
        found = analyse(ctx)
    t = time.perf_counter()
    with Store(db_path) as st:
        baseline = _record_baseline(st, pp, spec, found["divergence"], found["detection"])
        model = _model_used(st, pp, spec)
    if model is not None:  # additive key, only when the metric has a retrained model
        found["divergence"]["model"] = model
    found["divergence"]["baseline_version"] = baseline.get("id")
    timings["baseline_snapshot"] = time.perf_counter() - t
    say(f"baseline version {baseline.get('id')}")
    timings["total"] = time.perf_counter() - t_all
    # assembled once, from everything the run found; never edited after
    if hyps:
        found["params"] = {**found["params"], "hypotheses": [h.to_dict() for h in hyps]}
    inv = Investigation(**{**found, "baseline": baseline, "db": str(db_path),
                           "provenance": [p.to_dict() for p in pp.provenance],
                           "passport_dir": str(Path(pp.directory).resolve()),
                           "record": LibraryRecord(clock={"loaded_at": loaded_at})})
    if artifact_dir is not None:
        write_artifact(inv, pp, artifact_dir, window=window)  # fills inv.record
        say(f"artifact written: {inv.artifact}")
    return inv


# --------------------------------------------------------------------------- re-runs
def rerun_investigation(passport, *, metric: str, window=None, db=None, memory=None,
                        memory_asof: str | None = None, hypotheses=None,
                        verify: bool | None = None):
    """Re-run a saved investigation: ``investigate`` without saving a new version.

    ``memory`` and ``memory_asof`` pin the prior evidence learned from past
    investigations to what it was when the version was saved, so a re-run
    reproduces the saved ranking even after later investigations were
    resolved. They are passed on when ``investigate`` takes them (the ranking
    uses priors), and ignored otherwise. ``hypotheses`` are people's hypotheses
    of the saved run (its ``params["hypotheses"]``), tested again. ``verify``
    re-runs the DoWhy verification (a saved version passes True when it was
    verified; None: the ``set_options`` default).
    """
    import inspect

    accepted = inspect.signature(investigate).parameters
    kw = {}
    if "memory" in accepted:
        kw["memory"] = memory
    if "memory_asof" in accepted:
        kw["memory_asof"] = memory_asof
    if hypotheses:
        kw["hypotheses"] = hypotheses
    if verify is not None:
        kw["verify"] = verify
    return investigate(passport, metric=metric, window=window, db=db, artifact_dir=None, **kw)


def write_artifact(inv, passport, artifact_dir, *, window=None) -> Path:
    """Save ``inv`` as a new version in the investigations library ``artifact_dir``.

    Called by :func:`~workbench.investigation.investigate`; returns the
    version's notebook path (``artifact_dir/inv-.../vNNNN.ipynb``). ``window``
    is taken from ``inv.params`` (kept in the signature for callers).
    """
    from .library import save_investigation

    info = save_investigation(inv, root=artifact_dir, passport_dir=passport.directory)
    return Path(info.path)


def reopen(root: str | Path | None, ref: str, *, db: str | Path | None = None,
           pin_memory: bool = False, verify: bool | None = None):
    """Re-run a saved version from its parameters; the result saves as the next version.

    Parameters
    ----------
    ref:
        The version (:func:`resolve_version`).
    db:
        Another store (default: the saved one).
    pin_memory:
        Use the prior evidence as it was when the version was saved (what
        executing its notebook does); by default the re-run learns from every
        investigation resolved since.
    verify:
        Re-run the DoWhy verification; None (the default): when the saved
        version was verified, so that a re-run reproduces its verification
        lines (:func:`~workbench.investigation.library.notebook.reproduction_check`
        compares them).

    Returns
    -------
    Investigation
        Attached to the same investigation (``inv.save`` or
        :func:`save_investigation` adds a version whose parent is the latest).
    """
    from .library import library_root, resolve_version
    from .library.integrity import _checked
    from .library.memory import memory_path

    root = library_root(root)
    info = _checked(root, resolve_version(root, ref))
    if not Path(info.passport_dir).is_dir():
        raise UsageError(f"{info.version_id}: its passport {info.passport_dir} is gone; "
                         "restore it or run the notebook with another `passport` parameter")
    nb = json.loads(Path(info.path).read_text(encoding="utf-8"))
    meta = nb.get("metadata", {}).get("workbench", {})
    params = meta.get("params", {})
    answer = json.loads(Path(info.answer_path).read_text(encoding="utf-8"))
    if verify is None:
        verify = answer.get("verification") is not None
    inv = rerun_investigation(info.passport_dir, metric=info.metric, window=info.window,
                              db=db if db is not None else params.get("db"),
                              memory=str(memory_path(root)),
                              memory_asof=params.get("memory_asof") if pin_memory else None,
                              hypotheses=(answer.get("params") or {}).get("hypotheses"),
                              verify=verify)
    rec = inv.record  # the re-run is attached to the investigation it re-runs
    rec.investigation_id, rec.library, rec.based_on = info.investigation_id, str(root), \
        info.version_id
    return inv


def _record_baseline(st, pp: Passport, spec, divergence: dict, det) -> dict:
    """Store (or reuse) the versioned baseline the conclusion was drawn against.

    It is fitted on the history before the onset (all history when nothing
    diverged), with the detector's parameters recorded beside it.
    """
    from ..store import time_range
    from ..store.baselines import fit_baseline

    sp = st.passport(pp.name)
    lo, hi = time_range(st.con, sp)
    end = pd.Timestamp(divergence["onset"]) if divergence.get("onset") else \
        hi + sp.manifest.grain_td
    if end <= lo:
        return {}
    params = {"detector": getattr(det, "method", None)}
    b = fit_baseline(st, pp.name, spec.name, period=(lo, end), params=params,
                     note=f"fitted for an investigation of {spec.name}")
    return {"id": b.id, "version": b.version, "parent": b.parent,
            "period": [_iso(b.period[0]), _iso(b.period[1])], "method": b.method,
            "detector": params["detector"], "active_changes": len(b.active_changes)}


def _model_used(st, pp: Passport, spec) -> dict | None:
    """The metric's streaming model (``workbench retrain``) and whether it is stale."""
    from ..stream.model import model_status

    return model_status(st.con, st.passport(pp.name), spec.name,
                        max_age_hours=get_options()["model_max_age_hours"])
