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
    register_users(subparsers)
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
    a = p.add_argument_group("access (a token login is on by default; see README, Serving)")
    a.add_argument("--users", metavar="FILE",
                   help="users file for password logins (`workbench users add FILE NAME "
                        "--role ROLE`); required, or OAuth, on a non-loopback --address")
    a.add_argument("--oauth-provider", metavar="NAME",
                   help="log in through Panel's OAuth provider NAME (github, google, azure, "
                        "...; key and secret from PANEL_OAUTH_KEY/PANEL_OAUTH_SECRET); roles "
                        "from --users, viewer otherwise")
    a.add_argument("--no-token", action="store_true",
                   help="no token login (only --users or OAuth)")
    a.add_argument("--cookie-secret", metavar="SECRET", default=None,
                   help="secret signing session cookies, at least 32 bytes (default "
                        "$WORKBENCH_COOKIE_SECRET, else a random one per start)")
    a.add_argument("--allow-origin", metavar="HOST:PORT", action="append", default=[],
                   help="another HOST:PORT the page is reached at (a proxy); repeatable, "
                        "no wildcards")
    p.add_argument("--build-threads", type=int, default=1, metavar="N",
                   help="threads building page sessions off the event loop (default 1; "
                        "0 builds them on the loop)")
    p.add_argument("--num-procs", type=_positive, default=1, metavar="N",
                   help="server processes sharing the port (default 1; see docs/serving.md)")
    a.add_argument("--suppress-k", metavar="K", type=_positive, default=None,
                   help="smallest count shown to roles without the unmasked grant; "
                        "smaller cells and their complements are withheld (default 11)")
    return p


def _positive(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return k


def register_users(subparsers) -> argparse.ArgumentParser:
    """Add ``users add FILE NAME --role ROLE`` (the password file of ``serve --users``)."""
    p = subparsers.add_parser("users", help="manage the users file of `serve --users`")
    sub = p.add_subparsers(dest="users_cmd", required=True)
    add = sub.add_parser("add", help="add or replace a user (password read from the terminal "
                                     "or standard input)")
    add.add_argument("file")
    add.add_argument("name")
    add.add_argument("--role", required=True,
                     choices=["viewer", "analyst", "operator", "admin"])
    add.add_argument("--oauth", action="store_true",
                     help="an OAuth user: a role and no password")
    p.set_defaults(handler=run_users)
    return p


def run_users(args: argparse.Namespace) -> int:
    """Run ``workbench users add``."""
    import getpass
    import sys

    from .governance.auth import UserFile

    password = None
    if not args.oauth:
        password = (getpass.getpass(f"password for {args.name}: ") if sys.stdin.isatty()
                    else sys.stdin.readline().rstrip("\n"))
    UserFile.add(args.file, args.name, args.role, password)
    print(f"{args.file}: {args.name} ({args.role})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``workbench serve`` with parsed arguments; blocks until interrupted."""
    from .errors import UsageError

    if not args.passport and not args.db:
        raise UsageError("serve: give a passport directory or --db PATH")
    from .ui.app import run as run_app

    return run_app(args)
