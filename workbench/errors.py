"""Errors the workbench raises for user mistakes.

Every user-facing error is a :class:`WorkbenchError`: the CLI prints its message
on one line and exits non-zero, without a traceback. A message names the file,
the row or column, and what was expected, and lists valid choices where there
are some (architecture.md, "Errors say what is wrong and how to fix it").
"""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of errors caused by input or usage, not by a bug."""

    exit_code = 2


class PassportError(WorkbenchError):
    """A passport directory does not follow the passport v1 contract.

    Parameters
    ----------
    message:
        What is wrong and what was expected.
    file, row, column:
        Where it is wrong; rendered as ``file, row N, column 'c': message``.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.file, self.row, self.column, self.detail = file, row, column, message
        where = []
        if file:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__((", ".join(where) + ": " if where else "") + message)


class StoreError(WorkbenchError):
    """The DuckDB store cannot do what was asked (missing passport, locked file...)."""


class UsageError(WorkbenchError):
    """An argument is not valid: unknown metric, bad window, unknown option."""
