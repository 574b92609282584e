"""What an engine is and what it hands the store (see :mod:`workbench.engines`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd


@dataclass
class StagedBatch:
    """A batch coded by an engine, ready for the store to append.

    Attributes
    ----------
    parquet:
        A glob of Parquet files with columns ``ts`` (UTC), one INTEGER code per
        dimension (manifest order) and one DOUBLE per measure.
    new_codes:
        Per dimension, the dictionary entries (``code``, ``value``) the batch adds.
    rows, min_ts, max_ts:
        The batch's row count and time range.
    folder:
        The staging folder (removed by :meth:`cleanup`).
    """

    parquet: str
    new_codes: dict[str, pd.DataFrame]
    rows: int
    min_ts: object
    max_ts: object
    folder: Path | None = None
    engine: str = ""
    detail: dict = field(default_factory=dict)

    def cleanup(self) -> None:
        import shutil

        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Engine(Protocol):
    """What an engine does: one scan of raw event files per batch."""

    name: str

    def stage_batch(self, passport, files: tuple[Path, ...],
                    dictionaries: dict[str, pd.DataFrame]) -> StagedBatch:
        """Normalize and code ``files`` against ``dictionaries`` (code, value per dimension)."""
        ...
