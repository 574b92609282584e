"""Late data: the incomplete tail is measured against the expected-volume model, not judged."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.quality.late import incomplete_tail

GRAIN = pd.Timedelta("1h")


def _rows(rng, hours=24 * 16, tail=0, keep=1.0):
    ts = pd.date_range(pd.Timestamp("2026-11-01T00:00Z"), periods=hours, freq="1h")
    rows = rng.poisson(450 * (1 + 0.3 * np.sin(2 * np.pi * ts.hour / 24))).astype(float)
    if tail:
        rows[-tail:] = np.round(rows[-tail:] * keep)
    return pd.DataFrame({"ts": ts, "rows": rows})


def test_a_half_missing_tail_is_found_with_its_missing_share(rng):
    tail = incomplete_tail(_rows(rng, tail=4, keep=0.5), GRAIN)
    assert tail.buckets == 4 and tail.hours == 4.0
    assert tail.missing_share == pytest.approx(0.5, abs=0.05)
    assert tail.start == pd.Timestamp("2026-11-16T20:00Z")
    assert f"{tail.missing_share:.0%} of the expected rows of the last 4 hours are missing" \
        in tail.message()
    assert json.loads(json.dumps(tail.to_dict()))["missing_share"] == pytest.approx(0.5, abs=0.05)


def test_a_complete_feed_or_a_short_history_has_no_tail(rng):
    assert incomplete_tail(_rows(rng), GRAIN) is None
    assert incomplete_tail(_rows(rng, hours=24 * 5, tail=4, keep=0.5), GRAIN) is None
    # a dip earlier than the last bucket is not a tail
    r = _rows(rng)
    r.loc[r.index[-3], "rows"] *= 0.3
    assert incomplete_tail(r, GRAIN) is None


def test_a_late_tail_passport_is_not_judged_and_says_what_is_missing(tmp_path):
    from workbench.investigation import investigate
    from workbench.synth import generate_incident

    path = generate_incident("late_tail", 11, tmp_path / "p")
    truth = json.loads((path / "truth.json").read_text())
    inv = investigate(path, metric=truth["metric"], db=tmp_path / "s.duckdb", artifact_dir=None)
    assert inv.verdict in ("none", "data_quality")
    late = inv.to_dict()["divergence"]["late_data"]
    assert late["hours"] == truth["details"]["late_hours"]
    assert late["missing_share"] == pytest.approx(truth["details"]["missing_share"], abs=0.05)
    assert "this conclusion may change when the late data arrives" in inv.to_dict()["next_step"]
    assert all(c["confidence"] < 0.5 for c in inv.causes)


@pytest.mark.parametrize("seed", [33013003, 8751003])
def test_a_quiet_feed_with_a_late_tail_stays_quiet(tmp_path, seed):
    # Nothing happened; the last 4-5 hours are a third to a half missing, and were cut.
    # Before: "external", country=FR -5.2% over 3 days (33013003) and iOS 5.1 in the EU
    # -7.8% over 6 days (8751003): shocks the whole feed shared, read in one slice of
    # dozens. Against the rest of the feed (the slice's share) neither diverges.
    from workbench.investigation import investigate
    from workbench.synth import generate_incident

    path = generate_incident("late_tail", seed, tmp_path / "p")
    truth = json.loads((path / "truth.json").read_text())
    inv = investigate(path, metric=truth["metric"], db=tmp_path / "s.duckdb", artifact_dir=None,
                      verify=False)
    assert inv.verdict in truth["accept_verdicts"]
    late = inv.to_dict()["divergence"]["late_data"]
    assert late["missing_share"] == pytest.approx(truth["details"]["missing_share"], abs=0.01)
    assert f"{late['missing_share']:.0%} of the expected rows" in inv.to_dict()["next_step"]


def _feed(rng, slice_dip=0.0, feed_dip=0.0, hours=24 * 21):
    """Hourly sessions of one slice and of the feed; dips over the last 3 days."""
    ts = pd.date_range(pd.Timestamp("2026-11-01T00:00Z"), periods=hours, freq="1h")
    shape = 1 + 0.3 * np.sin(2 * np.pi * ts.hour / 24)
    late = np.arange(hours) >= hours - 72
    feed = np.where(late, 1 - feed_dip, 1.0)
    sl = rng.poisson(1400 * shape * feed * np.where(late, 1 - slice_dip, 1.0)).astype(float)
    rest = rng.poisson(20000 * shape * feed).astype(float)
    x = pd.DataFrame({"num": sl, "den": 1.0}, index=ts)
    return x, pd.DataFrame({"num": sl + rest}, index=ts)


def test_a_sum_slice_must_also_move_against_the_rest_of_the_feed(rng):
    from types import SimpleNamespace as NS

    from workbench.detect import DetectConfig, detect_divergence
    from workbench.investigation.slicing import _share_holds

    spec, cfg = NS(kind="sum", better="higher"), DetectConfig(alpha=0.01 / 40)

    def judge(x, total):
        res = detect_divergence(x, kind="sum", better="higher", grain=GRAIN, config=cfg)
        assert res.significant  # the slice's level diverged either way
        return _share_holds(x, total, res, spec, GRAIN, cfg, None, "seasonal")

    assert not judge(*_feed(rng, feed_dip=0.06))   # everyone dipped: the feed's story
    assert judge(*_feed(rng, slice_dip=0.10))      # the slice alone fell: its own
    # a ratio metric, or no total, is not gated
    x, total = _feed(rng, feed_dip=0.06)
    assert _share_holds(x, None, None, spec, GRAIN, cfg, None, "seasonal")
    assert _share_holds(x, total, None, NS(kind="ratio", better="higher"), GRAIN, cfg, None,
                        "seasonal")
