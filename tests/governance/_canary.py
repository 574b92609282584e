"""A passport with personal data: the demo plus an ``account`` dimension marked ``pii``.

Its values are canaries (``canary-N-pii@example.test``): a test that finds none of
them where a role without the grant can look, and finds them where an admin
looks, shows that masking holds and that the search for them works.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import yaml

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"
CANARIES = [f"canary-{i}-pii@example.test" for i in range(7)]


def canary_passport(out: Path) -> Path:
    """Write the demo passport with the canary ``account`` column to ``out``."""
    shutil.copytree(DEMO, out, ignore=shutil.ignore_patterns(".workbench"))
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.sql(
        "SELECT *, 'canary-' || CAST(hash(ts, country, platform, browser) % 7 AS VARCHAR) "
        "|| '-pii@example.test' AS account FROM read_parquet(?)",
        params=[str(DEMO / "events.parquet")]).write_parquet(str(out / "events.parquet"))
    con.close()
    manifest = yaml.safe_load((out / "passport.yaml").read_text())
    manifest["dimensions"] = list(manifest["dimensions"]) + ["account"]
    manifest["pii"] = ["account"]
    (out / "passport.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out
