"""Types shared by the analysis packages (they do not import each other)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["sum", "ratio"]
Better = Literal["higher", "lower"]
Verdict = Literal["change", "external", "data_quality", "mix_shift", "none"]
VERDICTS: tuple[str, ...] = ("change", "external", "data_quality", "mix_shift", "none")


@dataclass(frozen=True)
class MetricSpec:
    """A metric from the manifest: ``sum: m`` or ``ratio: [num, den]``.

    For a sum metric ``denominator`` is None; the value over a slice is
    ``sum(numerator)`` or ``sum(numerator) / sum(denominator)``, never a mean of
    per-row ratios (passport.md).
    """

    name: str
    kind: MetricKind
    numerator: str
    denominator: str | None
    better: Better = "higher"
    unit: str | None = None

    def value(self, num, den=None):
        """Metric value from summed numerator (and denominator) arrays or scalars."""
        import numpy as np

        if self.kind == "sum":
            return num
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(num, dtype=float) / np.asarray(den, dtype=float)
