"""The action ledger on the real flagd file and the real OpenFeature SDK."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.experiments.flags import (FlagdFileProvider, FlagProviderError, dose_flag,
                                         load_provider)
from workbench.experiments.ledger import launch, reconcile
from workbench.governance.audit import append_audit, read_audit, verify_audit
from workbench.governance.policy import Action, Identity, PermissionDenied, Role

OPS = Identity("ops", Role.OPERATOR, source="token")
VIEWER = Identity("vic", Role.VIEWER, source="token")


def test_flag_file_doses_units_through_openfeature(tmp_path):
    p = FlagdFileProvider(tmp_path / "flags.json")
    p.apply("wb-t", dose_flag({"platform": "ios", "app_version": ["5.1", "5.2"]}, 20))
    n = 3000
    ctx = pd.DataFrame({"targetingKey": [f"u{i}" for i in range(n)],
                        "platform": np.where(np.arange(n) % 3, "ios", "android"),
                        "app_version": np.where(np.arange(n) % 2, "5.2", "5.0")})
    v = p.evaluate("wb-t", ctx, "kept")
    inside = ((ctx.platform == "ios") & (ctx.app_version == "5.2")).to_numpy()
    assert set(v[~inside]) == {"kept"}
    assert 0.15 < (v[inside] == "reverted").mean() < 0.25   # 1,000 units at 20%
    again = p.evaluate("wb-t", ctx, "kept")
    assert (again == v).all()                               # sticky: hashing, not chance
    p.apply("wb-t", dose_flag({"platform": "ios", "app_version": ["5.1", "5.2"]}, 50))
    more = p.evaluate("wb-t", ctx, "kept")
    assert ((v == "reverted") <= (more == "reverted")).all()  # a ramp keeps earlier units


def test_launch_writes_intent_then_outcome_and_is_idempotent(tmp_path):
    log, p = tmp_path / "audit.jsonl", FlagdFileProvider(tmp_path / "flags.json")
    flag = dose_flag({"platform": "ios"}, 50)
    r1 = launch(p, "wb-rollback-chg-1", flag, identity=OPS, audit=log, resource="chg-1")
    r2 = launch(p, "wb-rollback-chg-1", flag, identity=OPS, audit=log, resource="chg-1")
    assert (r1.status, r2.status) == ("applied", "replayed")
    assert (r2.intent_seq, r2.outcome_seq) == (r1.intent_seq, r1.outcome_seq)
    recs = read_audit(log)
    assert [r.action for r in recs] == ["action.intent", "action.outcome"]
    assert recs[1].details["status"] == "applied" and recs[1].details["intent_seq"] == 1
    assert p.current("wb-rollback-chg-1") == flag and verify_audit(log).ok


def test_a_forged_launch_is_denied_audited_and_changes_nothing(tmp_path):
    log, p = tmp_path / "audit.jsonl", FlagdFileProvider(tmp_path / "flags.json")
    with pytest.raises(PermissionDenied, match="vic \\(viewer\\) may not rollback"):
        launch(p, "wb-rollback-chg-1", dose_flag({}, 50), identity=VIEWER, audit=log,
               resource="chg-1", action=Action.ROLLBACK)
    recs = read_audit(log)
    assert [r.action for r in recs] == ["access.denied"] and recs[0].actor == "vic"
    assert not (tmp_path / "flags.json").exists()


def test_a_crash_between_intent_and_outcome_is_reconciled(tmp_path):
    log, p = tmp_path / "audit.jsonl", FlagdFileProvider(tmp_path / "flags.json")
    flag = dose_flag({"platform": "ios"}, 50)
    p.apply("wb-acted", flag)  # the act happened, the outcome was never written
    for key, f in (("k1", "wb-acted"), ("k2", "wb-never")):
        append_audit(log, "action.intent", actor="ops", subject="chg-1",
                     details={"key": key, "flag": f, "provider": "flagd-file", "definition": flag})
    done = reconcile(log, p)
    assert [d["status"] for d in done] == ["reconciled-applied", "reconciled-not-applied"]
    assert reconcile(log, p) == [] and verify_audit(log).ok


def test_a_broken_flag_file_is_a_clear_failed_outcome(tmp_path):
    log, f = tmp_path / "audit.jsonl", tmp_path / "flags.json"
    f.write_text("{not json")
    with pytest.raises(FlagProviderError, match="flags.json: not a flagd flag file"):
        launch(FlagdFileProvider(f), "wb-x", dose_flag({}, 10), identity=OPS, audit=log,
               resource="chg-1")
    assert read_audit(log)[-1].details["status"] == "failed"
    assert f.read_text() == "{not json"


def test_unknown_and_history_only_providers_are_refused():
    with pytest.raises(FlagProviderError, match="no flag provider 'nope'; available: flagd-file"):
        load_provider("nope")
    with pytest.raises(FlagProviderError, match="only reads flag history"):
        load_provider("flagd")  # workbench-changes' flagd history reader


def test_dose_is_checked():
    with pytest.raises(FlagProviderError, match="0..100"):
        dose_flag({}, 140)
    assert json.dumps(dose_flag({}, 0))  # serializable, a no-op dose is allowed
