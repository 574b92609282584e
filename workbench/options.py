"""Settings through one validated context manager: :func:`set_options`.

Modelled on ``xarray.set_options``: every setting is declared once with its
validator and its meaning; ``set_options(...)`` checks the values before
changing anything, applies them, and restores the previous ones when used as a
``with`` block (used as a plain call, the change stays). No function flips a
module global behind the user's back, and a bad value fails with the valid
choices named (exit 2 on the command line).

Settings
--------
``library``
    The investigations library folder (saved versions, journal, memory).
    ``None`` (the default): Python API runs save nothing unless given
    ``artifact_dir=``; the library commands use ``$WORKBENCH_INVESTIGATIONS``
    or ``./investigations``.
``verify``
    Whether :func:`~workbench.investigate` (and so the notebook template and
    the served app) verifies the top causes with DoWhy when it is not told
    (default ``True``, as the CLI does unless ``--no-verify``; about a second
    per investigation once DoWhy is imported).
``engine``
    The engine that runs the heavy scans over raw event files at ingest
    (:mod:`workbench.engines`): ``"duckdb"`` (embedded, the default) or
    ``"spark"`` (Apache Spark through pyspark; ``pip install 'workbench[spark]'``
    and Java 17).
``spark_master``
    The Spark master URL when ``engine="spark"``: ``local[N]``, ``local[*]``,
    ``spark://host:port``, ``yarn`` or ``k8s://...``; ``None``: ``local[2]``.
``memory_limit``
    DuckDB's ``memory_limit`` for every store opened (``"4GB"``, ``"512MiB"``);
    ``None``: DuckDB's default (80% of RAM).
``threads``
    DuckDB's worker threads for every store opened; ``None``: one per core.
``model_max_age_hours``
    A streaming model (``workbench retrain``) older than this is reported stale
    in the answer's ``divergence.model`` (default 24).

Examples
--------
>>> import workbench as wb
>>> with wb.set_options(verify=True, memory_limit="2GB"):
...     wb.get_options()["memory_limit"]
'2GB'
>>> wb.get_options()["memory_limit"] is None
True
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

__all__ = ["OPTIONS", "get_options", "set_options"]

ENGINES = ("duckdb", "spark")
_MASTER = re.compile(r"^(local(\[(\d+|\*)\])?|yarn|(spark|k8s|mesos)://[^\s'\"`]+)$")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def _library(v: Any) -> Path | None:
    if v is None:
        return None
    if not isinstance(v, (str, Path)) or not str(v).strip():
        raise UsageError(f"set_options(library={v!r}): expected a folder path or None")
    return Path(v)


def _verify(v: Any) -> bool:
    if not isinstance(v, bool):
        raise UsageError(f"set_options(verify={v!r}): expected True or False")
    return v


def _engine(v: Any) -> str:
    if v not in ENGINES:
        raise UsageError(f"set_options(engine={v!r}): expected one of {', '.join(ENGINES)}")
    return v


def _spark_master(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _MASTER.match(v.strip()):
        raise UsageError(f"set_options(spark_master={v!r}): expected a Spark master URL such "
                         "as 'local[2]', 'local[*]', 'spark://host:7077', 'yarn' or "
                         "'k8s://https://host:443', or None")
    return v.strip()


def _memory_limit(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _SIZE.match(v.strip()):
        raise UsageError(f"set_options(memory_limit={v!r}): expected a size such as '4GB' or "
                         "'512MiB' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), or None")
    return v.strip()


def _threads(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise UsageError(f"set_options(threads={v!r}): expected a whole number >= 1, or None")
    return v


def _max_age(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise UsageError(f"set_options(model_max_age_hours={v!r}): expected a number of "
                         "hours > 0 (a streaming model older than that is stale)")
    return float(v)


#: name -> (default, validator)
_DECLARED: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "library": (None, _library),
    "verify": (True, _verify),
    "engine": ("duckdb", _engine),
    "spark_master": (None, _spark_master),
    "memory_limit": (None, _memory_limit),
    "threads": (None, _threads),
    "model_max_age_hours": (24.0, _max_age),
}

#: The current settings (read them with :func:`get_options`; change them with
#: :func:`set_options`).
OPTIONS: dict[str, Any] = {k: d for k, (d, _) in _DECLARED.items()}
_LOCK = threading.Lock()


def get_options() -> dict[str, Any]:
    """A copy of the current settings."""
    with _LOCK:
        return dict(OPTIONS)


class set_options:  # noqa: N801 - a function-like context manager, named as xarray's
    """Change settings, validated; restored on leaving a ``with`` block.

    Parameters
    ----------
    **kwargs
        Any of ``library``, ``verify``, ``engine``, ``spark_master``,
        ``memory_limit``, ``threads`` (see the module docstring). Every value is checked before
        any is applied.

    Raises
    ------
    UsageError
        An unknown setting (the known ones are listed) or a bad value.
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_DECLARED))
        if unknown:
            raise UsageError(f"set_options: unknown setting(s) {', '.join(unknown)}; the "
                             f"settings are {', '.join(_DECLARED)}")
        new = {k: _DECLARED[k][1](v) for k, v in kwargs.items()}
        with _LOCK:
            self._old = {k: OPTIONS[k] for k in new}
            OPTIONS.update(new)

    def __enter__(self) -> "set_options":
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            OPTIONS.update(self._old)


def duckdb_settings() -> list[tuple[str, Any]]:
    """``(setting, value)`` pairs to ``SET`` on every DuckDB connection the store opens."""
    o = get_options()
    return [(k, o[k]) for k in ("memory_limit", "threads") if o[k] is not None]
