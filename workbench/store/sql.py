"""The one place SQL identifiers and literals are quoted (architecture.md, ``store/``).

Names that reach SQL (columns, dimensions, measures, the time column) come from a
manifest or a file header; they are validated at load against :data:`IDENTIFIER`
(:func:`check_identifier`, a located error naming the field) and quoted here
wherever they meet SQL. Values are passed as parameters; :func:`lit` is only for
the few places DuckDB takes no parameter (a file path in ``COPY ... TO``, a
``read_csv`` column spec) and for the copy-and-paste SQL a query result shows.

This module imports nothing from the workbench at load time, so every layer (``passport``
included) can use it without an import cycle.

Quoting follows the SQL standard's delimited identifier (ISO/IEC 9075-2, 5.2
<delimited identifier>: a double quote inside is written twice), which DuckDB
implements.
"""
from __future__ import annotations

import re

#: the schema of the store's own tables (passports, batches, baselines)
META = "wb_meta"

#: Names of columns a manifest may use: a letter or ``_``, then letters, digits, ``_``.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def q(name: str) -> str:
    """Quote an SQL identifier (``a"b`` -> ``"a""b"``).

    Examples
    --------
    >>> q('country')
    '"country"'
    >>> q('a"b')
    '"a""b"'
    """
    return '"' + str(name).replace('"', '""') + '"'


def lit(value) -> str:
    """Quote an SQL string literal (``it's`` -> ``'it''s'``).

    Examples
    --------
    >>> lit("it's")
    "'it''s'"
    """
    return "'" + str(value).replace("'", "''") + "'"


def is_identifier(name: object) -> bool:
    """Whether ``name`` is a string matching :data:`IDENTIFIER` in full."""
    return isinstance(name, str) and IDENTIFIER.fullmatch(name) is not None


def identifier_problem(name: object) -> str | None:
    """``None`` for a valid name, else what is wrong with it and what was expected."""
    if is_identifier(name):
        return None
    return (f"{name!r} is not a valid column name; expected a letter or '_' followed by "
            "up to 63 letters, digits or '_' (no spaces, quotes or punctuation)")


#: DuckDB's working memory per connection unless ``WORKBENCH_DUCKDB_MEMORY_LIMIT`` says
#: otherwise (beyond it DuckDB spills to ``WORKBENCH_DUCKDB_TEMP``, default a folder
#: under the system temp directory).
DEFAULT_MEMORY_LIMIT = "2GB"
_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def bound_connection(con):
    """Set a memory limit and a spill folder on a DuckDB connection; returns it.

    Environment: ``WORKBENCH_DUCKDB_MEMORY_LIMIT`` (e.g. ``1GB``; default
    :data:`DEFAULT_MEMORY_LIMIT`) and ``WORKBENCH_DUCKDB_TEMP`` (a folder).
    """
    import os
    import tempfile

    from ..errors import UsageError

    limit = os.environ.get("WORKBENCH_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT).strip()
    if not _MEMORY.fullmatch(limit):
        raise UsageError(f"WORKBENCH_DUCKDB_MEMORY_LIMIT={limit!r}: expected a size such as "
                         "512MB or 2GB")
    temp = os.environ.get("WORKBENCH_DUCKDB_TEMP") or os.path.join(
        tempfile.gettempdir(), "workbench-duckdb")
    con.execute(f"SET memory_limit = {lit(limit)}")
    con.execute(f"SET temp_directory = {lit(temp)}")
    return con


def bq(name: str) -> str:
    """Quote a Spark SQL identifier (backticks; a backtick inside is written twice).

    Every column name that reaches Spark (``F.col``, ``F.expr``, ``spark.sql``) goes
    through here; values reach Spark as ``F.lit`` (never spliced into SQL text).

    Examples
    --------
    >>> bq('country')
    '`country`'
    >>> bq('a`b')
    '`a``b`'
    """
    return "`" + str(name).replace("`", "``") + "`"
