"""Small cells never reach a role without ``view_unmasked``: the state's frames as a
viewer sees them (no browser) have no count in [1, k-1], and no withheld cell can be
recomputed from the margins the same page releases."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.governance.policy import Identity, Role

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    from workbench.investigation import investigate

    db = tmp_path_factory.mktemp("released") / "store.duckdb"
    return investigate(DEMO, metric="conversion_rate", db=db, artifact_dir=None), db


def _state(inv, tmp_path, role, k=None):
    from workbench.ui.data import InvestigationData
    from workbench.ui.state import WorkbenchState

    i, db = inv
    st = WorkbenchState(passport=str(DEMO), db=str(db), background=False,
                        library=str(tmp_path / "lib"), identity=Identity("u", role, "password"))
    st.suppress_k = k
    live = InvestigationData(dataclasses.replace(i), db=str(db), passport_dir=str(DEMO))
    st._set_metrics(live, live.metric)
    st._set_live(live)
    return st


@pytest.fixture(scope="module")
def k(inv, tmp_path_factory):
    """A k that makes the demo's thinner slices small (its default-k cells are all large):
    the median count of the top level's breakdown rows."""
    st = _state(inv, tmp_path_factory.mktemp("k"), Role.ADMIN)
    r = st.data.ranked_slices({}, top=1000)
    return int(np.median(r.loc[r["source"] == "breakdown", "count"]))


def _released_small(df: pd.DataFrame, k: int, measures: list[str]) -> pd.DataFrame:
    """Rows whose count is in [1, k-1] and still carry a count or a measure."""
    small = (df["count"] >= 1) & (df["count"] < k)
    return df[small & df[["count", *measures]].notna().any(axis=1)]


def _check_group(true_counts: np.ndarray, hidden: np.ndarray, k: int) -> None:
    """Margin minus released cells is the sum of the withheld ones: it must not be a single
    cell, nor a small total."""
    n, tot = int(hidden.sum()), float(true_counts[hidden].sum())
    assert n == 0 or (n >= 2 and tot >= k) or true_counts.sum() < k, (n, tot)


def test_viewers_ranked_slices_have_no_small_cell_and_none_recoverable(inv, tmp_path, k):
    admin, viewer = _state(inv, tmp_path, Role.ADMIN), _state(inv, tmp_path, Role.VIEWER, k)
    measures = ["share", "baseline", "observed", "relative_change", "traffic_share"]
    for filt in ({}, {"platform": "ios"}, dict(admin.data.top_slice)):
        full = admin.data.ranked_slices(filt, top=1000)
        seen = viewer.data.ranked_slices(filt, top=1000)
        # the same rows (withheld ones rank last: their share is not known)
        assert sorted(seen["slice"]) == sorted(full["slice"])
        assert _released_small(seen, k, measures).empty
        merged = full[["slice", "count"]].merge(seen[["slice", "count"]], on="slice",
                                                suffixes=("", "_seen"))
        hidden = merged["count_seen"].isna().to_numpy()
        assert hidden.any()  # this k withholds something (else the test proves nothing)
        for d in admin.data.dimensions:
            rows = np.array([d in f and len(f) == len(filt) + 1 for f in full["filter"]])
            if rows.any():
                _check_group(merged["count"].to_numpy()[rows], hidden[rows], k)
    # The admin (view_unmasked) sees every cell.
    assert admin.ranked["count"].notna().all()
    # What the page shows is the released list.
    assert _released_small(viewer.ranked, k, measures).empty


def test_viewers_heatmap_agrees_with_its_margins_and_hides_no_recoverable_cell(inv, tmp_path,
                                                                                k):
    admin, viewer = _state(inv, tmp_path, Role.ADMIN), _state(inv, tmp_path, Role.VIEWER, k)
    dims = admin.data.dimensions
    pairs = [(x, y) for x in dims for y in dims if x < y]
    withheld = 0
    for x, y in pairs:
        full, seen = admin.data.heatmap({}, x, y), viewer.data.heatmap({}, x, y)
        assert len(full) == len(seen)
        assert _released_small(seen, k, ["share", "relative_change", "baseline", "observed",
                                         "traffic_share"]).empty
        hidden = seen["count"].isna().to_numpy() & (full["count"] > 0).to_numpy()
        withheld += int(hidden.sum())
        counts = full["count"].to_numpy(dtype=float)
        ranked = viewer.data.ranked_slices({}, top=1000)
        for col in (x, y):
            gone = {f[col] for f, c in zip(ranked["filter"], ranked["count"])
                    if list(f) == [col] and np.isnan(c)}
            for value, idx in full.groupby(col).indices.items():
                if value in gone:
                    # its margin is withheld in the ranked list: so is one of its cells at
                    # least, so the released cells do not add up to it
                    assert hidden[idx].any() or not (counts[idx] > 0).any()
                else:  # a released margin: the withheld cells are none, or not one alone
                    _check_group(counts[idx], hidden[idx], k)
    assert withheld > 0


