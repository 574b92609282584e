"""Event files a store verified are not validated and hashed again while unchanged (issue 18)."""
from __future__ import annotations

import os

import pytest

from workbench.errors import PassportError
from workbench.passport import load_passport, sha256_file
from workbench.store import Store, verified_files

from ..conftest import make_events, write_passport


def _ingested(tmp_path, rng):
    path = write_passport(tmp_path / "p", make_events(rng, hours=48), fmt="parquet")
    db = tmp_path / "s.duckdb"
    with Store(db) as st:
        st.ingest(load_passport(path))
    return path, db


def _checks(pp):
    (c,) = pp.file_checks.values()
    return c


def test_an_unchanged_file_is_taken_from_the_store_s_record(tmp_path, rng):
    path, db = _ingested(tmp_path, rng)
    full = load_passport(path)
    fast = load_passport(path, trusted=verified_files(db))
    assert not _checks(full)["trusted"] and _checks(fast)["trusted"]
    assert [p.to_dict() | {"loaded_at": ""} for p in fast.provenance] == \
        [p.to_dict() | {"loaded_at": ""} for p in full.provenance]
    assert _checks(fast)["sha256"] == sha256_file(path / "events.parquet")
    with Store(db) as st:  # the trusted load ingests as a duplicate of itself
        rep = st.ingest(fast)
    assert [b.status for b in rep.batches] == ["duplicate"]


def test_a_touched_or_rewritten_file_is_validated_again(tmp_path, rng):
    path, db = _ingested(tmp_path, rng)
    f = path / "events.parquet"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))
    assert not _checks(load_passport(path, trusted=verified_files(db)))["trusted"]
    # a bad file at the same path is refused with its located message, record or not
    ev = make_events(rng, hours=48)
    ev["sessions"] = ev["sessions"].astype(float)
    ev.loc[3, "sessions"] = float("inf")
    write_passport(path, ev, fmt="parquet")
    with pytest.raises(PassportError, match="expected a finite number"):
        load_passport(path, trusted=verified_files(db))


def test_a_changed_manifest_or_time_bound_validates_again(tmp_path, rng, monkeypatch):
    path, db = _ingested(tmp_path, rng)
    monkeypatch.setenv("WORKBENCH_TIME_MIN", "2000-01-01T00:00:00Z")
    assert not _checks(load_passport(path, trusted=verified_files(db)))["trusted"]
    monkeypatch.delenv("WORKBENCH_TIME_MIN")
    y = path / "passport.yaml"
    y.write_text(y.read_text().replace("name: tiny-shop", "name: tiny-shop2"))
    assert not _checks(load_passport(path, trusted=verified_files(db)))["trusted"]


def test_no_store_or_a_store_in_use_means_a_full_validation(tmp_path, rng):
    path, db = _ingested(tmp_path, rng)
    assert verified_files(tmp_path / "none.duckdb") == {}
    with Store(db):  # this process writes it: the record cannot be read, nothing fails
        assert verified_files(db) == {}
