"""An investigation started from the page waits for the process's short readers.

DuckDB refuses a read-write connection to a file while a read-only one to the same
file is open in the same process; a served process opens such readers for its
sessions, so a person's hypothesis tested at that moment failed with "cannot open
the store" (seen once in a full run of tests/ui/test_people_browser.py).
"""
from __future__ import annotations

import threading

import pytest

from workbench.errors import StoreError
from workbench.store import Store
from workbench.ui.state import _store_retry


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        st.con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return path


def _write(db):
    with Store(db) as st:
        return st.con.execute("SELECT count(*) FROM t").fetchone()[0]


def test_a_writer_fails_while_a_reader_of_this_process_is_open(db):
    reader = Store(db, read_only=True)
    try:
        with pytest.raises(StoreError, match="different configuration"):
            _write(db)
    finally:
        reader.close()


def test_the_writer_waits_for_the_reader_to_close(db):
    reader = Store(db, read_only=True)
    closer = threading.Timer(0.4, reader.close)
    closer.start()
    try:
        assert _store_retry(lambda: _write(db), wait_s=20.0) == 1
    finally:
        closer.cancel()
        reader.close()


def test_it_gives_up_after_the_wait_and_says_why(db):
    reader = Store(db, read_only=True)
    try:
        with pytest.raises(StoreError, match="different configuration"):
            _store_retry(lambda: _write(db), wait_s=0.3)
    finally:
        reader.close()


def test_other_store_errors_are_not_retried(tmp_path):
    calls = []

    def work():
        calls.append(1)
        raise StoreError("x.duckdb: no such store")
    with pytest.raises(StoreError, match="no such store"):
        _store_retry(work, wait_s=20.0)
    assert calls == [1]
