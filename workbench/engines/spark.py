"""The Spark engine: the ingest scan of raw event files on Apache Spark.

pyspark is imported here only, and this module only when ``engine="spark"`` is
chosen, so the default path never pays for a JVM. One session per process
(:func:`session`), reused by every ingest and stopped by :func:`stop`; its
configuration keeps a laptop safe: the UI off, a few shuffle partitions, a
bounded driver memory and local folders under the system temp directory
(``WORKBENCH_SPARK_TEMP`` overrides; ``WORKBENCH_SPARK_DRIVER_MEMORY``, default
``1g``, bounds the driver).

One batch is one Spark job graph (:meth:`SparkEngine.stage_batch`):

1. read the files (Parquet as typed; CSV as text, as the DuckDB path reads it)
   and normalize each row with the rules of ``passport.load._normalized_select``
   (time stamps to UTC, an empty or missing dimension value to ``(null)``, a
   measure that is missing or empty to 0);
2. one job collects the batch's distinct (dimension, value) pairs (small: the
   dictionaries); values not in the store's dictionary get the next codes in
   sorted order, as the DuckDB path numbers them (``max(code) + row_number()
   OVER (ORDER BY v)``), so both engines code a store alike;
3. every row is coded by a broadcast join per dimension and written as Parquet
   (``TIMESTAMP_MICROS``, UTC) to a staging folder the store appends from.

Column names reach Spark quoted by :func:`workbench.store.sql.bq`; values
(the batch's literals, the null label) as ``F.lit``, never spliced into SQL.
The files were validated by ``load_passport`` (DuckDB) before this runs: a value
Spark cannot parse would have been a located error there.

Reference: Zaharia et al. (2012) Resilient Distributed Datasets: a fault-tolerant
abstraction for in-memory cluster computing. NSDI; Armbrust et al. (2015) Spark
SQL: relational data processing in Spark. SIGMOD.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..store.sql import bq
from .base import StagedBatch

DEFAULT_MASTER = "local[2]"
_LOCK = threading.Lock()
_STATE: dict = {"session": None, "master": None}


def _temp_root() -> Path:
    return Path(os.environ.get("WORKBENCH_SPARK_TEMP")
                or os.path.join(tempfile.gettempdir(), "workbench-spark"))


def check_available() -> None:
    """Raise a :class:`UsageError` (exit 2) naming what is missing for Spark."""
    if importlib.util.find_spec("pyspark") is None:
        raise UsageError("engine 'spark' needs pyspark, which is not installed; install it "
                         "with `pip install 'workbench[spark]'` (or `make venv`), or use "
                         "--engine duckdb")
    java_home = os.environ.get("JAVA_HOME")
    java = (Path(java_home) / "bin" / "java") if java_home else None
    if not ((java is not None and java.is_file()) or shutil.which("java")):
        raise UsageError("engine 'spark' needs Java 17 and no `java` was found on PATH or in "
                         "JAVA_HOME; install it (Debian: apt-get install "
                         "openjdk-17-jre-headless), or use --engine duckdb")


def session(master: str | None = None):
    """The process's Spark session on ``master`` (default ``local[2]``), started once."""
    master = master or DEFAULT_MASTER
    with _LOCK:
        if _STATE["session"] is not None and _STATE["master"] == master:
            return _STATE["session"]
        check_available()
        if _STATE["session"] is not None:
            _STATE["session"].stop()
            _STATE["session"] = None
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
        with warnings.catch_warnings():
            # pyspark 4.3 warns at import that pandas 3 is not fully supported; no pandas
            # conversion is used here (rows cross as tuples and Parquet)
            warnings.filterwarnings("ignore", category=FutureWarning,
                                    message="PySpark does not yet fully support pandas")
            from pyspark.sql import SparkSession

        local = _temp_root() / "local"
        local.mkdir(parents=True, exist_ok=True)
        memory = os.environ.get("WORKBENCH_SPARK_DRIVER_MEMORY", "1g")
        builder = (SparkSession.builder.master(master).appName("workbench")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.default.parallelism", "2")
                   .config("spark.driver.memory", memory)
                   .config("spark.local.dir", str(local))
                   .config("spark.sql.warehouse.dir", str(_temp_root() / "warehouse"))
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
                   .config("spark.driver.extraJavaOptions",
                           f"-Djava.io.tmpdir={local} -Duser.timezone=UTC")
                   .config("spark.sql.autoBroadcastJoinThreshold", str(64 << 20)))
        if master.startswith("local"):
            builder = builder.config("spark.driver.host", "127.0.0.1")
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # the JVM did not start or the master is unreachable
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"engine 'spark': cannot start a Spark session on {master!r}: "
                             f"{first}") from None
        spark.sparkContext.setLogLevel("ERROR")
        _STATE.update(session=spark, master=master)
        return spark


def stop() -> None:
    """Stop the process's Spark session, if one was started."""
    with _LOCK:
        if _STATE["session"] is not None:
            _STATE["session"].stop()
        _STATE.update(session=None, master=None)


