"""The ``workbench`` command line.

Verbs: ``investigate``, ``ingest``, ``validate``, ``generate``. User errors
(bad input, unknown metric, a locked store) print one line on standard error
and exit with status 2; progress goes to standard error, answers to standard
output.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Divergence Workbench: is a metric's divergence real, where, why, how sure.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    inv = sub.add_parser("investigate", help="find, localize and explain a divergence")
    inv.add_argument("passport", help="passport directory")
    inv.add_argument("--metric", required=True, help="a metric defined in passport.yaml")
    inv.add_argument("--window", help="START/END (ISO UTC) to investigate instead of the "
                                      "most significant divergence")
    inv.add_argument("--json", action="store_true", help="print the JSON answer")
    inv.add_argument("--db", help="DuckDB store (default PASSPORT/.workbench/store.duckdb)")
    inv.add_argument("--out", default="investigations",
                     help="folder of notebook artifacts (default ./investigations)")
    inv.add_argument("--no-artifact", action="store_true", help="do not write a notebook")
    inv.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    inv.add_argument("--no-verify", action="store_true",
                     help="skip the DoWhy verification of the top causes (saves ~5 s)")
    inv.add_argument("--detector", help="divergence detector: a name of the workbench.detectors "
                                        "plug-in group (default: seasonal)")
    inv.add_argument("--localizer", help="slice finder: a name of the workbench.localizers "
                                         "plug-in group (default: search)")
    inv.add_argument("--role", choices=("engineer", "operator", "pm"),
                     help="print the story for this reader (engineer, operator, product "
                          "manager) instead of the table")
    inv.add_argument("--hypothesis", action="append", default=[], metavar="'LABEL;SLICE;START;END'",
                     help="your own hypothesis, tested and ranked with the change log "
                          "(repeatable): a label, DIM=VAL[,DIM=VAL] (empty: everywhere) and "
                          "an ISO window, e.g. 'CDN outage;region=APAC;2026-11-18T12:00Z;"
                          "2026-11-18T14:00Z'")
    _engine_args(inv)

    sc = sub.add_parser("scan", help="what diverged? every metric and slice, one story per onset")
    sc.add_argument("passport")
    sc.add_argument("--metric", action="append", help="limit to this metric (repeatable)")
    sc.add_argument("--db")
    sc.add_argument("--json", action="store_true")

    ing = sub.add_parser("ingest", help="load a passport (or more event batches) into a store")
    ing.add_argument("passport", help="passport directory")
    ing.add_argument("--db", help="DuckDB store (default PASSPORT/.workbench/store.duckdb)")
    ing.add_argument("--batch", action="append", default=[], metavar="FILE",
                     help="an extra event file to append (repeatable)")
    _engine_args(ing)
    ing.add_argument("--json", action="store_true")

    val = sub.add_parser("validate", help="check a passport and show its provenance")
    val.add_argument("passport")
    val.add_argument("--json", action="store_true")

    bl = sub.add_parser("baselines", help="versioned baselines: list, show, diff, fit")
    bls = bl.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, hlp in (("list", "all versions"), ("show", "one version"),
                      ("diff", "compare two versions"), ("fit", "fit a new version")):
        x = bls.add_parser(name, help=hlp)
        x.add_argument("--db", help="store file (or give --passport to use its default store)")
        x.add_argument("--passport", help="passport directory")
        x.add_argument("--json", action="store_true")
        if name == "list":
            x.add_argument("--metric")
        if name == "show":
            x.add_argument("id")
        if name == "diff":  # two ids, or two versions of a metric; names who moved it
            x.add_argument("a", nargs="?", help="baseline id (or use --metric/--from/--to)")
            x.add_argument("b", nargs="?", help="baseline id")
            x.add_argument("--metric", help="the metric whose versions --from/--to are")
            x.add_argument("--from", dest="v_from", type=int, metavar="V1")
            x.add_argument("--to", dest="v_to", type=int, metavar="V2")
        if name == "fit":
            x.add_argument("--metric", required=True)
            x.add_argument("--period", required=True, help="START/END (ISO UTC)")
            x.add_argument("--note", default="")

    from .synth import FAMILIES, HELDOUT_FAMILIES

    gen = sub.add_parser(
        "generate", help="write a synthetic incident passport with ground truth",
        description="Write a synthetic incident passport with ground truth (truth.json). "
                    "Families: " + ", ".join(FAMILIES) + "; held-out families: "
                    + ", ".join(HELDOUT_FAMILIES) + "; and 'demo' (the bundled demo).")
    gen.add_argument("family", nargs="?", help="incident family (see --list) or 'demo'")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=False, help="output directory")
    gen.add_argument("--days", type=int, default=21)
    gen.add_argument("--list", action="store_true", help="list the families")

    from .cli_plugins import register as register_plugin_verbs
    register_plugin_verbs(sub)

    from .cli_serve import register as register_serve, run as run_serve
    register_serve(sub).set_defaults(handler=run_serve)
    from .cli_investigations import register

    register(sub)  # investigations list|show|diff|reopen|stats|..., audit verify|log
    from .cli_loop import register as register_loop

    register_loop(sub)  # loop: launch a test of a cause, watch, update
    from .cli_watch import register as register_watch
    register_watch(sub)  # watch: micro-batches, continuous detection; retrain: refit models
    return p


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("duckdb", "spark"), default=None,
                   help="engine of the ingest scan over the event files (default duckdb; "
                        "spark needs `pip install 'workbench[spark]'` and Java 17)")
    p.add_argument("--spark-master", default=None, metavar="URL",
                   help="Spark master with --engine spark (default local[2]; "
                        "e.g. spark://host:7077)")


@contextlib.contextmanager
def _engine_options(a):
    """``set_options`` for ``--engine`` / ``--spark-master`` (checked before any work).

    A Spark session the command started is stopped when it ends.
    """
    from .errors import UsageError
    from .options import set_options

    kw = {k: v for k, v in (("engine", a.engine), ("spark_master", a.spark_master))
          if v is not None}
    if kw.get("spark_master") and kw.get("engine", "duckdb") != "spark":
        raise UsageError("--spark-master is for --engine spark")
    spark = kw.get("engine") == "spark"
    if spark:
        from .engines.spark import check_available
        check_available()
    with set_options(**kw):
        try:
            yield
        finally:
            if spark:
                from .engines.spark import stop
                stop()


def _cmd_investigate(a) -> int:
    with _engine_options(a):
        return _investigate(a)


def _investigate(a) -> int:
    from .investigation import investigate, stderr_progress

    inv = investigate(a.passport, metric=a.metric, window=a.window, db=a.db,
                      artifact_dir=None if a.no_artifact else a.out,
                      progress=None if a.quiet else stderr_progress(),
                      verify=not a.no_verify, detector=a.detector, localizer=a.localizer,
                      hypotheses=a.hypothesis or None)
    if a.json:
        print(inv.to_json(indent=1))
    elif a.role:
        from .investigation.render import ROLE_NAMES, narrate

        print(narrate(inv, ROLE_NAMES[a.role]))
    else:
        print(inv.summary())
    return 0


def _cmd_scan(a) -> int:
    from .investigation import stderr_progress
    from .investigation.scan import scan_passport

    rep = scan_passport(a.passport, db=a.db, metrics=a.metric, progress=stderr_progress())
    print(json.dumps(rep.to_dict(), indent=1, default=str) if a.json else rep.summary())
    return 0


def _cmd_ingest(a) -> int:
    from .investigation import default_db
    from .passport import load_passport
    from .store import Store

    pp = load_passport(a.passport)
    db = Path(a.db) if a.db else default_db(pp.directory)
    with _engine_options(a), Store(db) as st:
        rep = st.ingest(pp, batch_files=[Path(b) for b in a.batch])
    print(json.dumps(rep.to_dict(), indent=1) if a.json else rep.summary())
    return 0


def _cmd_validate(a) -> int:
    from .passport import load_passport

    pp = load_passport(a.passport)
    if a.json:
        print(json.dumps(pp.to_dict(), indent=1, default=str))
        return 0
    m = pp.manifest
    print(f"passport {m.name}: valid")
    print(f"  grain {m.grain}; dimensions {', '.join(m.all_dimensions)}; "
          f"metrics {', '.join(m.metrics)}")
    for p in pp.provenance:
        print(f"  {p.table:11s} {p.path}: {p.rows} rows, sha256 {p.sha256[:12]}, "
              f"origin {p.origin or '-'}")
    return 0


def _store_path(a) -> Path:
    from .errors import UsageError
    from .investigation import default_db

    if a.db:
        return Path(a.db)
    if a.passport:
        return default_db(a.passport)
    raise UsageError("give --db STORE or --passport DIR")


def _cmd_baselines(a) -> int:
    from .store import Store
    from .passport import parse_manifest
    from .store.baselines import diff_baselines, fit_baseline, list_baselines, load_baseline

    path = _store_path(a)
    if a.action == "fit":
        from .investigation.run import _parse_window

        period = _parse_window(a.period)
        with Store(path) as st:
            name = st.passport().name if not a.passport else None
            if a.passport:
                name = parse_manifest(a.passport).name
            b = fit_baseline(st, name, a.metric, period=period, note=a.note, reuse=False)
        print(json.dumps(b.to_dict(), indent=1) if a.json else
              f"stored {b.id} (version {b.version}, parent {b.parent or '-'}), period "
              f"{b.period[0]:%Y-%m-%d %H:%M} .. {b.period[1]:%Y-%m-%d %H:%M}")
        return 0
    with Store(path, read_only=True) as st:
        if a.action == "list":
            df = list_baselines(st.con, metric=a.metric)
            if a.json:
                print(df.to_json(orient="records", date_format="iso", indent=1))
            elif df.empty:
                print("no baselines stored yet (investigate or `baselines fit` creates them)")
            else:
                for r in df.itertuples():
                    print(f"{r.id}  v{r.version}  {r.metric:16s} {r.period_start:%Y-%m-%d %H:%M} "
                          f".. {r.period_end:%Y-%m-%d %H:%M}  parent {r.parent if isinstance(r.parent, str) else '-'}  {r.note}")
        elif a.action == "show":
            b = load_baseline(st.con, a.id)
            d = b.to_dict()
            if not a.json:
                d["active_changes"] = f"{len(b.active_changes)} changes"
            print(json.dumps(d, indent=1, default=str))
            if not a.json:
                print(b.cube)
        else:
            from .detect.baseline_diff import resolve_pair, who_moved

            pname = parse_manifest(a.passport).name if a.passport else None
            ia, ib = resolve_pair(st.con, a=a.a, b=a.b, metric=a.metric, v_from=a.v_from,
                                  v_to=a.v_to, passport=pname)
            d = diff_baselines(st.con, ia, ib)
            mv = who_moved(st.con, st.passport(d.a.passport), d.a, d.b)
            print(json.dumps({**d.to_dict(), "moved_by": mv.to_dict()}, indent=1, default=str)
                  if a.json else d.summary() + "\n" + mv.summary())
    return 0


def _cmd_generate(a) -> int:
    from . import synth
    from .errors import UsageError

    families = synth.FAMILIES + synth.HELDOUT_FAMILIES  # tuning, then held-out families
    if a.list:
        print("\n".join(families + ("demo",)))
        return 0
    if not a.family:
        raise UsageError("generate: give a FAMILY (one of " + ", ".join(families + ("demo",))
                         + ") or --list")
    if not a.out:
        raise UsageError("generate: --out DIR is required")
    if a.family == "demo":
        path = synth.generate_demo(a.out)
    else:
        if a.family not in families:
            raise UsageError(f"unknown family '{a.family}'; families are: "
                             + ", ".join(families + ("demo",)))
        path = synth.generate_incident(a.family, a.seed, a.out, days=a.days)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .errors import WorkbenchError

    parser = _parser()
    a = parser.parse_args(argv)
    if not a.command:
        parser.print_help()
        return 2
    cmd = getattr(a, "handler", None) or {"investigate": _cmd_investigate, "ingest": _cmd_ingest,
           "validate": _cmd_validate, "generate": _cmd_generate,
           "baselines": _cmd_baselines, "scan": _cmd_scan}.get(a.command) or a.func
    try:
        return cmd(a)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line unless debugging
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        print(f"workbench: internal error: {type(exc).__name__}: {exc} "
              "(set WORKBENCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
