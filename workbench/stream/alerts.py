"""Continuous detection over per-grain aggregates, and one alert per divergence.

After each batch only the grains the batch touched (and the few before them that
a run may start in) are read from ``<schema>.stream_agg`` and scored against the
metric's stream model (:mod:`.model`): ``z = (observed - expected) / noise``.
A divergence *starts* at the first grain of ``run`` consecutive closed grains
whose ``|z|`` reaches the threshold with the same sign: the run rule of
statistical process control (Western Electric Company, *Statistical Quality
Control Handbook*, 1956; Page, "Continuous inspection schemes", Biometrika 1954,
for the sequential view), which keeps one noisy grain from paging anyone.

A grain is *closed* once an event later than its end has been seen. Alerts live
in ``wb_meta.stream_alerts``: while one is open, further anomalous grains and
other metrics join it (one consolidated story); it closes after ``run`` normal
closed grains in every watched metric. The table survives restarts, so a
restarted ``watch`` never raises the same divergence twice.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ..store.duck import META, Store, StoredPassport
from ..store.sql import q
from .model import StreamModel


@dataclass(frozen=True)
class DetectConfig:
    """Thresholds of continuous detection.

    Attributes
    ----------
    z:
        Absolute standardized residual a grain must reach to count as anomalous.
    run:
        Consecutive anomalous closed grains (same sign) that start a divergence.
    """

    z: float = 4.0
    run: int = 3

    def __post_init__(self) -> None:
        from ..errors import UsageError

        if not self.z > 0:
            raise UsageError(f"--z {self.z}: expected a threshold > 0 (default 4)")
        if isinstance(self.run, bool) or not isinstance(self.run, int) or self.run < 1:
            raise UsageError(f"--run {self.run}: expected a whole number of grains >= 1 "
                             "(default 3)")


@dataclass(frozen=True)
class Onset:
    """A divergence found by the run rule."""

    metric: str
    onset: pd.Timestamp
    last: pd.Timestamp
    direction: int
    peak_z: float


def init_alerts(store: Store) -> None:
    store.con.execute(f"""CREATE TABLE IF NOT EXISTS {META}.stream_alerts (
        passport VARCHAR, alert_id INTEGER, onset TIMESTAMPTZ, raised_at TIMESTAMPTZ,
        metrics JSON, primary_metric VARCHAR, last_anomalous TIMESTAMPTZ,
        closed_at TIMESTAMPTZ, story VARCHAR, artifact VARCHAR,
        PRIMARY KEY (passport, alert_id))""")


def agg_series(con, sp: StoredPassport, model: StreamModel, lo: pd.Timestamp,
               hi: pd.Timestamp) -> pd.Series:
    """The metric per grain from the maintained aggregates, ``lo <= bucket < hi``."""
    spec = sp.manifest.metric(model.metric)
    den = f"nullif({q(spec.denominator)}, 0)" if spec.kind == "ratio" else "1.0"
    df = con.execute(f"SELECT bucket, {q(spec.numerator)} / {den} AS v FROM "
                     f"{sp.schema}.stream_agg WHERE bucket >= ? AND bucket < ? ORDER BY bucket",
                     [lo.to_pydatetime(), hi.to_pydatetime()]).df()
    return pd.Series(df["v"].to_numpy(dtype=float),
                     index=pd.DatetimeIndex(pd.to_datetime(df["bucket"], utc=True))).dropna()


def find_onsets(con, sp: StoredPassport, models: dict[str, StreamModel],
                touched: tuple[pd.Timestamp, ...], closed_before: pd.Timestamp,
                config: DetectConfig) -> tuple[list[Onset], dict[str, bool]]:
    """Runs of anomalous closed grains near the touched grains, per metric.

    Returns the onsets found and, per metric, whether its last ``run`` closed
    grains are all normal (what closes an open alert).
    """
    grain = sp.manifest.grain_td
    found, calm = [], {}
    if not touched:
        return found, calm
    lo = min(touched) - grain * (config.run - 1)
    lo_calm = closed_before - grain * config.run
    for metric, model in models.items():
        start = min(lo, lo_calm)
        # a grain with no rows is not anomalous, and it breaks a run (no gap is skipped)
        s = agg_series(con, sp, model, start, closed_before).reindex(
            pd.date_range(start, closed_before, freq=grain, inclusive="left"))
        z = model.z(s)
        flag = np.where(np.abs(z.to_numpy()) >= config.z, np.sign(z.to_numpy()), 0.0)
        tail = flag[s.index >= lo_calm]
        calm[metric] = bool(len(tail) >= config.run and not np.any(tail))
        scan = flag[s.index >= lo]
        idx = s.index[s.index >= lo]
        zs = z.to_numpy()[s.index >= lo]
        for i in range(len(scan) - config.run + 1):  # a few grains: the window is short
            w = scan[i:i + config.run]
            if w[0] != 0 and np.all(w == w[0]):
                found.append(Onset(metric, idx[i], idx[i + config.run - 1], int(w[0]),
                                   float(np.max(np.abs(zs[i:i + config.run])))))
                break
    return found, calm


def update_alerts(store: Store, passport: str, onsets: list[Onset],
                  calm: dict[str, bool]) -> dict | None:
    """Open, extend or close the passport's alert; the new alert if one opened now."""
    c = store.con
    now = datetime.now(timezone.utc)
    open_ = c.execute(f"SELECT alert_id, metrics, last_anomalous FROM {META}.stream_alerts "
                      f"WHERE passport = ? AND closed_at IS NULL", [passport]).fetchone()
    if open_ is not None:
        metrics = set(json.loads(open_[1]))
        last = pd.Timestamp(open_[2]).tz_convert("UTC")
        for o in onsets:
            metrics.add(o.metric)
            last = max(last, o.last)
        closed = calm and all(calm.values()) and not onsets
        c.execute(f"UPDATE {META}.stream_alerts SET metrics = ?, last_anomalous = ?, "
                  f"closed_at = ? WHERE passport = ? AND alert_id = ?",
                  [json.dumps(sorted(metrics)), last, now if closed else None, passport,
                   open_[0]])
        return None
    prev_end = c.execute(f"SELECT max(last_anomalous) FROM {META}.stream_alerts "
                         f"WHERE passport = ?", [passport]).fetchone()[0]
    if prev_end is not None:
        onsets = [o for o in onsets if o.onset > pd.Timestamp(prev_end).tz_convert("UTC")]
    if not onsets:
        return None
    first = min(o.onset for o in onsets)
    primary = max(onsets, key=lambda o: o.peak_z)
    aid = c.execute(f"SELECT coalesce(max(alert_id), 0) + 1 FROM {META}.stream_alerts "
                    f"WHERE passport = ?", [passport]).fetchone()[0]
    c.execute(f"INSERT INTO {META}.stream_alerts VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
              [passport, aid, first, now, json.dumps(sorted({o.metric for o in onsets})),
               primary.metric, max(o.last for o in onsets)])
    return {"alert_id": int(aid), "onset": first.isoformat(), "metric": primary.metric,
            "metrics": sorted({o.metric for o in onsets}), "peak_z": round(primary.peak_z, 2),
            "direction": "up" if primary.direction > 0 else "down"}


def record_story(store: Store, passport: str, alert_id: int, story: str,
                 artifact: str | None) -> None:
    store.con.execute(f"UPDATE {META}.stream_alerts SET story = ?, artifact = ? "
                      f"WHERE passport = ? AND alert_id = ?", [story, artifact, passport, alert_id])


def pending_stories(store: Store, passport: str, grain: pd.Timedelta) -> list[dict]:
    """Alerts raised whose story was not written (a crash between the two): told on restart."""
    rows = store.con.execute(f"SELECT alert_id, onset, primary_metric, metrics, last_anomalous "
                             f"FROM {META}.stream_alerts WHERE passport = ? AND story IS NULL "
                             f"ORDER BY alert_id", [passport]).fetchall()
    utc = (lambda t: pd.Timestamp(t).tz_convert("UTC"))
    return [{"alert_id": int(r[0]), "onset": utc(r[1]).isoformat(), "metric": r[2],
             "metrics": json.loads(r[3]), "window_end": (utc(r[4]) + grain).isoformat()}
            for r in rows]
