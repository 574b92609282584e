"""``workbench watch`` and ``workbench retrain``: streaming ingest and continuous retraining.

``workbench watch PASSPORT --source DROP_FOLDER`` (or ``--source nats://HOST:PORT/SUBJECT``
with ``extensions/workbench-nats``) ingests micro-batches exactly once, detects
continuously and prints one story per divergence (``--json``: one JSON object a
line: ``started``, ``batch``, ``late``, ``rejected``, ``alert``, ``story``,
``stopped``). ``workbench retrain PASSPORT`` refits the stream models (one
versioned snapshot per metric, with a drift report); run it from cron or a
systemd timer (docs/streaming.md).
"""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    """Add ``watch`` and ``retrain`` to a ``workbench`` sub-parser set."""
    w = subparsers.add_parser("watch", help="ingest micro-batches from a folder or a broker, "
                                            "detect continuously, tell one story per divergence")
    w.add_argument("passport", help="passport directory (its history is ingested first)")
    w.add_argument("--source", required=True,
                   help="a drop folder (PATH or folder:PATH), or SCHEME://... of a "
                        "workbench.streams plug-in (nats://127.0.0.1:4222/SUBJECT?stream=NAME)")
    w.add_argument("--db", help="DuckDB store (default PASSPORT/.workbench/store.duckdb)")
    w.add_argument("--metric", action="append", help="metric to watch (repeatable; default all)")
    w.add_argument("--lateness", default="0s",
                   help="allowed lateness behind the newest event time, e.g. 30min, 2h "
                        "(older rows go to late_events; default 0s)")
    w.add_argument("--z", type=float, default=4.0, help="|z| a grain must reach (default 4)")
    w.add_argument("--run", type=int, default=3,
                   help="consecutive anomalous grains that start a divergence (default 3)")
    w.add_argument("--out", default="investigations",
                   help="library the stories' investigations are saved in")
    w.add_argument("--no-artifact", action="store_true", help="do not save investigations")
    w.add_argument("--verify", action="store_true", help="verify causes with DoWhy in stories")
    w.add_argument("--max-batches", type=int, help="stop after this many batches")
    w.add_argument("--idle-exit", type=float, help="stop after this many seconds without a batch")
    w.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    w.set_defaults(func=cmd_watch)

    r = subparsers.add_parser("retrain", help="refit the stream models (versioned, with a drift "
                                              "report); fit for cron or a systemd timer")
    r.add_argument("passport", help="passport directory (or its name with --db)")
    r.add_argument("--db", help="DuckDB store (default PASSPORT/.workbench/store.duckdb)")
    r.add_argument("--metric", action="append", help="metric to refit (repeatable; default all)")
    r.add_argument("--days", type=float, default=28.0, help="fit on the last N days (default 28)")
    r.add_argument("--wait", type=float, default=300.0,
                   help="seconds to wait for the store while `watch` holds it (default 300)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_retrain)


def _lateness(text: str):
    import pandas as pd

    from .errors import UsageError

    try:
        td = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise UsageError(f"--lateness {text!r}: expected a duration such as 0s, 30min or 2h") \
            from None
    if td < pd.Timedelta(0):
        raise UsageError(f"--lateness {text!r}: must not be negative")
    return td


def _text_event(ev: dict) -> None:
    kind = ev["event"]
    if kind == "story":
        print(f"== divergence of {ev['metric']} from {ev['onset']} (alert {ev['alert_id']}) ==")
        print(ev["story"], flush=True)
        return
    if kind == "batch":
        msg = (f"batch {ev['batch_id']}: {ev['status']}, {ev['rows']} rows"
               + (f", {ev['late_rows']} late" if ev["late_rows"] else "")
               + f", watermark {ev['watermark']}")
    elif kind == "alert":
        msg = (f"ALERT {ev['alert_id']}: {ev['metric']} diverges {ev['direction']} from "
               f"{ev['onset']} (peak |z| {ev['peak_z']}); investigating")
    elif kind in ("rejected", "late", "story_deferred"):
        msg = ev["detail"]
    elif kind == "started":
        msg = (f"watching {ev['passport']} ({ev['rows']} rows in {ev['db']}); "
               f"metrics {', '.join(ev['metrics'])}")
    elif kind == "model":
        msg = f"model of {ev['metric']} now {ev['id']} (version {ev['version']})"
    else:
        msg = f"stopped after {ev.get('batches', 0)} batches"
    print(f"[watch] {msg}", file=sys.stderr, flush=True)


def cmd_watch(a) -> int:
    from .stream import DetectConfig, WatchConfig, Watcher

    cfg = WatchConfig(lateness=_lateness(a.lateness), detect=DetectConfig(z=a.z, run=a.run),
                      metrics=tuple(a.metric) if a.metric else None,
                      library=None if a.no_artifact else a.out, verify=a.verify,
                      max_batches=a.max_batches, idle_exit=a.idle_exit)

    def emit(ev: dict) -> None:
        if a.json:
            print(json.dumps(ev, default=str), flush=True)
        else:
            _text_event(ev)

    Watcher(a.passport, a.source, db=a.db, config=cfg, emit=emit).run()
    return 0


def cmd_retrain(a) -> int:
    from pathlib import Path

    from .investigation import default_db
    from .passport import parse_manifest
    from .stream import retrain
    from .stream.watch import open_store

    name = parse_manifest(a.passport).name
    db = Path(a.db) if a.db else default_db(a.passport)
    with open_store(db, wait=a.wait) as st:
        metrics = a.metric or list(st.passport(name).manifest.metrics)
        for mt in metrics:
            st.passport(name).manifest.metric(mt)  # unknown metric: an error before any fit
        reports = [retrain(st, name, mt, days=a.days) for mt in metrics]
    if a.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1, default=str))
    else:
        print("\n".join(r.summary() for r in reports))
    return 0
