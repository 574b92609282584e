"""A seeded OpenTelemetry export of a small shop, with one bad deploy.

Two and a half weeks of hourly traffic is too much raw OTLP to commit (about
15 MB of JSON), so the sample is *generated*, deterministically from a seed,
the first time :func:`write_incident_sample` (or ``OtelSource.sample_input``)
asks for it. A tiny hand-written export (``data/tiny``) is committed for the
format tests.

The world
---------
Five services (``frontend``, ``checkout``, ``payments``, ``catalog``,
``search``) in two regions (``eu-west-1``, ``us-east-1``) serve nine HTTP
operations. Requests per hour follow a daily profile read at each region's
local time and a weekend dip; each request is one SERVER span, and some carry a
CLIENT child (a database or cache call). Latencies are log-normal around each
operation's median; errors are Bernoulli per span with the operation's rate
and set ``status.code = 2`` and an HTTP 5xx.

Deploys roll over 8 minutes (old and new ``service.version`` interleave).
Background deploys of every service happen on working days. On
2026-11-17 at 14:20 UTC ``checkout`` 2.4.0 goes out and ``POST /checkout``
starts failing (error rate 0.8 % -> 25 %, latency x1.35): the culprit. Four
harmless decoy deploys of other services land within +-4 hours of it.

Logs: an ERROR record for every failed server span (its message depends on the
service and version), a WARN for slow database calls, and INFO start-up lines
at every deploy; all in the OTLP logs JSON encoding, with trace and span ids.

Files are written like the OpenTelemetry Collector's ``file`` exporter: JSON
lines, one export request per line, one file per day, for traces and logs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-11-02T00:00:00Z")
DAYS = 17
#: The culprit: (service, version, time).
BAD_DEPLOY = ("checkout", "2.4.0", pd.Timestamp("2026-11-17T14:20:00Z"))
DECOYS = (("payments", "3.1.1", "2026-11-17T10:05:00Z"), ("search", "1.9.0", "2026-11-17T12:50:00Z"),
          ("frontend", "5.1.0", "2026-11-17T13:35:00Z"), ("catalog", "7.3.0", "2026-11-17T16:25:00Z"))
BACKGROUND = (("frontend", "5.0.0", "2026-11-04T09:40:00Z"), ("checkout", "2.3.1", "2026-11-05T15:10:00Z"),
              ("payments", "3.1.0", "2026-11-06T11:00:00Z"), ("search", "1.8.3", "2026-11-09T10:20:00Z"),
              ("catalog", "7.2.0", "2026-11-10T14:45:00Z"), ("checkout", "2.3.2", "2026-11-11T11:40:00Z"),
              ("frontend", "5.0.1", "2026-11-12T16:05:00Z"), ("catalog", "7.2.1", "2026-11-13T09:15:00Z"))
FIRST_VERSION = {"frontend": "4.9.2", "checkout": "2.3.0", "payments": "3.0.4", "catalog": "7.1.0",
                 "search": "1.8.2"}
LANGUAGE = {"frontend": "nodejs", "checkout": "java", "payments": "java", "catalog": "go",
            "search": "go"}
REGIONS = (("eu-west-1", 0.6, 1), ("us-east-1", 0.4, -5))  # name, traffic share, UTC offset
#: service, operation (span name), method, route, requests/h at peak, median ms, error rate
OPERATIONS = (
    ("frontend", "GET /", "GET", "/", 30, 35, 0.004),
    ("frontend", "GET /product/{id}", "GET", "/product/{id}", 36, 55, 0.004),
    ("frontend", "POST /cart", "POST", "/cart", 10, 70, 0.006),
    ("checkout", "POST /checkout", "POST", "/checkout", 20, 240, 0.008),
    ("checkout", "GET /checkout/summary", "GET", "/checkout/summary", 24, 80, 0.005),
    ("payments", "POST /payments/authorize", "POST", "/payments/authorize", 14, 310, 0.012),
    ("catalog", "GET /products", "GET", "/products", 20, 40, 0.004),
    ("catalog", "GET /products/{id}", "GET", "/products/{id}", 26, 30, 0.003),
    ("search", "GET /search", "GET", "/search", 18, 120, 0.006),
)
#: Effect of the bad deploy per operation: (error rate, latency factor).
BAD_EFFECT = {"POST /checkout": (0.25, 1.35), "GET /checkout/summary": (0.04, 1.1)}
CLIENT_CALLS = {"POST /checkout": ("INSERT orders", "postgresql", 0.5),
                "GET /search": ("GET search:cache", "redis", 0.3),
                "POST /payments/authorize": ("POST /v1/charges", None, 0.3)}
ERROR_MESSAGES = {
    "frontend": ("upstream checkout returned 502", "render timeout after 2000 ms"),
    "checkout": ("payment authorization timed out after 3000 ms", "inventory reservation failed: 409"),
    "payments": ("card network responded 503", "fraud check timed out after 1500 ms"),
    "catalog": ("postgres connection pool exhausted", "product not found in cache and db timeout"),
    "search": ("elasticsearch query timed out after 800 ms", "redis READONLY replica"),
}
BAD_MESSAGE = ("NullPointerException in PromoCodeValidator.apply: promo code is null "
               "(checkout 2.4.0)")
HOUR_NS = 3_600_000_000_000


def _deploys() -> pd.DataFrame:
    rows = [(s, v, pd.Timestamp(t)) for s, v, t in BACKGROUND + DECOYS] + [BAD_DEPLOY]
    df = pd.DataFrame(rows, columns=["service", "version", "ts"])
    first = pd.DataFrame([(s, v, START - pd.Timedelta("30D")) for s, v in FIRST_VERSION.items()],
                         columns=["service", "version", "ts"])
    return pd.concat([first, df]).sort_values(["service", "ts"]).reset_index(drop=True)


def _profile(local_hour: np.ndarray) -> np.ndarray:
    """Share of peak traffic by local hour: low at night, two daytime humps."""
    h = local_hour.astype(float)
    day = np.exp(-0.5 * ((h - 13.0) / 4.0) ** 2) + 0.5 * np.exp(-0.5 * ((h - 20.5) / 1.8) ** 2)
    return 0.15 + 0.85 * day / 1.05


def _hex(rng: np.random.Generator, n: int, words: int) -> np.ndarray:
    parts = [np.char.mod("%016x", rng.integers(0, 2**63, n, dtype=np.int64)) for _ in range(words)]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(out, p)
    return out


def _server_spans(rng: np.random.Generator, days: int) -> pd.DataFrame:
    hours = pd.date_range(START, periods=days * 24, freq="1h")
    ops = pd.DataFrame(OPERATIONS, columns=["service", "name", "method", "route", "rate",
                                            "median_ms", "err"])
    frames = []
    for region, share, offset in REGIONS:
        local = (hours.hour.to_numpy() + offset) % 24
        weekend = np.isin(((hours + pd.Timedelta(hours=offset)).day_of_week).to_numpy(), [5, 6])
        level = _profile(local) * np.where(weekend, 0.8, 1.0) * share
        lam = level[:, None] * ops["rate"].to_numpy()[None, :]
        counts = rng.poisson(lam)
        hi, oi = np.nonzero(counts)
        reps = counts[hi, oi]
        f = pd.DataFrame({"hour": np.repeat(hi, reps), "op": np.repeat(oi, reps)})
        f["region"] = region
        frames.append(f)
    s = pd.concat(frames, ignore_index=True)
    n = len(s)
    start_ns = START.value + s["hour"].to_numpy() * HOUR_NS + rng.integers(0, HOUR_NS, n)
    o = ops.iloc[s["op"].to_numpy()].reset_index(drop=True)
    s = pd.concat([s, o], axis=1)
    s["start_ns"] = start_ns
    s = s.sort_values("start_ns", kind="stable").reset_index(drop=True)
    # versions: the last deploy before the span, rolling over 8 minutes
    dep = _deploys()
    s["version"] = ""
    roll = 8 * 60 * 1_000_000_000
    jitter = rng.integers(0, roll, len(s))
    for svc, d in dep.groupby("service"):
        m = (s["service"] == svc).to_numpy()
        t = s.loc[m, "start_ns"].to_numpy() - jitter[m]  # a span sees a deploy up to 8 min late
        idx = np.searchsorted(d["ts"].map(lambda x: x.value).to_numpy(), t, side="right") - 1
        s.loc[m, "version"] = d["version"].to_numpy()[np.maximum(idx, 0)]
    bad = (s["service"] == BAD_DEPLOY[0]) & (s["version"] == BAD_DEPLOY[1])
    err = s["err"].to_numpy().copy()
    lat = s["median_ms"].to_numpy().astype(float).copy()
    for op, (e, f) in BAD_EFFECT.items():
        mm = (bad & (s["name"] == op)).to_numpy()
        err[mm] = e
        lat[mm] *= f
    s["error"] = rng.random(len(s)) < err
    dur_ms = lat * np.exp(rng.normal(0.0, 0.5, len(s)))
    dur_ms = np.where(s["error"], dur_ms * 1.6, dur_ms)
    s["end_ns"] = s["start_ns"] + (dur_ms * 1e6).astype(np.int64)
    s["trace_id"] = _hex(rng, len(s), 2)
    s["span_id"] = _hex(rng, len(s), 1)
    s["parent_id"] = np.where(s["service"] == "frontend", "", _hex(rng, len(s), 1))
    s["kind"] = 2
    codes = rng.choice(np.array([500, 502, 503]), len(s), p=[0.6, 0.25, 0.15])
    s["status_code"] = np.where(s["error"], codes, np.where(s["method"] == "POST", 201, 200))
    pods = rng.integers(0, 2, len(s))
    s["host"] = (s["service"] + "-" + s["version"].str.replace(".", "", regex=False) + "-"
                 + s["region"].str[:2] + pods.astype(str))
    return s


def _client_spans(rng: np.random.Generator, server: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for op, (name, system, p) in CLIENT_CALLS.items():
        m = (server["name"] == op).to_numpy() & (rng.random(len(server)) < p)
        c = server.loc[m].copy()
        c["parent_id"] = c["span_id"]
        c["span_id"] = _hex(rng, len(c), 1)
        span = (c["end_ns"] - c["start_ns"]).to_numpy()
        c["start_ns"] = c["start_ns"] + (span * 0.1).astype(np.int64)
        c["end_ns"] = c["start_ns"] + (span * rng.uniform(0.2, 0.7, len(c))).astype(np.int64)
        c["name"] = name
        c["kind"] = 3
        c["db_system"] = system or ""
        c["error"] = False
        parts.append(c)
    return pd.concat(parts, ignore_index=True)


def _logs(rng: np.random.Generator, server: pd.DataFrame, client: pd.DataFrame) -> pd.DataFrame:
    e = server.loc[server["error"]].copy()
    choice = rng.integers(0, 2, len(e))
    msgs = np.array([ERROR_MESSAGES[s][c] for s, c in zip(e["service"], choice)], dtype=object)
    bad = ((e["service"] == BAD_DEPLOY[0]) & (e["version"] == BAD_DEPLOY[1])).to_numpy()
    msgs[bad & (rng.random(len(e)) < 0.85)] = BAD_MESSAGE
    err = pd.DataFrame({"ts_ns": e["end_ns"].to_numpy(), "severity_number": 17,
                        "severity_text": "ERROR", "body": msgs,
                        "service": e["service"].to_numpy(), "version": e["version"].to_numpy(),
                        "region": e["region"].to_numpy(), "host": e["host"].to_numpy(),
                        "trace_id": e["trace_id"].to_numpy(), "span_id": e["span_id"].to_numpy(),
                        "route": e["route"].to_numpy()})
    slow = client.loc[(client["db_system"] == "postgresql")
                      & ((client["end_ns"] - client["start_ns"]) > 250e6)]
    warn = pd.DataFrame({"ts_ns": slow["end_ns"].to_numpy(), "severity_number": 13,
                         "severity_text": "WARN",
                         "body": "slow query: INSERT orders took "
                         + ((slow["end_ns"] - slow["start_ns"]) // 1_000_000).astype(str) + " ms",
                         "service": slow["service"].to_numpy(), "version": slow["version"].to_numpy(),
                         "region": slow["region"].to_numpy(), "host": slow["host"].to_numpy(),
                         "trace_id": slow["trace_id"].to_numpy(),
                         "span_id": slow["span_id"].to_numpy(), "route": slow["route"].to_numpy()})
    dep = _deploys()
    dep = dep[dep["ts"] >= START]
    starts = []
    for region, _, _ in REGIONS:
        d = dep.copy()
        d["region"] = region
        starts.append(d)
    d = pd.concat(starts, ignore_index=True)
    info = pd.DataFrame({"ts_ns": d["ts"].map(lambda x: x.value).to_numpy()
                         + rng.integers(1, 60, len(d)) * 1_000_000_000,
                         "severity_number": 9, "severity_text": "INFO",
                         "body": "Starting " + d["service"] + " " + d["version"]
                         + " (rolling update, readiness probe passed)",
                         "service": d["service"].to_numpy(), "version": d["version"].to_numpy(),
                         "region": d["region"].to_numpy(),
                         "host": d["service"] + "-" + d["version"].str.replace(".", "", regex=False)
                         + "-" + d["region"].str[:2] + "0",
                         "trace_id": "", "span_id": "", "route": ""})
    out = pd.concat([err, warn, info], ignore_index=True).sort_values("ts_ns", kind="stable")
    return out.reset_index(drop=True)


_KV = "json_object('key', {k}, 'value', json_object('stringValue', {v}))"


def _resource_sql() -> str:
    keys = [("'service.name'", "service"), ("'service.namespace'", "'shop'"),
            ("'service.version'", "version"), ("'deployment.environment.name'", "'production'"),
            ("'cloud.provider'", "'aws'"), ("'cloud.region'", "region"), ("'host.name'", "host"),
            ("'telemetry.sdk.name'", "'opentelemetry'"), ("'telemetry.sdk.language'", "lang")]
    return "json_array(" + ", ".join(_KV.format(k=k, v=v) for k, v in keys) + ")"


def _write_traces(con, spans: pd.DataFrame, out: Path) -> list[Path]:
    spans = spans.assign(lang=spans["service"].map(LANGUAGE),
                         day=pd.to_datetime(spans["start_ns"], utc=True).dt.strftime("%Y-%m-%d"),
                         batch=spans["start_ns"] // HOUR_NS)
    con.register("spans_df", spans)
    span_json = f"""json_object(
        'traceId', trace_id, 'spanId', span_id, 'parentSpanId', parent_id, 'name', name,
        'kind', kind, 'startTimeUnixNano', start_ns::VARCHAR, 'endTimeUnixNano', end_ns::VARCHAR,
        'attributes', CASE WHEN kind = 2 THEN json_array(
            {_KV.format(k="'http.route'", v='route')},
            json_object('key', 'http.response.status_code', 'value',
                        json_object('intValue', status_code::VARCHAR)))
          WHEN db_system <> '' THEN json_array({_KV.format(k="'db.system'", v='db_system')})
          ELSE json_array() END,
        'status', CASE WHEN error THEN json_object('code', 2, 'message',
                                                   'HTTP ' || status_code::VARCHAR)
                       ELSE json_object() END)"""
    rows = con.execute(f"""
        SELECT day, json_object('resourceSpans', json_array(json_object(
            'resource', json_object('attributes', {_resource_sql()}),
            'scopeSpans', json_array(json_object(
                'scope', json_object('name', 'io.opentelemetry.http', 'version', '2.10.0'),
                'spans', list({span_json} ORDER BY start_ns, span_id))))))::VARCHAR AS line
        FROM spans_df GROUP BY day, batch, service, version, region, host, lang
        ORDER BY day, batch, service, region, host, version""").fetchall()
    con.unregister("spans_df")
    return _write_days(rows, out, "otlp-traces")


def _write_logs(con, logs: pd.DataFrame, out: Path) -> list[Path]:
    logs = logs.assign(lang=logs["service"].map(LANGUAGE),
                       day=pd.to_datetime(logs["ts_ns"], utc=True).dt.strftime("%Y-%m-%d"),
                       batch=logs["ts_ns"] // HOUR_NS)
    con.register("logs_df", logs)
    rec = f"""json_object('timeUnixNano', ts_ns::VARCHAR,
        'observedTimeUnixNano', (ts_ns + 2000000)::VARCHAR,
        'severityNumber', severity_number, 'severityText', severity_text,
        'body', json_object('stringValue', body),
        'attributes', CASE WHEN route <> '' THEN json_array({_KV.format(k="'http.route'", v='route')})
                           ELSE json_array() END,
        'traceId', trace_id, 'spanId', span_id)"""
    rows = con.execute(f"""
        SELECT day, json_object('resourceLogs', json_array(json_object(
            'resource', json_object('attributes', {_resource_sql()}),
            'scopeLogs', json_array(json_object(
                'scope', json_object('name', 'shop.' || service),
                'logRecords', list({rec} ORDER BY ts_ns, body))))))::VARCHAR AS line
        FROM logs_df GROUP BY day, batch, service, version, region, host, lang
        ORDER BY day, batch, service, region, host, version""").fetchall()
    con.unregister("logs_df")
    return _write_days(rows, out, "otlp-logs")


def _write_days(rows, out: Path, prefix: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    by_day: dict[str, list[str]] = {}
    for day, line in rows:
        by_day.setdefault(day, []).append(line)
    paths = []
    for day, lines in sorted(by_day.items()):
        p = out / f"{prefix}-{day}.jsonl"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def write_incident_sample(out_dir: str | Path, *, seed: int = 7, days: int = DAYS) -> Path:
    """Write the incident sample (``traces/`` and ``logs/`` of OTLP JSON lines).

    Deterministic: the same seed gives byte-identical files. Also writes
    ``truth.json`` (the culprit deploy and the decoys), which the adapter ignores.
    """
    import duckdb

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    server = _server_spans(rng, days)
    client = _client_spans(rng, server)
    for c in ("db_system",):
        server[c] = ""
    spans = pd.concat([server, client[server.columns]], ignore_index=True)
    logs = _logs(rng, server, client)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    con.execute("SET threads=1")  # one thread keeps list() order and files byte-identical
    _write_traces(con, spans, out / "traces")
    _write_logs(con, logs, out / "logs")
    truth = {"culprit": {"service": BAD_DEPLOY[0], "version": BAD_DEPLOY[1],
                         "ts": BAD_DEPLOY[2].strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "change_id": f"otel-deploy-{BAD_DEPLOY[0]}-{BAD_DEPLOY[1]}",
                         "effect": {op: {"error_rate": e, "latency_factor": f}
                                    for op, (e, f) in BAD_EFFECT.items()}},
             "decoys": [{"service": s, "version": v, "ts": t} for s, v, t in DECOYS],
             "seed": seed, "days": days, "spans": int(len(spans)), "log_records": int(len(logs))}
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return out


def cached_incident_sample(seed: int = 7) -> Path:
    """The incident sample in a cache folder, generated once (safe under parallel use)."""
    import hashlib

    # keyed by this generator's own source: an edited generator never reuses an old sample
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("WORKBENCH_SAMPLE_CACHE") or tempfile.gettempdir())
    target = root / f"workbench-otel-sample-{code}-seed{seed}"
    if (target / "truth.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=root))
    try:
        write_incident_sample(tmp, seed=seed)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; theirs is identical
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench_otel.sample",
                                description="write the seeded OTLP incident sample")
    p.add_argument("out", help="output folder")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=DAYS)
    a = p.parse_args(argv)
    print(write_incident_sample(a.out, seed=a.seed, days=a.days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
