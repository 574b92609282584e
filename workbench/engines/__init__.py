"""Engines: who runs the heavy scan over raw event files (the seam of issue 18).

The investigation reads one DuckDB store (``workbench.store``) and never the
raw files. What grows with the data is the scan that turns raw unit-level
files into the store's dictionary-coded facts at ingest: normalizing every row
(time stamps to UTC, empty dimension values to ``(null)``, measures to
doubles), finding each dimension's values not yet in its dictionary, coding
every row, and the batch's row count and time range. That scan is the seam:
an :class:`Engine` stages a batch (:meth:`Engine.stage_batch`) and hands the
store a :class:`StagedBatch`, coded Parquet plus the new dictionary entries,
which the store appends in one transaction. Everything after (series, quality,
slice scans, localization, ranking) is the same code on the same store
whatever the engine, so an investigation run with ``engine="spark"`` gives
the same answer as with DuckDB (``tests/engines/test_parity.py``).

Engines:

- ``duckdb`` (default, embedded): the store scans the files itself, in its
  own transaction (``Store._load_batch``); nothing is staged.
- ``spark`` (:mod:`workbench.engines.spark`): Apache Spark, local (``local[2]``)
  or a cluster by master URL; pyspark is imported only when chosen.

The engine is picked by ``workbench.set_options(engine=..., spark_master=...)``
or ``workbench investigate --engine spark [--spark-master URL]``.
"""
from __future__ import annotations

from .base import Engine, StagedBatch

__all__ = ["Engine", "StagedBatch", "current_engine"]


def current_engine() -> Engine | None:
    """The engine the options name; ``None`` for DuckDB (the store scans in-process)."""
    from ..options import get_options

    o = get_options()
    if o["engine"] == "spark":
        from .spark import SparkEngine

        return SparkEngine(o["spark_master"])
    return None
