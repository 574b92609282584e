"""Spark missing its parts: one clear message, exit 2, nothing stored."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.engines import spark
from workbench.errors import UsageError

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"


def test_no_java_is_exit_2_naming_the_package(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv only: no java on it
    db = tmp_path / "s.duckdb"
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(DEMO),
                        "--metric", "conversion_rate", "--engine", "spark", "--db", str(db),
                        "--no-artifact"], capture_output=True, text=True, env=env)
    if "needs pyspark" in r.stderr:
        pytest.skip("the spark extra is not installed")
    assert r.returncode == 2
    assert "needs Java 17" in r.stderr and "openjdk-17-jre-headless" in r.stderr
    assert "Traceback" not in r.stderr
    assert not db.exists()


def test_no_pyspark_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if not installed
    with pytest.raises(UsageError, match=r"needs pyspark.*workbench\[spark\]"):
        spark.check_available()


def test_spark_master_without_spark_engine_is_a_usage_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(DEMO),
                        "--metric", "conversion_rate", "--spark-master", "local[1]",
                        "--db", str(tmp_path / "s.duckdb")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "--spark-master is for --engine spark" in r.stderr
