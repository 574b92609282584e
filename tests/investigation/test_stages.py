"""workbench/investigation/stages.py: named stages over one context, each result frozen."""
from __future__ import annotations

import dataclasses

import pytest

from workbench.investigation import stages as S
from workbench.passport import load_passport
from workbench.store import Store


@pytest.fixture(scope="module")
def ctx(ios_passport, tmp_path_factory):
    db = tmp_path_factory.mktemp("stages") / "s.duckdb"
    pp = load_passport(ios_passport)
    with Store(db) as st:
        st.ingest(pp)
    said: list[str] = []
    with Store(db, read_only=True) as st:
        yield S.open_context(st, pp, pp.manifest.metric("sessions"), None, said.append, {})


def test_the_stages_in_order(ctx):
    au = S.audit(ctx)
    dn = S.detect(ctx, au)
    assert dn.kind == "total" and dn.scope == {} and dn.det is dn.total
    lz = S.localize(ctx, dn)
    assert lz.slices[0]["filter"] == {"platform": "ios"}
    assert lz.onset <= lz.end and lz.obs[0] == lz.onset
    br = S.bear(ctx, au, dn, lz)
    assert not br.explains  # clean data: nothing to repair
    rk = S.rank(ctx, dn, lz)
    assert rk.causes[0]["change_id"] == "chg-1" and rk.sign == -1.0
    dc = S.decide(ctx, lz, br, rk)
    assert dc.verdict == "change" and dc.causes[0]["status"] == "supported"
    assert dc.verification is None  # not asked for
    answer = S.assemble(ctx, dn, lz, br, rk, dc)
    assert answer["verdict"] == "change" and answer["params"]["next_step"] == \
        dc.causes[0]["next_step"]
    # the ledgers: the SQL of each number and the seconds of each stage
    assert {"metric_series", "leaves"} <= set(ctx.queries)
    assert list(ctx.timings)[:4] == ["series", "quality", "detect", "localize"]


def test_stage_results_are_frozen(ctx):
    au = S.audit(ctx)
    with pytest.raises(dataclasses.FrozenInstanceError):
        au.findings = []
    dn = S.detect(ctx, au)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dn.kind = "none"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.window = None


def test_analyse_is_what_investigate_answers(ctx, ios_inv):
    found = S.analyse(ctx)
    assert found["verdict"] == ios_inv.verdict
    assert [c["change_id"] for c in found["causes"]] == [c.change_id for c in ios_inv.causes]
    assert found["divergence"]["onset"] == ios_inv.divergence.onset
