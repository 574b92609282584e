"""Small incidents with a known culprit, investigated once per session.

``ios_incident``: sessions on iOS drop by 40% when flag ``new_flow`` (chg-1)
is switched on for iOS; a global deploy two hours earlier and a DE config
change an hour earlier are harmless. ``android_incident`` is the same story
weeks later on Android (chg-9, the same flag target), to test memory.
The metric is ``sessions`` (a sum), which keeps these tests independent of
the ratio machinery; the demo passport is covered by tests/notebooks.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ..conftest import make_events, write_passport


def incident_passport(path, *, platform: str, start: str, change_id: str, seed: int):
    rng = np.random.default_rng(seed)
    ev = make_events(rng, start=start, hours=24 * 16)
    onset = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=14, hours=10)
    mask = (ev["platform"] == platform) & (ev["ts"] >= onset)
    ev.loc[mask, "sessions"] = (ev.loc[mask, "sessions"] * 0.6).round().astype(int)
    ev["conversions"] = np.minimum(ev["conversions"], ev["sessions"])
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    changes = [
        {"id": change_id, "ts": iso(onset), "kind": "flag", "target": "new_flow",
         "description": f"enable the new checkout flow on {platform}",
         "scope": {"platform": platform}, "rollout": 100, "author": "ana"},
        {"id": "chg-2", "ts": iso(onset - pd.Timedelta(hours=2)), "kind": "deploy",
         "target": "api", "description": "api v2", "scope": {}, "author": "bo"},
        {"id": "chg-3", "ts": iso(onset - pd.Timedelta(hours=1)), "kind": "config",
         "target": "search.rank", "description": "ranking weights", "scope": {"country": "DE"},
         "author": "bo"},
    ]
    return write_passport(path, ev, changes=changes)


@pytest.fixture(scope="session")
def ios_passport(tmp_path_factory):
    return incident_passport(tmp_path_factory.mktemp("ios") / "shop", platform="ios",
                             start="2026-11-01", change_id="chg-1", seed=7)


@pytest.fixture(scope="session")
def android_passport(tmp_path_factory):
    return incident_passport(tmp_path_factory.mktemp("android") / "shop", platform="android",
                             start="2026-12-01", change_id="chg-9", seed=8)


@pytest.fixture(scope="session")
def _ios_inv(ios_passport):
    import workbench as wb

    return wb.investigate(ios_passport, metric="sessions", artifact_dir=None)


@pytest.fixture(scope="session")
def _android_inv(android_passport):
    import workbench as wb

    return wb.investigate(android_passport, metric="sessions", artifact_dir=None)


@pytest.fixture
def ios_inv(_ios_inv):
    """A fresh copy each test: saving sets attributes on the object."""
    return copy.copy(_ios_inv)


@pytest.fixture
def android_inv(_android_inv):
    return copy.copy(_android_inv)


@pytest.fixture
def library(tmp_path):
    return tmp_path / "investigations"
