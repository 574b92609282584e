"""Shared fixtures: a seeded rng and a small hand-made passport."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MANIFEST = """\
name: tiny-shop
time_column: ts
grain: 1h
dimensions: [country, platform]
hierarchies:
  region: country
measures:
  sessions: {}
  conversions: {}
metrics:
  conversion_rate: {ratio: [conversions, sessions], better: higher}
  sessions: {sum: sessions, better: higher}
sources:
  events: {origin: warehouse.tiny, extracted_at: 2026-11-20T06:00:00Z, transform: ["group by hour"]}
  changes: {origin: deploy-history}
"""

REGION = {"DE": "EU", "FR": "EU", "US": "NA", "BR": "LATAM"}

# Fixtures use fixed dates, some of them after today's; a passport refuses time stamps past
# the end of tomorrow unless WORKBENCH_TIME_MAX moves the bound (issue 19). Fixed here, for
# every test and the processes they start; tests/security/test_bad_data.py checks the default.
os.environ.setdefault("WORKBENCH_TIME_MAX", "2031-01-01T00:00:00Z")


@pytest.fixture(autouse=True, scope="session")
def _state_home(tmp_path_factory):
    """Audit anchors (issue 19) go to ``$XDG_STATE_HOME``: a per-session folder here, for
    every test and the processes they start, never the real home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        mp.delenv("WORKBENCH_AUDIT_ANCHOR", raising=False)
        mp.delenv("WORKBENCH_AUDIT_KEY_FILE", raising=False)
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def make_events(rng: np.random.Generator, start="2026-11-01", hours=72) -> pd.DataFrame:
    ts = pd.date_range(start, periods=hours, freq="1h", tz="UTC")
    countries = list(REGION)
    platforms = ["ios", "android", "web"]
    grid = pd.MultiIndex.from_product([ts, countries, platforms],
                                      names=["ts", "country", "platform"]).to_frame(index=False)
    sessions = rng.poisson(200, len(grid))
    grid["region"] = grid["country"].map(REGION)
    grid["sessions"] = sessions
    grid["conversions"] = rng.binomial(sessions, 0.04)
    return grid[["ts", "region", "country", "platform", "sessions", "conversions"]]


def write_passport(path: Path, events: pd.DataFrame, *, fmt: str = "csv",
                   changes: list[dict] | None = None, manifest: str = MANIFEST) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "passport.yaml").write_text(manifest)
    ev = events.copy()
    if fmt == "csv":
        ev["ts"] = ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        ev.to_csv(path / "events.csv", index=False)
    else:
        ev.to_parquet(path / "events.parquet", index=False)
    changes = changes if changes is not None else [
        {"id": "chg-1", "ts": "2026-11-02T10:00:00Z", "kind": "flag", "target": "new_flow",
         "description": "enable", "scope": {"platform": "ios"}, "rollout": 50, "author": "ana"},
        {"id": "chg-2", "ts": "2026-11-02T12:00:00Z", "kind": "deploy", "target": "api",
         "description": "v2", "scope": {}, "author": "bo"},
    ]
    with open(path / "changes.jsonl", "w") as f:
        for c in changes:
            f.write(json.dumps(c) + "\n")
    return path


@pytest.fixture
def tiny_passport(tmp_path, rng) -> Path:
    return write_passport(tmp_path / "tiny", make_events(rng))
