"""``workbench serve``: the served workbench (the UI lives in :mod:`workbench.ui`).

``cli.py`` calls :func:`register` to add the verb; the UI packages (panel,
holoviews) are imported only when the verb runs, so ``workbench investigate``
stays light.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``serve [PASSPORT | --db PATH] [--port N] [--metric NAME]`` to the CLI."""
    from argparse import RawDescriptionHelpFormatter

    p = subparsers.add_parser(
        "serve", help="serve the workbench UI in a browser (prints the URL)",
        formatter_class=RawDescriptionHelpFormatter,
        description="Serve the Divergence Workbench: the timeline, slices, hypotheses, replay "
                    "and the story of the investigation, in a browser.\n"
                    "Example: workbench serve sample_data/demo --metric conversion_rate")
    add_arguments(p)
    p.set_defaults(_serve=True)
    return p


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``workbench serve`` (also used by ``python -m workbench.ui.app``)."""
    p.add_argument("passport", nargs="?", help="passport directory")
    p.add_argument("--db", help="DuckDB store (default PASSPORT/.workbench/store.duckdb); "
                                "alone, serves the passport it was ingested from")
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--metric", help="metric shown first (default: the first of the manifest)")
    p.add_argument("--library", help="library of investigations (default "
                                      "$WORKBENCH_INVESTIGATIONS or ./investigations)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--build-threads", type=int, default=1, metavar="N",
                   help="threads building page sessions off the event loop (default 1; "
                        "0 builds them on the loop)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``workbench serve`` with parsed arguments; blocks until interrupted."""
    from .errors import UsageError

    if not args.passport and not args.db:
        raise UsageError("serve: give a passport directory or --db PATH")
    from .ui.app import run as run_app

    return run_app(args)
