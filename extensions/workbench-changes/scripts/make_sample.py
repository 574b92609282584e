"""Write the committed sample of workbench-changes (seeded; re-run to regenerate).

    python extensions/workbench-changes/scripts/make_sample.py

The story: a web and app shop in three countries. The ``new-checkout-flow``
flag is ramped on iOS (10 % on 11-09, 50 % on 11-12, 100 % on 11-16) and
lowers iOS conversion by 40 % of the exposed share; nothing else in the
history has an effect. Writes ``src/workbench_changes/data/sample/``:
``base-passport/`` (hourly sessions and conversions by country and platform,
an empty change log), ``flagd-history/`` (four flagd revisions) and
``github-deployments.json`` (a deployments list with statuses).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "workbench_changes" / "data" / "sample"
START, DAYS = pd.Timestamp("2026-11-02T00:00:00Z"), 16
COUNTRIES = {"DE": (2500, 1), "FR": (1800, 1), "US": (4000, -5)}  # sessions/h at peak, UTC offset
PLATFORMS = {"ios": (0.35, 0.045), "android": (0.30, 0.035), "web": (0.35, 0.040)}
RAMP = (("2026-11-09T10:00:00Z", 0.10), ("2026-11-12T10:00:00Z", 0.50),
        ("2026-11-16T09:00:00Z", 1.00))

MANIFEST = """\
name: shop-checkout-2026-11
time_column: ts
grain: 1h
dimensions: [country, platform]
measures:
  sessions: {}
  conversions: {}
metrics:
  conversion_rate: {ratio: [conversions, sessions], better: higher}
  sessions: {sum: sessions, better: higher}
sources:
  events:
    origin: warehouse.analytics.sessions_hourly (sample)
    extracted_at: '2026-11-18T06:00:00Z'
    transform: ["group by hour (UTC), country and platform"]
