"""Masking: a pseudonymised passport holds no pii value and aggregates the same."""
from pathlib import Path

import duckdb
import pytest

from workbench.governance.masking import masked_passport, new_key, pii_dimensions
from workbench.passport import load_passport

from ._canary import CANARIES, DEMO, canary_passport


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    return canary_passport(tmp_path_factory.mktemp("canary") / "passport")


def _by(path, col):
    from workbench.store.sql import q
    return dict(duckdb.execute(f"SELECT {q(col)}, sum(sessions) FROM read_parquet(?) GROUP BY 1",
                               [str(path)]).fetchall())


def _everything(folder) -> str:
    """Every file's text, parquet files as the text of every value (they compress)."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix == ".parquet":
            out += [str(r) for r in duckdb.sql("SELECT * FROM read_parquet(?)",
                                               params=[str(p)]).fetchall()]
        elif p.is_file():
            out.append(p.read_text(errors="replace"))
    return "\n".join(out)


def test_masked_copy_has_no_pii_and_the_same_aggregates(canary, tmp_path):
    assert pii_dimensions(load_passport(canary).manifest) == ["account"]
    out = masked_passport(canary, tmp_path / "masked", new_key())
    load_passport(out)  # still a valid passport
    raw, masked = _everything(canary), _everything(out)
    assert all(c in raw for c in CANARIES)  # the canaries are there to be found
    assert not [c for c in CANARIES if c in masked]
    before, after = _by(canary / "events.parquet", "account"), _by(out / "events.parquet",
                                                                   "account")
    assert sorted(before.values()) == sorted(after.values()) and len(after) == len(CANARIES)
    assert all(k.startswith("pii-") and len(k) == 16 for k in after)
    assert _by(canary / "events.parquet", "country") == _by(out / "events.parquet", "country")


def test_pseudonyms_depend_on_the_key(canary, tmp_path):
    k = new_key()
    a = set(_by(masked_passport(canary, tmp_path / "a", k) / "events.parquet", "account"))
    b = set(_by(masked_passport(canary, tmp_path / "b", k) / "events.parquet", "account"))
    c = set(_by(masked_passport(canary, tmp_path / "c", new_key()) / "events.parquet",
                "account"))
    assert a == b and not a & c


def test_the_served_app_masks_once(canary, tmp_path):
    from workbench.ui.app import WorkbenchApp

    app = WorkbenchApp(str(canary), db=str(tmp_path / "s" / "store.duckdb"),
                       library=str(tmp_path / "lib"))
    masked = app.masked()
    assert masked is not app and masked.masked() is masked and app.masked() is masked
    assert Path(masked.passport).parent.parent == tmp_path / "s"  # beside the store
    assert not [c for c in CANARIES if c in _everything(Path(masked.passport))]
    plain = WorkbenchApp(str(DEMO), db=str(tmp_path / "d" / "store.duckdb"))
    assert plain.masked() is plain  # no pii dimension: nothing to mask
