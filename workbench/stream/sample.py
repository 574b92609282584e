"""A seeded streaming scenario: a passport's history plus the micro-batches that follow it.

Used by the tests, the streaming benchmark and the docs' walk-through. Conversion
per session follows a daily cycle; at ``onset`` a flag (``chg-flag``, scoped to
``platform=ios``) cuts iOS conversion by ``effect``; a deploy on web three hours
earlier and a global config change five hours earlier are decoys. Everything is
drawn with numpy's seeded generator, vectorized (no loop over rows).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PLATFORMS = np.array(["ios", "android", "web"])
COUNTRIES = np.array(["de", "fr", "us", "gb"])
PLANS = np.array(["free", "pro"])
START = pd.Timestamp("2026-11-02T00:00:00Z")

MANIFEST = """name: {name}
time_column: ts
grain: 1h
dimensions: [platform, country, plan]
measures:
  sessions: {{}}
  conversions: {{}}
metrics:
  conversion_rate: {{ratio: [conversions, sessions], better: higher}}
  sessions: {{sum: sessions, better: higher}}
"""


@dataclass(frozen=True)
class Scenario:
    """Where the passport is, when the stream starts and the divergence begins."""

    passport: Path
    stream_start: pd.Timestamp
    onset: pd.Timestamp
    rows_per_hour: int
    seed: int
    effect: float


def rows_for(start: pd.Timestamp, hours: float, rows_per_hour: int, *, onset: pd.Timestamp,
             effect: float, seed: int) -> pd.DataFrame:
    """Event rows from ``start`` over ``hours`` (time stamps spread within each hour)."""
    rng = np.random.default_rng(seed)
    n = max(int(round(hours * rows_per_hour)), 0)
    offs = np.sort(rng.uniform(0.0, hours * 3600.0, n))
    ts = start + pd.to_timedelta(offs, unit="s")
    hod = (ts.hour + ts.minute / 60.0).to_numpy()
    cycle = np.sin(2 * np.pi * (hod - 6) / 24)
    plat = rng.integers(0, 3, n)
    sessions = rng.poisson(60 * (1 + 0.4 * cycle)) + 1
    p = 0.05 * (1 + 0.15 * cycle)
    p = np.where((PLATFORMS[plat] == "ios") & (ts >= onset), p * (1 - effect), p)
    return pd.DataFrame({"ts": ts, "platform": PLATFORMS[plat],
                         "country": COUNTRIES[rng.integers(0, 4, n)],
                         "plan": PLANS[rng.integers(0, 2, n)],
                         "sessions": sessions.astype(float),
                         "conversions": rng.binomial(sessions, p).astype(float)})


def make_scenario(out: str | Path, *, seed: int = 7, history_days: int = 15,
                  rows_per_hour: int = 300, onset_after_hours: int = 6, effect: float = 0.6,
                  name: str = "stream-shop") -> Scenario:
    """Write the passport (history before the stream) into ``out``.

    Examples
    --------
    >>> sc = make_scenario("/tmp/shop")                        # doctest: +SKIP
    >>> write_batch(sc, 0, "/tmp/drop")                        # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stream_start = START + pd.Timedelta(days=history_days)
    onset = stream_start + pd.Timedelta(hours=onset_after_hours)
    hist = rows_for(START, history_days * 24, rows_per_hour, onset=onset, effect=effect,
                    seed=seed)
    hist.to_parquet(out / "events.parquet", index=False)
    iso = (lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    changes = [
        {"id": "chg-config", "ts": iso(onset - pd.Timedelta(hours=5)), "kind": "config",
         "target": "search.ranking", "description": "search ranking weights", "scope": {},
         "author": "search-team"},
        {"id": "chg-deploy", "ts": iso(onset - pd.Timedelta(hours=3)), "kind": "deploy",
         "target": "web-frontend", "description": "web frontend 3.2",
         "scope": {"platform": "web"}, "author": "web-team"},
        {"id": "chg-flag", "ts": iso(onset), "kind": "flag", "target": "new_checkout",
         "description": "new checkout flow on for ios", "scope": {"platform": "ios"},
         "rollout": 100, "author": "checkout-team"},
    ]
    (out / "changes.jsonl").write_text("".join(json.dumps(c) + "\n" for c in changes),
                                       encoding="utf-8")
    (out / "passport.yaml").write_text(MANIFEST.format(name=name), encoding="utf-8")
    return Scenario(out, stream_start, onset, rows_per_hour, seed, effect)


def batch_frame(sc: Scenario, k: int, *, hours: float = 1.0, rows_per_hour: int | None = None
                ) -> pd.DataFrame:
    """The rows of stream batch ``k`` (``hours`` of events starting ``k * hours`` in)."""
    start = sc.stream_start + pd.Timedelta(hours=k * hours)
    return rows_for(start, hours, rows_per_hour or sc.rows_per_hour, onset=sc.onset,
                    effect=sc.effect, seed=sc.seed * 100_003 + k + 1)


def write_batch(sc: Scenario, k: int, folder: str | Path, *, fmt: str = "csv",
                name: str | None = None, hours: float = 1.0) -> Path:
    """Write batch ``k`` into ``folder`` atomically (a dot-name renamed when complete)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or f"b{k:05d}"
    df = batch_frame(sc, k, hours=hours)
    tmp = folder / f".{name}.{fmt}.part"
    if fmt == "csv":
        out = df.assign(ts=df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        out.to_csv(tmp, index=False)
    else:
        df.to_parquet(tmp, index=False)
    dest = folder / f"{name}.{fmt}"
    tmp.replace(dest)
    return dest


def batch_bytes(sc: Scenario, k: int, *, fmt: str = "csv", hours: float = 1.0) -> bytes:
    """Batch ``k`` as the bytes of a CSV or Parquet file (for a broker)."""
    import io

    df = batch_frame(sc, k, hours=hours)
    buf = io.BytesIO()
    if fmt == "csv":
        df.assign(ts=df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).to_csv(buf, index=False)
    else:
        df.to_parquet(buf, index=False)
    return buf.getvalue()


def stored_totals(db: str | Path, passport: str = "stream-shop") -> dict:
    """Rows, measure sums and per-grain aggregates of a store, read-only.

    What the streaming tests compare between a streamed store and a one-shot ingest:
    ``rows``, ``sessions``, ``conversions``, ``per_grain`` (hour, rows, sessions,
    conversions) and ``agg`` (the stream's kept aggregates, ``None`` without them).
    """
    from ..store import Store
    from ..store.sql import q

    with Store(db, read_only=True) as st:
        sp = st.passport(passport)
        c = st.con
        events = f"{q(sp.schema)}.{q('events')}"
        rows, s, k = c.execute(f"SELECT count(*), sum(sessions), sum(conversions) "
                               f"FROM {events}").fetchone()
        per_grain = c.execute(f"SELECT time_bucket(INTERVAL '1 hour', ts) AS b, count(*), "
                              f"sum(sessions), sum(conversions) FROM {events} "
                              f"GROUP BY ALL ORDER BY b").fetchall()
        agg = None
        if c.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                     "AND table_name = ?", [sp.schema, "stream_agg"]).fetchone()[0]:
            agg = c.execute(f"SELECT bucket, n_rows, sessions, conversions FROM "
                            f"{q(sp.schema)}.{q('stream_agg')} ORDER BY bucket").fetchall()
    return {"rows": rows, "sessions": s, "conversions": k, "per_grain": per_grain, "agg": agg}
