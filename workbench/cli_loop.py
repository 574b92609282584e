"""``workbench loop``: test a hypothesis by acting on it, from a terminal or a script.

``workbench loop PASSPORT --metric M --cause ID --template rollback --dose 50 --hours H --json``

investigates the passport (no artifact, no DoWhy verification), takes cause
``ID`` from the ranked list (its prior confidence, scope and time; the top
slice says where the divergence lives), launches the template through the
flag provider (intent and outcome in the audit log), simulates ``H`` hours of
micro-batches appended to a store of the loop's own, updates after each and
prints one JSON object: ``action``, ``status`` (``confirmed`` | ``refuted`` |
``undecided``), ``updates``, ``readout``, ``plan``, ``divergence``,
``next_steps``. :func:`close_loop` is the same verb for Python.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path


def register(subparsers):
    """Add ``loop`` to a ``workbench`` sub-parser set; returns the parser."""
    p = subparsers.add_parser("loop", help="launch a rollback test, dose ramp or holdout of a "
                                           "ranked cause and watch the world answer")
    p.add_argument("passport", help="passport directory (with truth.json for the simulated world)")
    p.add_argument("--metric", required=True)
    p.add_argument("--cause", required=True, help="change id of a ranked cause (e.g. chg-0431)")
    p.add_argument("--template", default="rollback", help="rollback | dose_ramp | holdout")
    p.add_argument("--dose", type=float, help="percent of the scope reverted (template default)")
    p.add_argument("--hours", type=int, default=6, help="simulated hours to watch (default 6)")
    p.add_argument("--provider", default="flagd-file",
                   help="flag provider: flagd-file or a workbench.flag_providers plug-in")
    p.add_argument("--provider-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option passed to a plug-in provider (repeatable)")
    p.add_argument("--audit", help="audit log (default INVESTIGATIONS/audit.jsonl)")
    p.add_argument("--workdir", help="flag file, batches and store of the loop "
                                     "(default PASSPORT/.workbench/loop/)")
    p.add_argument("--db", help="store the investigation reads (default PASSPORT/.workbench/"
                                "store.duckdb); the loop's batches go to a store of its own")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated world")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_loop)
    return p


def close_loop(passport, *, metric: str, cause: str, template: str = "rollback",
               dose: float | None = None, hours: int = 6, audit=None, workdir=None,
               provider=None, seed: int = 0, identity=None, progress=None, on_update=None,
               db=None):
    """Investigate, pick cause ``cause``, and run the loop on it (see the module docstring).

    Returns a :class:`workbench.experiments.loop.LoopResult`.
    """
    from .errors import UsageError
    from .experiments.flags import FlagdFileProvider
    from .experiments.loop import run_loop
    from .investigation import investigate
    from .investigation.library import audit_path
    from .passport import load_passport

    pp = load_passport(passport)
    inv = investigate(pp, metric=metric, db=db, artifact_dir=None, progress=progress,
                      verify=False)
    ans = inv.to_dict()
    causes = ans.get("causes") or []
    match = [c for c in causes if c.get("change_id") == cause]
    if not match:
        raise UsageError(f"--cause {cause} is not among the ranked causes of {metric}; "
                         "ranked: " + (", ".join(c["change_id"] for c in causes[:10]) or "none"))
    base = Path(workdir) if workdir else Path(pp.directory) / ".workbench" / "loop"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    run_dir = base / f"{template}-{cause}-{stamp}"
    provider = provider or FlagdFileProvider(base / "flags.json")
    top = (ans.get("slices") or [{}])[0].get("filter") or {}
    return run_loop(pp, metric=metric, cause=match[0], template=template, dose=dose,
                    hours=hours, workdir=run_dir, audit=Path(audit) if audit else audit_path(),
                    provider=provider, identity=identity, other_causes=causes, seed=seed,
                    on_update=on_update, focus=top)


def cmd_loop(a) -> int:
    from .errors import UsageError
    from .experiments.flags import load_provider

    opts = {}
    for kv in a.provider_option:
        if "=" not in kv:
            raise UsageError(f"--provider-option {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        opts[k] = v
    provider = None
    if a.provider != "flagd-file" or opts:
        provider = load_provider(a.provider, **opts)

    def say(msg: str) -> None:
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    def on_update(u: dict) -> None:
        say(f"  {u['ts']}  dose {u['dose']:g}%  confidence {u['confidence']:.3f}  effect "
            f"{u['effect']:+.4f} ({u['ci_low']:+.4f}..{u['ci_high']:+.4f})  {u['status']}")

    res = close_loop(a.passport, metric=a.metric, cause=a.cause, template=a.template,
                     dose=a.dose, hours=a.hours, audit=a.audit, workdir=a.workdir,
                     provider=provider, seed=a.seed, on_update=on_update, db=a.db,
                     progress=None if a.quiet else (lambda m, *x, **k: None))
    if a.json:
        print(json.dumps(res.to_dict(), indent=1, default=str))
    else:
        print(res.summary())
    return 0