"""


def events(rng: np.random.Generator) -> pd.DataFrame:
    ts = pd.date_range(START, periods=DAYS * 24, freq="1h")
    frames = []
    for country, (peak, off) in COUNTRIES.items():
        h = (ts.hour.to_numpy() + off) % 24
        prof = 0.15 + 0.85 * np.exp(-0.5 * ((h - 14) / 4.5) ** 2)
        wk = np.where(((ts + pd.Timedelta(hours=off)).day_of_week.to_numpy()) >= 5, 1.15, 1.0)
        for platform, (share, p) in PLATFORMS.items():
            lam = peak * share * prof * wk
            sessions = rng.poisson(lam)
            exposure = np.zeros(len(ts))
            if platform == "ios":
                for t, x in RAMP:
                    exposure[ts >= pd.Timestamp(t)] = x
            conv = rng.binomial(sessions, p * (1 - 0.40 * exposure))
            frames.append(pd.DataFrame({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "country": country, "platform": platform,
                                        "sessions": sessions, "conversions": conv}))
    return pd.concat(frames).sort_values(["ts", "country", "platform"]).reset_index(drop=True)


def flagd_revisions() -> list[tuple[str, dict]]:
    schema = "https://flagd.dev/schema/v0/flags.json"
    boolean = {"on": True, "off": False}
    internal = {"ends_with": [{"var": "email"}, "@shop.example"]}
    dark = {"state": "ENABLED", "variants": boolean, "defaultVariant": "off",
            "targeting": {"if": [{"in": [{"var": "country"}, ["DE", "FR"]]}, "on", "off"]}}
    ranking = {"state": "ENABLED", "variants": {"v1": "bm25", "v2": "learned"},
               "defaultVariant": "v1",
               "targeting": {"if": [internal, "v2",
                                    {"fractional": [{"var": "targetingKey"},
                                                    ["v2", 25], ["v1", 75]]}]}}

    def checkout(pct):
        branch = "on" if pct == 100 else {"fractional": [["on", pct], ["off", 100 - pct]]}
        return {"state": "ENABLED", "variants": boolean, "defaultVariant": "off",
                "targeting": {"if": [{"==": [{"var": "platform"}, "ios"]}, branch, "off"]}}

    r1 = {"new-checkout-flow": checkout(10), "dark-mode": dark, "search-ranking-v2": ranking}
    r2 = dict(r1, **{"new-checkout-flow": checkout(50),
                     "promo-banner": {"state": "ENABLED", "variants": boolean,
                                      "defaultVariant": "on"}})
    r3 = dict(r2, **{"new-checkout-flow": checkout(100), "dark-mode": dict(dark, state="DISABLED")})
    ranking50 = json.loads(json.dumps(ranking))
    ranking50["targeting"]["if"][2]["fractional"][1:] = [["v2", 50], ["v1", 50]]
    r4 = dict(r3, **{"search-ranking-v2": ranking50})
    authors = ("m.chen", "m.chen", "j.alvarez", "s.nakamura")
    times = [RAMP[0][0], RAMP[1][0], RAMP[2][0], "2026-11-17T15:00:00Z"]
    out = []
    for n, (flags, t, a) in enumerate(zip((r1, r2, r3, r4), times, authors), start=1):
        name = f"flags.{t.replace(':', '-')}.json"
        out.append((name, {"$schema": schema, "metadata": {"flagSetId": "shop-web",
                                                           "version": f"r{n}", "updatedAt": t,
                                                           "author": a},
                           "flags": flags}))
    return out


def deployments() -> list[dict]:
    repo = "https://api.github.com/repos/shop/checkout-api"

    def dep(i, sha, ref, env, created, states, creator="deploy-bot", payload=None, desc=None):
        t0 = pd.Timestamp(created)
        statuses = []
        for k, st in enumerate(states):
            statuses.append({"id": i * 10 + k, "state": st, "creator": {"login": creator},
                             "description": f"Deployment {st}", "environment": env,
                             "log_url": f"https://github.com/shop/checkout-api/actions/runs/{i}",
                             "created_at": (t0 + pd.Timedelta(minutes=3 + 4 * k)
                                            ).strftime("%Y-%m-%dT%H:%M:%SZ")})
        return {"url": f"{repo}/deployments/{i}", "id": i, "node_id": f"DE_kwDO{i}",
                "sha": sha, "ref": ref, "task": "deploy", "payload": payload or {},
                "original_environment": env, "environment": env,
                "description": desc, "creator": {"login": creator, "type": "Bot"},
                "created_at": created, "updated_at": statuses[-1]["created_at"],
                "statuses_url": f"{repo}/deployments/{i}/statuses", "repository_url": repo,
                "transient_environment": False, "production_environment": env == "production",
                "statuses": list(reversed(statuses))}  # the API lists newest first

    return [
        dep(1820041, "4f1c2e9a7b", "v3.14.0", "staging", "2026-11-03T09:12:00Z",
            ["in_progress", "success"]),
        dep(1820077, "4f1c2e9a7b", "v3.14.0", "production", "2026-11-03T13:40:00Z",
            ["queued", "in_progress", "success"], desc="weekly release"),
        dep(1821503, "9be07d1c33", "v3.15.0", "production", "2026-11-06T11:05:00Z",
            ["in_progress", "failure"], desc="migration timed out"),
        dep(1821530, "9be07d1c33", "v3.15.0", "production", "2026-11-06T12:20:00Z",
            ["in_progress", "success"], desc="retry after fixing the migration"),
        dep(1823310, "c2d9a0f4e1", "v3.16.0", "production", "2026-11-11T15:30:00Z",
            ["in_progress", "success"], payload={"service": "checkout-api", "rollout": 10,
                                                 "scope": {"country": "US"}},
            desc="canary in the US cell"),
        dep(1823398, "c2d9a0f4e1", "v3.16.0", "production", "2026-11-12T09:00:00Z",
            ["in_progress", "success"], payload={"service": "checkout-api"},
            desc="full rollout"),
        dep(1824120, "e71b55a0d2", "pr-2291", "preview-2291", "2026-11-14T10:10:00Z",
            ["success"], creator="a.kowalski"),
        dep(1824555, "0a9f3cc812", "v3.17.0", "production", "2026-11-16T14:45:00Z",
            ["queued", "in_progress", "success"], creator="p.okafor",
            payload={"service": "payments-gateway"}, desc="gateway timeout tweaks"),
    ]


def main() -> None:
    rng = np.random.default_rng(20261118)
    base = OUT / "base-passport"
    base.mkdir(parents=True, exist_ok=True)
    (base / "passport.yaml").write_text(MANIFEST)
    events(rng).to_csv(base / "events.csv", index=False)
    (base / "changes.jsonl").write_text("")
    hist = OUT / "flagd-history"
    hist.mkdir(parents=True, exist_ok=True)
    for name, doc in flagd_revisions():
        (hist / name).write_text(json.dumps(doc, indent=2) + "\n")
    (OUT / "github-deployments.json").write_text(json.dumps(deployments(), indent=2) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
