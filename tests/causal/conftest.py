"""Generated incidents with ground truth, ingested once per session.

Seeds are fixed (the tests are deterministic) and were not tuned: any seed
of a family gives the same kind of incident (``workbench.synth``); the
benchmark (``benchmarks/causal.py``) scores fresh seeds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest


@dataclass
class Incident:
    path: Path
    truth: dict
    db: Path

    @property
    def onset(self) -> pd.Timestamp:
        return pd.Timestamp(self.truth["onset"])

    @property
    def end(self) -> pd.Timestamp:  # the last bucket of the truth's window
        return pd.Timestamp(self.truth["window"][1]) - pd.Timedelta("1h")

    @property
    def direction(self) -> float:
        return -1.0 if self.truth["effect"] < 0 else 1.0

    def store(self):
        from workbench.store import Store

        return Store(self.db, read_only=True)

    def cause(self, st, change_id: str) -> dict:
        """A change of the log as the ranking hands it over (``Investigation.causes`` row)."""
        ch = st.changes(st.passports()[0])
        row = ch[ch["id"] == change_id].iloc[0]
        return {"change_id": change_id, "ts": row["ts"].isoformat(), "scope": row["scope"],
                "target": row["target"], "rollout": row["rollout"], "kind": row["kind"]}


def _incident(tmp_path_factory, family: str, seed: int) -> Incident:
    from workbench.passport import load_passport
    from workbench.store import Store
    from workbench.synth import generate_incident

    root = tmp_path_factory.mktemp(f"{family}-{seed}")
    path = generate_incident(family, seed, root / "p")
    db = root / "store.duckdb"
    with Store(db) as st:
        st.ingest(load_passport(path))
    return Incident(path, json.loads((path / "truth.json").read_text()), db)


@pytest.fixture(scope="session")
def scoped(tmp_path_factory) -> Incident:
    """Flag chg-0447 lowers conversion on web/firefox by 44%; chg-0448 (web/edge, an hour
    later) and chg-0446 (ios, an hour earlier) are harmless."""
    inc = _incident(tmp_path_factory, "scoped_change", 2)
    assert inc.truth["culprit_ids"] == ["chg-0447"]
    return inc


@pytest.fixture(scope="session")
def staged(tmp_path_factory) -> Incident:
    """Flag ramped 10% -> 50% -> 100% of country=JP; -31% at full exposure."""
    return _incident(tmp_path_factory, "staged_rollout", 1)


@pytest.fixture(scope="session")
def external_conversion(tmp_path_factory) -> Incident:
    """Conversion in PL drops by 29% with no change in the log; decoys nearby."""
    inc = _incident(tmp_path_factory, "external", 13)
    assert inc.truth["details"]["variant"] == "conversion"
    return inc


@pytest.fixture(scope="session")
def traffic_drop(tmp_path_factory) -> Incident:
    """Sessions in FR drop by 56% (an ISP outage, not in the log)."""
    inc = _incident(tmp_path_factory, "external", 8)
    assert inc.truth["details"]["variant"] == "drop"
    return inc
