"""Exactly-once ingest of micro-batches, with a watermark for late data.

A micro-batch (a file dropped in a folder, a message on a broker) carries a
*batch id* chosen by its producer. :func:`ingest_batch` stores its rows and the
batch id in the ledger ``wb_meta.stream_ledger`` in ONE DuckDB transaction, so a
batch delivered twice (a producer retry, a broker redelivery after a crash
between commit and acknowledgement) is found in the ledger and skipped: rows are
stored once or not at all. This is the idempotent-receiver pattern of
transactional messaging (Hohpe and Woolf, *Enterprise Integration Patterns*,
2003, "Idempotent Receiver"; the same ledger-in-the-sink-transaction idea that
gives Kafka Streams and Flink their exactly-once sinks).

Late data follows the watermark of the Dataflow model (Akidau et al., "The
Dataflow Model", VLDB 2015): the watermark is the largest event time seen less
the allowed lateness. Rows older than the watermark at the time their batch
arrives go to ``<schema>.late_events`` and are reported, not merged; rows at or
after it are merged, and the grains (time buckets) they touch are returned so
that detection re-evaluates exactly those.

Per-grain aggregates (``<schema>.stream_agg``: one row per bucket, the sum of
every measure) are kept up to date by an upsert of the batch's own group-by,
so no batch recomputes history.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import UsageError
from ..passport import Manifest
from ..passport.load import _normalized_select, _validate_events_file
from ..store.duck import META, Store, schema_name
from ..store.sql import q

#: A batch id: what a producer names a batch (file stem, message header).
BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


def check_batch_id(batch_id: object) -> str:
    """Return ``batch_id`` if valid, else raise a :class:`UsageError` saying what is expected."""
    if isinstance(batch_id, str) and BATCH_ID.fullmatch(batch_id):
        return batch_id
    raise UsageError(f"batch id {batch_id!r} is not valid: expected a letter or digit, then up "
                     "to 127 letters, digits or . _ : - (no spaces or slashes)")


@dataclass(frozen=True)
class BatchReceipt:
    """What :func:`ingest_batch` did with one micro-batch."""

    batch_id: str
    status: str  # "ingested" | "duplicate"
    rows: int
    late_rows: int
    watermark: pd.Timestamp | None
    buckets: tuple[pd.Timestamp, ...]  # grains touched by merged rows
    min_ts: pd.Timestamp | None = None
    max_ts: pd.Timestamp | None = None
    detected: Any = None  # what ``within`` returned (detection, in the same transaction)

    def to_dict(self) -> dict:
        iso = (lambda t: None if t is None else pd.Timestamp(t).isoformat())
        return {"batch_id": self.batch_id, "status": self.status, "rows": self.rows,
                "late_rows": self.late_rows, "watermark": iso(self.watermark),
                "buckets": len(self.buckets), "min_ts": iso(self.min_ts),
                "max_ts": iso(self.max_ts)}


def init_stream_tables(store: Store, m: Manifest) -> None:
    """Create the ledger, the state, the late-data and the aggregate tables if missing.

    The aggregate table is filled from the stored events the first time (one
    group-by over history, once); afterwards batches maintain it.
    """
    c, schema = store.con, schema_name(m.name)
    c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.stream_ledger (
        passport VARCHAR, batch_id VARCHAR, batch INTEGER, source VARCHAR, rows BIGINT,
        late_rows BIGINT, min_ts TIMESTAMPTZ, max_ts TIMESTAMPTZ, watermark TIMESTAMPTZ,
        ingested_at TIMESTAMPTZ, PRIMARY KEY (passport, batch_id))""")
    c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.stream_state (
        passport VARCHAR PRIMARY KEY, max_event_ts TIMESTAMPTZ)""")
    dims = ", ".join(f"{q(d)} VARCHAR" for d in m.all_dimensions)
    meas = ", ".join(f"{q(x)} DOUBLE" for x in m.measures)
    c.execute(f"CREATE TABLE IF NOT EXISTS {schema}.late_events (batch_id VARCHAR, "
              f"arrived_at TIMESTAMPTZ, watermark TIMESTAMPTZ, ts TIMESTAMPTZ, {dims}, {meas})")
    has_agg = c.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                        "AND table_name = 'stream_agg'", [schema]).fetchone()[0]
    if not has_agg:
        sums = ", ".join(f"sum({q(x)}) AS {q(x)}" for x in m.measures)
        c.execute(f"CREATE TABLE {schema}.stream_agg AS SELECT {_bucket(m)} AS bucket, "
                  f"count(*) AS n_rows, {sums} FROM {schema}.events GROUP BY ALL")
        c.execute(f"ALTER TABLE {schema}.stream_agg ADD PRIMARY KEY (bucket)")
        c.execute(f"INSERT INTO {META}.stream_state SELECT ?, max(ts) FROM {schema}.events "
                  f"ON CONFLICT (passport) DO NOTHING", [m.name])


def _bucket(m: Manifest, col: str = "ts") -> str:
    secs = int(m.grain_td.total_seconds())
    return f"time_bucket(INTERVAL '{secs} seconds', {col})"


def watermark(store: Store, m: Manifest, lateness: pd.Timedelta) -> pd.Timestamp | None:
    """The current watermark: the largest event time stored less ``lateness``."""
    r = store.con.execute(f"SELECT max_event_ts FROM {META}.stream_state WHERE passport = ?",
                          [m.name]).fetchone()
    if r is None or r[0] is None:
        return None
    return pd.Timestamp(r[0]).tz_convert("UTC") - lateness


def ingest_batch(store: Store, m: Manifest, path: Path, batch_id: str, *,
                 lateness: pd.Timedelta, source: str = "folder",
                 within: Callable[[tuple, Any, Any], Any] | None = None) -> BatchReceipt:
    """Validate and store one micro-batch file, exactly once by ``batch_id``.

    Parameters
    ----------
    store:
        A writable store holding the passport (ingested before watching).
    m:
        The passport's manifest: the batch must have its columns and types.
    path:
        The batch (CSV or Parquet with the columns of ``events``).
    batch_id:
        The producer's id; a batch id already in the ledger is a duplicate.
    lateness:
        Allowed lateness: rows older than (largest event time - lateness) go
        to ``late_events``.
    within:
        Called inside the transaction, after the rows are merged, with the
        touched grains and the largest event time after and before the batch:
        detection and alert state commit with the rows they saw, or not at all.

    Raises
    ------
    PassportError
        The batch does not match the passport's schema (names the batch and
        the column); nothing is stored.
    """
    check_batch_id(batch_id)
    c, schema = store.con, schema_name(m.name)
    known = c.execute(f"SELECT rows, late_rows FROM {META}.stream_ledger WHERE passport = ? "
                      f"AND batch_id = ?", [m.name, batch_id]).fetchone()
    if known is not None:
        return BatchReceipt(batch_id, "duplicate", 0, 0, watermark(store, m, lateness), ())
    _validate_events_file(path, path.parent, m)  # located error before anything is written
    wm = watermark(store, m, lateness)
    now = datetime.now(timezone.utc)
    c.execute("BEGIN TRANSACTION")
    try:
        # the ledger row first: a concurrent duplicate fails on the primary key here
        c.execute(f"INSERT INTO {META}.stream_ledger (passport, batch_id, source, ingested_at) "
                  f"VALUES (?, ?, ?, ?)", [m.name, batch_id, source, now])
        c.execute(f"CREATE OR REPLACE TEMP TABLE _wb_in AS {_normalized_select(m, (path,))}")
        late = 0
        if wm is not None:
            late = c.execute("SELECT count(*) FROM _wb_in WHERE ts < ?", [wm]).fetchone()[0]
            if late:
                c.execute(f"INSERT INTO {schema}.late_events SELECT ?, ?, ?, * FROM _wb_in "
                          f"WHERE ts < ?", [batch_id, now, wm, wm])
                c.execute("DELETE FROM _wb_in WHERE ts < ?", [wm])
        batch = c.execute(f"SELECT coalesce(max(batch), 0) + 1 FROM {META}.batches "
                          f"WHERE passport = ?", [m.name]).fetchone()[0]
        rows, tmin, tmax = store._load_batch("SELECT * FROM _wb_in", m, schema, batch,
                                             stage=False)  # _wb_in is a table already
        buckets: tuple[pd.Timestamp, ...] = ()
        if rows:
            sums = ", ".join(f"sum({q(x)})" for x in m.measures)
            upd = ", ".join(f"{q(x)} = stream_agg.{q(x)} + excluded.{q(x)}" for x in m.measures)
            got = c.execute(
                f"INSERT INTO {schema}.stream_agg SELECT {_bucket(m)}, count(*), {sums} "
                f"FROM _wb_in GROUP BY ALL ON CONFLICT (bucket) DO UPDATE SET "
                f"n_rows = stream_agg.n_rows + excluded.n_rows, {upd} RETURNING bucket").fetchall()
            buckets = tuple(sorted(pd.Timestamp(b[0]).tz_convert("UTC") for b in got))
            c.execute(f"INSERT INTO {META}.stream_state VALUES (?, ?) ON CONFLICT (passport) "
                      f"DO UPDATE SET max_event_ts = greatest(stream_state.max_event_ts, "
                      f"excluded.max_event_ts)", [m.name, tmax])
        c.execute(f"INSERT INTO {META}.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, true)",
                  [m.name, batch, f"stream:{batch_id}", None, rows, tmin, tmax, now])
        c.execute(f"UPDATE {META}.stream_ledger SET batch = ?, rows = ?, late_rows = ?, "
                  f"min_ts = ?, max_ts = ?, watermark = ? WHERE passport = ? AND batch_id = ?",
                  [batch, rows, late, tmin, tmax, wm, m.name, batch_id])
        c.execute("DROP TABLE _wb_in")
        detected = None
        if within is not None:
            top = watermark(store, m, pd.Timedelta(0))
            detected = within(buckets, top, None if wm is None else wm + lateness)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    ts = (lambda t: None if t is None else pd.Timestamp(t).tz_convert("UTC"))
    return BatchReceipt(batch_id, "ingested", int(rows), int(late),
                        watermark(store, m, lateness), buckets, ts(tmin), ts(tmax), detected)