def _read(spark, path: Path):
    if path.suffix == ".csv":
        return (spark.read.option("header", True).option("inferSchema", False)
                .option("quote", '"').option("escape", '"').option("mode", "FAILFAST")
                .csv(str(path)))
    return spark.read.parquet(str(path))


def _normalized(spark, manifest, path: Path):
    """The rows of one file with ``ts``, dimensions and measures normalized."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from ..passport.load import NULL_VALUE

    df = _read(spark, path)
    types = {f.name: f.dataType for f in df.schema.fields}
    tcol = F.col(bq(manifest.time_column))
    ttype = types[manifest.time_column]
    if isinstance(ttype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        ts = tcol.cast("timestamp")  # naive times are UTC (the session's time zone)
    else:
        ts = tcol.cast("string").try_cast("timestamp")
    cols = [ts.alias("ts")]
    for d in manifest.all_dimensions:
        v = F.col(bq(d)).cast("string")
        cols.append(F.coalesce(F.nullif(v, F.lit("")), F.lit(NULL_VALUE)).alias(d))
    for m in manifest.measures:
        c = F.col(bq(m))
        if isinstance(types[m], T.StringType):
            c = F.nullif(F.trim(c), F.lit(""))
        cols.append(F.coalesce(c.try_cast("double"), F.lit(0.0)).alias(m))
    return df.select(*cols)


class SparkEngine:
    """Stage event batches with Spark (see the module docstring).

    Parameters
    ----------
    master:
        The Spark master URL; ``None``: ``local[2]``.
    """

    name = "spark"

    def __init__(self, master: str | None = None):
        self.master = master or DEFAULT_MASTER
        check_available()

    def stage_batch(self, passport, files, dictionaries: dict[str, pd.DataFrame]
                    ) -> StagedBatch:
        from pyspark.sql import functions as F

        spark = session(self.master)
        m = passport.manifest
        dims = list(m.all_dimensions)
        files = tuple(Path(f) for f in files)
        rows = _normalized(spark, m, files[0])
        for f in files[1:]:
            rows = rows.unionByName(_normalized(spark, m, f))
        # One job: every (dimension, value) pair of the batch (small: the dictionaries).
        pairs = rows.select(F.explode(F.array(*[
            F.struct(F.lit(i).alias("d"), F.col(bq(d)).alias("v")) for i, d in enumerate(dims)]))
            .alias("p")).select("p.d", "p.v").distinct()
        seen = pd.DataFrame([tuple(r) for r in pairs.collect()], columns=["d", "v"])
        new_codes, full = {}, []
        for i, d in enumerate(dims):
            known = dictionaries.get(d)
            if known is None:
                known = pd.DataFrame({"code": pd.Series([], dtype="int64"),
                                      "value": pd.Series([], dtype="object")})
            values = seen.loc[seen["d"] == i, "v"]
            fresh = np.sort(values[~values.isin(known["value"])].to_numpy(dtype=object))
            top = int(known["code"].max()) if len(known) else -1
            added = pd.DataFrame({"code": np.arange(top + 1, top + 1 + len(fresh),
                                                    dtype="int64"),
                                  "value": fresh})
            new_codes[d] = added
            both = pd.concat([known[["code", "value"]], added], ignore_index=True)
            full.append(pd.DataFrame({"d": i, "code": both["code"].astype("int64"),
                                      "value": both["value"].astype(object)}))
        table = pd.concat(full, ignore_index=True)
        codes = spark.createDataFrame(
            list(zip(table["d"].tolist(), table["code"].tolist(), table["value"].tolist())),
            schema="d INT, code INT, value STRING")
        coded = rows
        for i, d in enumerate(dims):  # a broadcast (map-side) join per dimension
            one = codes.where(F.col("d") == F.lit(i)).select(
                F.col("value").alias(f"wb_v{i}"), F.col("code").alias(f"wb_c{i}"))
            coded = (coded.join(F.broadcast(one), F.col(bq(d)) == F.col(bq(f"wb_v{i}")))
                     .drop(d, f"wb_v{i}").withColumnRenamed(f"wb_c{i}", d))
        out = coded.select("ts", *[F.col(bq(d)) for d in dims],
                           *[F.col(bq(x)) for x in m.measures])
        folder = _temp_root() / "stage" / uuid.uuid4().hex
        out.write.mode("overwrite").parquet(str(folder))
        # epoch microseconds: pyspark would turn a collected time stamp into local time
        stats = spark.read.parquet(str(folder)).agg(
            F.count(F.lit(1)).alias("n"), F.unix_micros(F.min("ts")).alias("lo"),
            F.unix_micros(F.max("ts")).alias("hi"))
        n, lo, hi = stats.collect()[0]
        return StagedBatch(parquet=str(folder / "*.parquet"), new_codes=new_codes, rows=int(n),
                           min_ts=_utc(lo), max_ts=_utc(hi), folder=folder, engine=self.name,
                           detail={"master": self.master})


def _utc(micros):
    return None if micros is None else pd.Timestamp(int(micros), unit="us", tz="UTC")
