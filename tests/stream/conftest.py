"""A streaming scenario: a passport's history and the hourly batches that follow it."""
from __future__ import annotations

import pytest

from workbench.store.sql import q
from workbench.stream.sample import make_scenario


@pytest.fixture
def scenario(tmp_path):
    """History of 15 days (300 rows an hour); the flag cuts ios conversion 6 h into the stream."""
    return make_scenario(tmp_path / "passport", seed=11)


def stored_totals(db, passport="stream-shop"):
    """Rows, measure sums and per-grain aggregates of a store (read-only)."""
    from workbench.store import Store

    with Store(db, read_only=True) as st:
        sp = st.passport(passport)
        c = st.con
        rows, s, k = c.execute(f"SELECT count(*), sum(sessions), sum(conversions) "
                               f"FROM {q(sp.schema)}.events").fetchone()
        per_grain = c.execute(f"SELECT time_bucket(INTERVAL '1 hour', ts) AS b, count(*), "
                              f"sum(sessions), sum(conversions) FROM {q(sp.schema)}.events "
                              f"GROUP BY ALL ORDER BY b").fetchall()
        agg = None
        if c.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                     "AND table_name = 'stream_agg'", [sp.schema]).fetchone()[0]:
            agg = c.execute(f"SELECT bucket, n_rows, sessions, conversions FROM "
                            f"{q(sp.schema)}.stream_agg ORDER BY bucket").fetchall()
    return {"rows": rows, "sessions": s, "conversions": k, "per_grain": per_grain, "agg": agg}
