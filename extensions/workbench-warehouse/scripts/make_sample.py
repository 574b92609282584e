"""Write the committed sample of workbench-warehouse (seeded; re-run to regenerate).

    python extensions/workbench-warehouse/scripts/make_sample.py

A small warehouse as an analytics team has it: an hourly sessions export as a
hive-partitioned CSV folder (``sessions_hourly/date=YYYY-MM-DD/part-0.csv``,
bot traffic flagged, device names as the tracker writes them), a country
reference table in Parquet (``ref/countries.parquet``), and an operations
database (DuckDB) with the change calendar, shipped as the SQL that builds it
(``ops_seed.sql``), because a DuckDB file is bound to its storage version.
``warehouse.yaml`` declares the queries that make the passport.

The story: on 2026-11-16 at 17:00 UTC a config change in the US
(``checkout.payment_methods``) cuts US orders by 40 % (PayPal users cannot pay); the rest of the
calendar is harmless.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "workbench_warehouse" / "data" / "sample"
START, DAYS = pd.Timestamp("2026-11-02T00:00:00Z"), 16
COUNTRIES = {"DE": ("EU", 2200, 1), "GB": ("EU", 1700, 0), "US": ("NA", 3600, -5)}
DEVICES = {"iPhone": (0.3, 0.05), "Android": (0.3, 0.04), "Desktop": (0.4, 0.055)}
INCIDENT = pd.Timestamp("2026-11-16T17:00:00Z")

SEED_SQL = """\
-- The operations database of the sample warehouse: the change calendar.
CREATE TABLE change_calendar (
    change_id VARCHAR PRIMARY KEY, effective_at TIMESTAMPTZ, env VARCHAR, kind VARCHAR,
    target VARCHAR, summary VARCHAR, scope_json VARCHAR, rollout_pct DOUBLE, owner VARCHAR);
INSERT INTO change_calendar VALUES
 ('ops-101', '2026-11-03 10:00:00+00', 'prod', 'deploy', 'web-frontend', 'Release 2026.45.1: image lazy loading', '{}', NULL, 'deploy-bot'),
 ('ops-102', '2026-11-05 14:00:00+00', 'prod', 'infra', 'eu-west-1 k8s node pool', 'Scale node pool from 12 to 16 nodes', '{"region": "EU"}', NULL, 'terraform-ci'),
 ('ops-103', '2026-11-07 09:00:00+00', 'staging', 'config', 'checkout.timeout_ms', 'Set checkout.timeout_ms = 10000 in staging', '{}', NULL, 'j.alvarez'),
 ('ops-104', '2026-11-09 11:00:00+00', 'prod', 'flag', 'address_autocomplete_v2', 'Ramp address_autocomplete_v2 to 50% on iOS', '{"platform": "ios"}', 50, 'm.chen'),
 ('ops-105', '2026-11-11 16:00:00+00', 'prod', 'external', 'marketing', 'Newsletter sent to opted-in subscribers', '{}', NULL, 'crm-team'),
 ('ops-106', '2026-11-13 10:00:00+00', 'prod', 'deploy', 'search-svc', 'Deploy search-svc 1.9.0: ranking tweaks', '{}', NULL, 'deploy-bot'),
 ('ops-107', '2026-11-16 17:00:00+00', 'prod', 'config', 'checkout.payment_methods', 'Set checkout.payment_methods = wallets,cards (was wallets,cards,paypal) for US', '{"country": "US"}', NULL, 'p.okafor'),
 ('ops-108', '2026-11-16 16:00:00+00', 'prod', 'config', 'cdn.cache_ttl_s', 'Set cdn.cache_ttl_s = 600 (was 300)', '{}', NULL, 'k.osei'),
 ('ops-109', '2026-11-16 19:00:00+00', 'prod', 'flag', 'dark_mode', 'Enable dark_mode for GB', '{"country": "GB"}', 100, 'l.dubois');
"""


def main() -> None:
    rng = np.random.default_rng(20261116)
    ts = pd.date_range(START, periods=DAYS * 24, freq="1h")
    frames = []
    for country, (_, peak, off) in COUNTRIES.items():
        h = (ts.hour.to_numpy() + off) % 24
        prof = 0.12 + 0.88 * np.exp(-0.5 * ((h - 14) / 4.5) ** 2)
        for device, (share, conv) in DEVICES.items():
            for is_bot in (False, True):
                lam = peak * share * prof * (0.06 if is_bot else 1.0)
                sessions = rng.poisson(lam)
                p = np.full(len(ts), 0.001 if is_bot else conv)
                if country == "US" and not is_bot:
                    p = np.where(ts >= INCIDENT, p * 0.6, p)
                orders = rng.binomial(sessions, p)
                revenue = np.round(orders * rng.gamma(4.0, 14.0, len(ts)), 2)
                frames.append(pd.DataFrame({
                    "hour": ts.strftime("%Y-%m-%d %H:00:00"), "country": country,
                    "device": device, "is_bot": is_bot, "sessions": sessions,
                    "orders": orders, "revenue_eur": revenue}))
    df = pd.concat(frames).sort_values(["hour", "country", "device", "is_bot"])
    root = OUT / "sessions_hourly"
    for day, part in df.groupby(df["hour"].str[:10]):
        d = root / f"date={day}"
        d.mkdir(parents=True, exist_ok=True)
        part.to_csv(d / "part-0.csv", index=False)
    (OUT / "ref").mkdir(parents=True, exist_ok=True)
    ref = pd.DataFrame({"country": list(COUNTRIES),
                        "region": [v[0] for v in COUNTRIES.values()],
                        "name": ["Germany", "United Kingdom", "United States"]})
    ref.to_parquet(OUT / "ref" / "countries.parquet", index=False)
    (OUT / "ops_seed.sql").write_text(SEED_SQL)
    print(OUT)


if __name__ == "__main__":
    main()
