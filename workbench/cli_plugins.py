"""CLI verbs of plug-ins and context: ``workbench plugins``, ``search`` and ``convert``.

``register(subparsers)`` adds the three sub-commands to the ``workbench``
parser (each sets ``func``); ``python -m workbench.cli_plugins`` runs them on
their own. Answers go to standard output, warnings (a plug-in that failed to
load) to standard error; a user error exits 2 with one line.

``workbench plugins [--group G] [--check] [--json]``
    Every plug-in found: group, name, package, version, status (``ok``,
    ``broken``, ``shadowed``); ``--check`` also runs each one's contract check
    from :mod:`workbench.testing` and exits 1 if one fails.
``workbench search PASSPORT QUERY [--kind K] [--limit N] [--json] [--rebuild]``
    Ranked changes, slices, log lines and past investigations
    (:func:`workbench.context.search`).
``workbench convert SOURCE [INPUT ...] --out DIR [--sample] [--option KEY=VALUE] [--overwrite]``
    Turn inputs into a passport with a ``workbench.sources`` plug-in.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def register(subparsers) -> None:
    """Add ``plugins``, ``search`` and ``convert`` to a ``workbench`` sub-parser set."""
    from .context.index import KINDS
    from .registry import GROUPS

    p = subparsers.add_parser("plugins", help="list installed plug-ins and their status")
    p.add_argument("--group", choices=list(GROUPS), help="only this entry-point group")
    p.add_argument("--check", action="store_true",
                   help="also run each plug-in's contract check (workbench.testing)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    s = subparsers.add_parser("search", help="search a passport's changes, slices, logs and "
                                             "past investigations")
    s.add_argument("passport", help="passport directory")
    s.add_argument("query", help='words, e.g. "checkout ios"')
    s.add_argument("--kind", action="append", choices=list(KINDS),
                   help="only this kind of result (repeatable)")
    s.add_argument("--limit", type=int, default=10, help="at most this many results (10)")
    s.add_argument("--rebuild", action="store_true", help="rebuild the index first")
    s.add_argument("--investigations", default="investigations",
                   help="investigations library whose past investigations of this passport "
                        "are searched too (default ./investigations, when it exists)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_search)

    c = subparsers.add_parser("convert", help="turn outside data into a passport with a "
                                              "source plug-in")
    c.add_argument("source", help="a workbench.sources plug-in (see `workbench plugins`)")
    c.add_argument("inputs", nargs="*", help="input files or folders")
    c.add_argument("--out", required=True, help="passport directory to write or merge into")
    c.add_argument("--sample", action="store_true", help="convert the plug-in's own sample")
    c.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword option of the source (VALUE parsed as JSON when it can be)")
    c.add_argument("--overwrite", action="store_true",
                   help="replace events written by another source")
    c.set_defaults(func=cmd_convert)


def _warn_to_stderr(caught) -> None:
    for w in caught:
        print(f"workbench: warning: {w.message}", file=sys.stderr)


def cmd_plugins(a) -> int:
    from . import registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", registry.PluginWarning)
        registry.refresh()
        plugins = registry.list_plugins(a.group)
    _warn_to_stderr(caught)
    rows = [p.to_dict() for p in plugins]
    failed = 0
    if a.check:
        from .testing import check_plugin

        for p, row in zip(plugins, rows):
            if not p.ok:
                row["check"] = "skipped"
                continue
            try:
                rep = check_plugin(p)
                row["check"] = "passed"
                row["checks"] = list(rep.checks)
            except AssertionError as exc:
                row["check"] = f"FAILED: {exc}"
                failed += 1
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        cols = ["group", "name", "package", "version", "status"] + (["check"] if a.check else [])
        table = [[str(r.get(c) if r.get(c) is not None else "-") for c in cols] for r in rows]
        width = [max([len(c)] + [len(t[i].splitlines()[0]) for t in table])
                 for i, c in enumerate(cols)]
        width[-1] = len(cols[-1])
        print("  ".join(c.upper().ljust(w) for c, w in zip(cols, width)).rstrip())
        for t in table:
            print("  ".join(v.ljust(w) for v, w in zip(t, width)).rstrip())
        for r in rows:
            if r["status"] != "ok":
                print(f"  {r['group']}:{r['name']} {r['status']}: {r['error']}")
        if not rows:
            print("(no plug-ins found)")
    return 1 if failed else 0


def cmd_search(a) -> int:
    from .context import search

    lib = a.investigations if a.investigations and Path(a.investigations).exists() else None
    res = search(a.passport, a.query, kinds=a.kind, limit=a.limit, rebuild=a.rebuild,
                 investigations=lib)
    print(json.dumps(res.to_dict(), indent=1, default=str) if a.json else res.summary())
    return 0


def _parse_options(pairs: list[str]) -> dict:
    from .errors import UsageError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE, e.g. grain=15min")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_convert(a) -> int:
    from . import registry
    from .errors import UsageError, WorkbenchError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", registry.PluginWarning)
        cls = registry.get_plugin("workbench.sources", a.source)
    _warn_to_stderr(caught)
    src = cls() if isinstance(cls, type) else cls
    if a.sample == bool(a.inputs):
        raise UsageError("convert: give input files or folders, or --sample (not both)")
    inputs = src.sample_input() if a.sample else [Path(x) for x in a.inputs]
    opts = _parse_options(a.option)
    if a.overwrite:
        opts["overwrite"] = True
    try:
        out = src.to_passport(inputs, Path(a.out), **opts)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise UsageError(f"convert: the {a.source} source does not take that option: "
                             f"{exc}") from None
        raise
    except WorkbenchError as exc:
        # a user error is one line on stderr; a third-party plug-in's multi-line message
        # (a parser's caret diagram) is folded rather than printed as several lines
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        if len(lines) > 1:
            folded = WorkbenchError(" ".join(lines))
            folded.exit_code = exc.exit_code
            raise folded from exc
        raise
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``plugins``/``search``/``convert`` without the rest of the CLI."""
    from .errors import WorkbenchError

    parser = argparse.ArgumentParser(prog="workbench")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return 2
    try:
        return a.func(a)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
