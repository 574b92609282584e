"""DuckDB locked down for served sessions.

A served session's queries run on the server for whoever is logged in, so the
connections they use get the least the work needs (Saltzer and Schroeder,
"The Protection of Information in Computer Systems", 1975: least privilege,
fail-safe defaults), using DuckDB's own security settings
(https://duckdb.org/docs/operations_manual/securing_duckdb/overview):
no file outside the data folders (``allowed_directories`` then
``enable_external_access = false``), no extension installed or loaded on
demand, a memory limit and a thread count, and then ``lock_configuration`` so
that no later statement can undo any of it. User values reach SQL only as
prepared parameters (``tests/governance/test_sql_params.py`` fails on an
f-string passed to ``execute``/``sql`` in the serving code).

:func:`serve_lockdown` turns it on for the process (``workbench serve`` calls
it); :class:`workbench.store.Store` then applies :func:`lock_down` to every
read-only connection it opens (:func:`configure`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from .sql import lit as _lit

__all__ = ["Lockdown", "configure", "lock_down", "serve_lockdown", "served_lockdown"]


@dataclass(frozen=True)
class Lockdown:
    """What a served connection may use."""

    directories: tuple[str, ...]
    memory_limit: str = "2GB"
    threads: int = 2


_SERVED: Lockdown | None = None


def lock_down(con, policy: Lockdown) -> None:
    """Apply ``policy`` to the DuckDB connection ``con`` and lock its configuration.

    Settings are server configuration, never user input; DuckDB's ``SET``
    takes no parameters, so the directory list is written as escaped literals.
    """
    dirs = ", ".join(_lit(str(Path(d).resolve()) + "/") for d in policy.directories)
    # global: every later connection to this database instance shares the locked settings
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute(f"SET memory_limit = {_lit(policy.memory_limit)}")
    con.execute(f"SET threads = {int(policy.threads)}")
    con.execute("SET lock_configuration = true")


#: Held while a store connection is configured. DuckDB shares one instance between the
#: connections a process opens to a file, so two sessions opening readers at once (sessions
#: are built on worker threads) raced: one had turned external access off while the other
#: was still setting allowed_directories ("Cannot change allowed_directories when
#: enable_external_access is disabled").
CONFIGURING = threading.Lock()


def _locked(con) -> bool:
    """Whether the instance is locked down (or being locked): nothing more may be set."""
    locked, external = con.execute(
        "SELECT current_setting('lock_configuration'), "
        "current_setting('enable_external_access')").fetchone()
    return bool(locked) or not bool(external)


def configure(con, *, read_only: bool) -> None:
    """A store connection's settings: UTC, no progress bar; locked down when it is a
    served session's reader.

    DuckDB shares one database instance between the connections a process opens
    to a file, so a reader opened while another is open finds the instance
    already locked, with these settings applied globally: it is left as it is.
    """
    if _locked(con):
        return
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    if read_only and _SERVED is not None:
        lock_down(con, _SERVED)


def serve_lockdown(directories, *, memory_limit: str = "2GB", threads: int = 2) -> Lockdown:
    """Lock down every read-only store connection opened from now on in this process."""
    global _SERVED
    _SERVED = Lockdown(tuple(str(d) for d in directories if d), memory_limit, int(threads))
    return _SERVED


def served_lockdown() -> Lockdown | None:
    """The process's lockdown (None: not serving)."""
    return _SERVED
