"""OpenTelemetry source for the Divergence Workbench (entry point ``workbench.sources: otel``).

Turns OTLP/JSON trace and log exports into a passport:

``events.parquet``
    One row per grain bucket (default hourly) and combination of ``service``
    (resource ``service.name``), ``operation`` (span name) and ``region``
    (resource ``cloud.region``), plus any dimension mapped with
    ``dimensions={...}``; measures ``requests`` (entry spans: SERVER and
    CONSUMER spans, and root spans), ``errors`` (those with
    ``status.code = ERROR``) and ``duration_ms_sum``. Metrics ``error_rate``
    (errors / requests, lower is better), ``latency`` (mean ms per request,
    lower is better) and ``requests``. A slice (combination of dimension
    values) with no span in a bucket gets an explicit zero row when the export
    holds spans of other slices in that bucket, between the slice's first and
    last bucket; a bucket with no span at all stays absent (a telemetry gap).
``changes.jsonl``
    A ``deploy`` row whenever a service's ``service.version`` changes: the first
    span of the new version marks it (floored to the grain; the exact time is in
    the description), scope ``{"service": NAME}``. Rows from other sources
    already in the folder are kept.
``logs.jsonl``
    Every log record, flattened (time, severity, body, service, version,
    region, trace and span ids, attributes) and searchable with
    ``workbench search``.

All of it is computed in DuckDB straight from the JSON (see
:mod:`workbench_otel._otlp`). Provenance: ``passport.yaml`` ``sources`` lists
every input file with its sha256 and the transform steps, and every change and
log row carries a ``source`` object naming its input file and record.

Example
-------
>>> from workbench_otel import OtelSource
>>> src = OtelSource()
>>> out = src.to_passport(src.sample_input(), "otel-passport")   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from workbench.errors import PassportError, UsageError
from workbench.sources import Source, as_input_paths

__version__ = "0.1.0"
__all__ = ["OtelSource", "__version__"]

DATA = Path(__file__).parent / "data"
#: Default dimensions: passport column -> OTel attribute (``span.name`` is the span's name).
DEFAULT_DIMENSIONS = {"service": "service.name", "operation": "span.name",
                      "region": "cloud.region"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


class OtelSource(Source):
    """OpenTelemetry OTLP/JSON traces and logs -> requests, errors and latency per service,
    operation and region; logs; service.version changes as deploys."""

    name = "otel"

    def sample_input(self) -> Path:
        """The seeded incident sample (generated once into a cache folder)."""
        from .sample import cached_incident_sample

        return cached_incident_sample()

    def tiny_sample(self) -> Path:
        """The tiny committed OTLP export (format tests)."""
        return DATA / "tiny"

    def to_passport(self, inputs, out_dir, *, name: str = "otel", grain: str = "1h",
                    dimensions: dict[str, str] | None = None, overwrite: bool = False,
                    floor_changes: bool = True) -> Path:
        """Convert OTLP/JSON files (or folders of them) into a passport at ``out_dir``.

        Parameters
        ----------
        inputs:
            Files or folders of ``*.json``/``*.jsonl`` (``.gz`` too) OTLP exports;
            traces and logs may be mixed.
        out_dir:
            The passport folder (created; merged into when it exists).
        name, grain:
            Passport name and grain (a pandas offset alias).
        dimensions:
            Passport dimension -> OTel attribute key (resource attributes win
            over span attributes; ``span.name`` is the span's name). Default
            ``{"service": "service.name", "operation": "span.name", "region":
            "cloud.region"}``; ``service`` is always kept (deploy scopes use it).
        overwrite:
            Replace events written by another source.
        floor_changes:
            Floor deploy times to the grain, the resolution the passport is read
            at (the exact first-seen time stays in the description).
        """
        from workbench.passport import parse_grain

        from . import _otlp

        dims = _check_dims(DEFAULT_DIMENSIONS if dimensions is None else dimensions)
        dims.setdefault("service", "service.name")
        grain_td = parse_grain(grain)
        files = as_input_paths(inputs, patterns=("*.json", "*.jsonl", "*.json.gz",
                                                 "*.jsonl.gz"))
        files = [f.resolve() for f in files if f.name != "truth.json"]
        if not files:
            raise PassportError("no OTLP/JSON file (*.json, *.jsonl)", file=str(inputs))
        # read and check every input before the writer stages anything: bad input fails here
        con = _otlp.connect()
        _otlp.load_requests(con, files)
        span_files = [r[0] for r in con.execute(
            "SELECT DISTINCT filename FROM otlp_req WHERE has_spans ORDER BY 1").fetchall()]
        log_files = [r[0] for r in con.execute(
            "SELECT DISTINCT filename FROM otlp_req WHERE has_logs ORDER BY 1").fetchall()]
        if not span_files:
            raise PassportError("hold only logs; the OpenTelemetry source needs traces "
                                "(resourceSpans) to build events", file=", ".join(map(str, files)))
        nspans = _otlp.build_spans(con, span_attributes=any(
            v not in ("span.name", "service.name") for v in dims.values()))
        nlogs = _otlp.build_logs(con) if log_files else 0
        secs = int(grain_td.total_seconds())

        # ------------------------------------------------------------------ events
        dim_sql = {d: self._dim_expr(k) for d, k in dims.items()}
        sel = ", ".join(f"{e} AS {_q(d)}" for d, e in dim_sql.items())
        dcols = ", ".join(_q(d) for d in dims)
        join_agg = " AND ".join([f"g.ts = a.ts"] + [f"g.{_q(d)} IS NOT DISTINCT FROM l.{_q(d)}"
                                                    for d in dims])
        con.execute(f"""CREATE OR REPLACE TEMP TABLE otlp_events AS
            WITH e AS (
                SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS ts, {sel}, is_error,
                       (end_ns - start_ns) / 1e6 AS dur_ms
                FROM otlp_spans
                WHERE kind IN ('server', 'consumer') OR parent_id IS NULL),
            g AS (SELECT ts, {dcols}, count(*) AS requests,
                         count(*) FILTER (WHERE is_error) AS errors,
                         sum(greatest(dur_ms, 0)) AS duration_ms_sum
                  FROM e GROUP BY ALL),
            a AS (SELECT DISTINCT time_bucket(INTERVAL '{secs} seconds', ts) AS ts
                  FROM otlp_spans),
            l AS (SELECT {dcols}, min(ts) AS first_ts, max(ts) AS last_ts FROM g GROUP BY ALL)
            SELECT a.ts, {', '.join('l.' + _q(d) for d in dims)},
                   coalesce(g.requests, 0)::DOUBLE AS requests,
                   coalesce(g.errors, 0)::DOUBLE AS errors,
                   round(coalesce(g.duration_ms_sum, 0), 3) AS duration_ms_sum
            FROM a JOIN l ON a.ts BETWEEN l.first_ts AND l.last_ts
            LEFT JOIN g ON {join_agg}
            ORDER BY 1, {', '.join(str(i + 2) for i in range(len(dims)))}""")
        nreq = con.execute("SELECT sum(requests) FROM otlp_events").fetchone()[0] or 0
        if nreq == 0:
            raise PassportError("hold spans but no entry spans (SERVER or CONSUMER kind, or "
                                "root spans); nothing to count as requests",
                                file=", ".join(span_files))
        w = self.writer(out_dir, overwrite=overwrite)
        recs = {str(f): w.add_input(f) for f in files}
        con.execute("CREATE OR REPLACE TEMP TABLE file_hash (filename VARCHAR, sha256 VARCHAR)")
        con.executemany("INSERT INTO file_hash VALUES (?, ?)",
                        [(k, v["sha256"]) for k, v in recs.items()])
        span_inputs = [recs[f] for f in span_files]
        w.set_manifest(
            name=name, grain=grain, dimensions=list(dims),
            measures={"requests": {}, "errors": {}, "duration_ms_sum": {"unit": "ms"}},
            metrics={"error_rate": {"ratio": ["errors", "requests"], "better": "lower"},
                     "latency": {"ratio": ["duration_ms_sum", "requests"], "better": "lower",
                                 "unit": "ms"},
                     "requests": {"sum": "requests", "better": "higher"}})
        mapping = ", ".join(f"{d} <- {k}" for d, k in dims.items())
        w.write_events((con, "SELECT * FROM otlp_events"), inputs=span_inputs,
                       origin=f"OpenTelemetry traces (OTLP/JSON, {len(span_files)} file(s))",
                       transform=[
                           f"flatten resourceSpans/scopeSpans/spans ({nspans} spans)",
                           "keep entry spans (kind SERVER or CONSUMER, or no parent) as requests",
                           "errors = entry spans with status.code ERROR",
                           "duration_ms_sum = sum of (endTimeUnixNano - startTimeUnixNano) / 1e6",
                           f"dimensions: {mapping} (missing -> (null))",
                           f"group by {grain} bucket of startTimeUnixNano (UTC) and dimensions",
                           "zero rows for a slice with no span in a bucket in which the export "
                           "holds spans, between the slice's first and last bucket"])

        # ------------------------------------------------------------------ deploys
        changes = con.execute(f"""
            WITH v AS (
                SELECT rattr['service.name'] AS service, rattr['service.version'] AS version,
                       arg_min(ts, start_ns) AS first_ts, arg_min(filename, start_ns) AS file,
                       arg_min(span_id, start_ns) AS first_span,
                       list(DISTINCT rattr['cloud.region'] ORDER BY rattr['cloud.region'])
                           FILTER (WHERE rattr['cloud.region'] IS NOT NULL) AS regions,
                       count(*) AS spans
                FROM otlp_spans
                WHERE rattr['service.name'] IS NOT NULL AND rattr['service.version'] IS NOT NULL
                GROUP BY 1, 2),
            w AS (SELECT *, lag(version) OVER (PARTITION BY service
                                                ORDER BY first_ts, version) AS prev FROM v)
            SELECT w.*, h.sha256,
                   {"time_bucket(INTERVAL '%d seconds', first_ts)" % secs if floor_changes
                    else 'first_ts'} AS ts
            FROM w JOIN file_hash h ON h.filename = w.file
            WHERE prev IS NOT NULL ORDER BY first_ts, service""").df()
        rows = []
        for r in changes.itertuples(index=False):  # one row per deploy, not per span
            exact = r.first_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            regions = ", ".join(r.regions) if r.regions is not None and len(r.regions) else "-"
            rows.append({
                "id": f"otel-deploy-{r.service}-{r.version}", "ts": r.ts, "kind": "deploy",
                "target": r.service,
                "description": (f"Deploy {r.service} {r.prev} -> {r.version}: service.version "
                                f"first seen in spans at {exact} (regions {regions})"),
                "scope": {"service": r.service}, "rollout": None, "author": None,
                "source": w.row_source(recs[r.file], record=(
                    f"first span {r.first_span} of resource service.name={r.service} "
                    f"service.version={r.version}"))})
        w.add_changes(rows, inputs=span_inputs,
                      origin="OpenTelemetry traces: service.version changes",
                      transform=["per service, the first span of each service.version",
                                 "a version first seen after another one is a deploy",
                                 "scope {service: service.name}",
                                 "time floored to the grain" if floor_changes
                                 else "time = first span of the new version"])

        # ------------------------------------------------------------------ logs
        if log_files:
            self._write_logs(con, w, dims, recs, log_files, nlogs)
        return w.finish()

    # ---------------------------------------------------------------------- helpers
    @staticmethod
    def _dim_expr(key: str) -> str:
        if key == "span.name":
            return "name"
        if key == "span.kind":
            return "kind"
        return f"coalesce(rattr[{_lit(key)}], sattr[{_lit(key)}])"

    def _write_logs(self, con, w, dims, recs, log_files, n: int) -> None:
        extra = {d: k for d, k in dims.items() if k not in ("span.name", "span.kind",
                                                            "service.name")}
        extra_sel = "".join(f", rattr[{_lit(k)}] AS {_q(d)}" for d, k in extra.items())
        df = con.execute(f"""
            SELECT CAST(make_timestamp(CAST(time_ns // 1000 AS BIGINT)) AS TIMESTAMPTZ) AS ts,
                   severity_text, severity_number, body,
                   rattr['service.name'] AS service, rattr['service.version'] AS service_version
                   {extra_sel}, trace_id, span_id, scope,
                   CAST(to_json(lattr) AS VARCHAR) AS attributes,
                   l.filename, h.sha256, CAST(time_ns AS VARCHAR) AS time_ns
            FROM otlp_logs l JOIN file_hash h USING (filename)
            ORDER BY time_ns, service, body""").df()
        import json

        records = []
        cols = list(df.columns)
        for row in df.itertuples(index=False, name=None):  # log records, not spans
            d = dict(zip(cols, row))
            fname, sha, tns = d.pop("filename"), d.pop("sha256"), d.pop("time_ns")
            d["ts"] = d["ts"].isoformat().replace("+00:00", "Z")
            d["attributes"] = json.loads(d["attributes"]) if d["attributes"] else {}
            d = {k: (None if (isinstance(v, float) and v != v) else v) for k, v in d.items()}
            d["source"] = w.row_source(recs[fname], record=f"logRecord timeUnixNano={tns}")
            records.append(d)
        w.add_logs(records, inputs=[recs[f] for f in log_files],
                   origin=f"OpenTelemetry logs (OTLP/JSON, {len(log_files)} file(s))",
                   transform=[f"flatten resourceLogs/scopeLogs/logRecords ({n} records)",
                              "time = timeUnixNano, else observedTimeUnixNano",
                              "body = stringValue, else the body as JSON",
                              "resource service.name/service.version and attributes kept"])


def _check_dims(dims) -> dict[str, str]:
    if not isinstance(dims, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                             for k, v in dims.items()):
        raise UsageError("dimensions must map passport column -> OTel attribute key, e.g. "
                         '{"service": "service.name", "platform": "app.platform"}; '
                         f"got {dims!r}")
    return dict(dims)
