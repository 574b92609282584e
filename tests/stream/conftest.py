"""A streaming scenario: a passport's history and the hourly batches that follow it."""
from __future__ import annotations

import pytest

from workbench.stream.sample import make_scenario


@pytest.fixture
def scenario(tmp_path):
    """History of 15 days (300 rows an hour); the flag cuts ios conversion 6 h into the stream."""
    return make_scenario(tmp_path / "passport", seed=11)
