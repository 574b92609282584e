"""workbench/options.py: one validated context manager for settings."""
from __future__ import annotations

import duckdb
import pytest

import workbench as wb
from workbench.errors import UsageError
from workbench.investigation import library as V


def test_set_and_restore():
    before = wb.get_options()
    with wb.set_options(verify=True, memory_limit="1GB", threads=1) as o:
        assert isinstance(o, wb.set_options)
        assert wb.get_options() == {**before, "verify": True, "memory_limit": "1GB",
                                    "threads": 1}
    assert wb.get_options() == before


@pytest.mark.parametrize("kw, match", [
    ({"verify": "yes"}, "expected True or False"),
    ({"engine": "flink"}, "expected one of duckdb, spark"),
    ({"spark_master": "local[two]"}, "expected a Spark master URL"),
    ({"spark_master": "spark://h:7077' OR 1"}, "expected a Spark master URL"),
    ({"memory_limit": "lots"}, "expected a size such as '4GB'"),
    ({"threads": 0}, "expected a whole number >= 1"),
    ({"threads": True}, "expected a whole number >= 1"),
    ({"library": ""}, "expected a folder path"),
    ({"colour": "red"}, "unknown setting.s. colour; the settings are library, verify"),
])
def test_bad_values_change_nothing(kw, match):
    before = wb.get_options()
    with pytest.raises(UsageError, match=match):
        wb.set_options(**{"threads": 2, **kw})  # the good value is not applied either
    assert wb.get_options() == before


def test_the_library_setting_is_the_default_library(tmp_path):
    assert V.library_root(tmp_path / "given") == tmp_path / "given"
    with wb.set_options(library=tmp_path / "lib"):
        assert V.library_root() == tmp_path / "lib"


def test_stores_take_the_duckdb_limits(tmp_path):
    from workbench.store import Store

    with wb.set_options(memory_limit="256MiB", threads=1):
        with Store(tmp_path / "s.duckdb") as st:
            limit, threads = st.con.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    assert limit == "256.0 MiB" and threads == 1
    with Store(tmp_path / "s.duckdb") as st:  # the environment's bound once the block ends
        from workbench.store.sql import bound_connection
        default = bound_connection(duckdb.connect()).execute(
            "SELECT current_setting('memory_limit')").fetchone()
        assert st.con.execute("SELECT current_setting('memory_limit')").fetchone() == default