def test_viewers_timelines_mix_and_comparison_have_no_small_cell(inv, tmp_path):
    # k = the median hourly count of the top slice: half its hours are small
    admin = _state(inv, tmp_path, Role.ADMIN)
    k = int(admin.data.timeline(admin.data.top_slice)["count"].median())
    viewer = _state(inv, tmp_path, Role.VIEWER, k)
    tl = ["observed", "num", "den", "expected", "lower", "upper"]
    top = dict(viewer.data.top_slice)
    frames = [viewer.data.timeline(top), viewer.timeline]
    viewer.compare_wanted = True
    viewer.drill_to(top)
    frames += [f for _, f in viewer.compare_frames.values()]
    assert len(frames) == 4
    hidden = 0
    for fr in frames:
        assert _released_small(fr, k, tl).empty
        hidden += int(fr["count"].isna().sum())
    assert hidden > 0
    assert admin.data.timeline(top)["observed"].notna().sum() > frames[0]["observed"].notna().sum()
    mix = viewer.data.rate_mix({}, "country")
    truth = admin.data.rate_mix({}, "country").set_index("value")["count"]
    assert _released_small(mix, k, ["rate", "mix", "w0", "w1", "r0", "r1"]).empty
    hid = mix["count"].isna().to_numpy()
    _check_group(truth.reindex(mix["value"]).to_numpy(dtype=float), hid, viewer.suppress_k)


def test_replay_snapshots_are_released_too(inv, tmp_path, k):
    viewer = _state(inv, tmp_path, Role.VIEWER, k)
    from workbench.ui.released import ReleasedData

    assert isinstance(viewer.data, ReleasedData) and isinstance(viewer.live, ReleasedData)
    snap = viewer.live.replay().snapshot(viewer.replay_steps[len(viewer.replay_steps) // 2])
    assert isinstance(viewer.released(snap), ReleasedData)
    assert viewer.released(snap) is viewer.released(snap)  # one per snapshot, shared


def _hours_table(state, dim: str) -> pd.DataFrame:
    """``ts, value, count``: every value's timeline of ``dim`` as ``state`` sees it."""
    frames = []
    for v in state.data.values(dim):
        fr = state.data.timeline({dim: v})[["ts", "count"]]
        frames.append(fr.assign(value=str(v)))
    return pd.concat(frames, ignore_index=True)


def test_no_withheld_hour_is_the_total_minus_its_siblings(inv, tmp_path):
    """Complementary suppression of timeline hours: in every hour, the values of a
    dimension add up to the released total's hour; the withheld ones are none, or two or
    more adding up to k or more; and within each value's own timeline likewise."""
    admin = _state(inv, tmp_path, Role.ADMIN)
    dim = "country"
    truth = _hours_table(admin, dim)
    k = int(truth.loc[truth["count"] > 0, "count"].quantile(0.3))  # a third of cells small
    viewer = _state(inv, tmp_path, Role.VIEWER, k)
    seen = _hours_table(viewer, dim)
    assert (seen["ts"].to_numpy() == truth["ts"].to_numpy()).all()
    counts = truth["count"].fillna(0).to_numpy(dtype=float)
    hidden = seen["count"].isna().to_numpy() & (counts > 0)
    small = (counts >= 1) & (counts < k)
    assert small.any() and (hidden[small]).all()  # every small hour withheld
    assert (hidden & ~small).any()  # and complementary ones beside them
    for _, idx in truth.groupby("ts").indices.items():  # the total's hour is released
        _check_group(counts[idx], hidden[idx], k)
    for _, idx in truth.groupby("value").indices.items():  # each value's own total
        _check_group(counts[idx], hidden[idx], k)
    # the whole metric's timeline (the margin) is released in full
    assert viewer.data.timeline({})["count"].notna().sum() == \
        admin.data.timeline({})["count"].notna().sum()


def _words(state) -> str:
    """What the viewer reads: the story for every reader, the hypothesis cards, the effect."""
    from workbench.ui.views import CausalView, HypothesisBoard, NarrativeView

    out = []
    for role in ("engineer", "operator", "product manager"):
        state.role = role
        out.append(NarrativeView(state=state)._story())
    hv_ = HypothesisBoard(state=state)
    for p in hv_._card_parts:
        out += [p["head"], p["more"]]
    out.append(CausalView(state=state)._summary())
    return "\n".join(out)


# views.py uses Panel 1.x widget arguments (``button_type=``) that Panel 1.9 announces will
# go in 2.0; the views are built in-process only here
@pytest.mark.filterwarnings(
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")
def test_story_cards_and_effect_say_no_number_of_a_withheld_scope(inv, tmp_path):
    """The demo's top cause's scope made a small cell (k one above its count): the
    viewer's story, cards and effect summary keep its name and lose its numbers."""
    from workbench._format import pct

    admin = _state(inv, tmp_path, Role.ADMIN)
    top = admin.data.causes[0]
    scope = dict(top["scope"])
    k = int(admin.data._count(scope)) + 1
    viewer = _state(inv, tmp_path, Role.VIEWER, k)
    assert viewer.data.withheld(scope) and not admin.data.causes[0].get("withheld")
    e = top["effect"]
    secrets = {pct(e[x], "+.1%") for x in ("estimate", "ci_low", "ci_high")}
    secrets |= {pct(top["scope_share"], ".0%"), pct(top["traffic_share"], ".0%"),
                f"t = {e['t_stat']:.1f}"}
    imp = admin.data.impact(scope)
    secrets.add(f"{imp['delta']:+,.0f}")
    shown_admin, shown_viewer = _words(admin), _words(viewer)
    found_admin = {s for s in secrets if s in shown_admin}
    assert len(found_admin) >= 4, found_admin  # the admin reads them (the test can fail)
    leaked = {s for s in secrets if s in shown_viewer}
    assert not leaked, leaked
    assert top["change_id"] in shown_viewer and "withheld" in shown_viewer
    from workbench.ui.views import CausalView
    assert "withheld: fewer than" in CausalView(state=viewer)._summary()
    assert viewer.data.impact(scope)["delta"] is None
    # the same investigation's confidences (a posterior, no count) stay
    assert viewer.data.causes[0]["confidence"] == top["confidence"]
