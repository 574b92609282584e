"""One Spark session (local[2]) for every Spark test of this folder, stopped at the end."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("the spark extra is not installed")
    from workbench.engines import spark

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_SPARK_TEMP", str(tmp_path_factory.mktemp("spark")))
        s = spark.session("local[2]")
        try:
            yield s
        finally:
            spark.stop()
