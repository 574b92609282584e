"""Read OTLP/JSON exports with DuckDB, vectorized: no Python loop over spans.

The OTLP JSON encoding (opentelemetry-proto, ``ExportTraceServiceRequest`` and
``ExportLogsServiceRequest``) nests ``resourceSpans[] -> scopeSpans[] ->
spans[]`` and ``resourceLogs[] -> scopeLogs[] -> logRecords[]``; attributes
are lists of ``{key, value: {stringValue|intValue|doubleValue|boolValue}}``;
64-bit integers (times in ns, ``intValue``) are decimal strings; enums
(``kind``, ``status.code``) are integers, though some exporters write their
names (``SPAN_KIND_SERVER``), which are accepted too. Files may hold one
request (``.json``, as ``otlp/http`` bodies) or one request per line
(``.jsonl``, as the Collector's ``file`` exporter writes); gzip is read as is.

Each level is flattened with ``unnest(json_extract(..., '$.x[*]'))`` and
attribute lists become DuckDB maps, so the cost is a few columnar passes.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from workbench.errors import PassportError

MAX_OBJECT = 1 << 30  # one OTLP request may be large; DuckDB's default stops at 16 MB


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def attr_map(expr: str, path: str) -> str:
    """SQL for a MAP(VARCHAR, VARCHAR) from an OTLP attribute list at ``path``."""
    return (f"map_from_entries(list_transform(coalesce(json_extract({expr}, '{path}'), []), "
            "lambda a: {'k': a->>'key', 'v': coalesce(a->>'$.value.stringValue', "
            "a->>'$.value.intValue', a->>'$.value.doubleValue', a->>'$.value.boolValue', "
            "CAST(a->'$.value.arrayValue' AS VARCHAR), CAST(a->'$.value.kvlistValue' AS VARCHAR))}))")


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    return con


def load_requests(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, int]:
    """Read every file's top-level JSON objects into ``otlp_req``; classify them.

    Returns ``{file: kind}`` counts check: raises a located PassportError for a
    file that is not JSON or holds no OTLP request.
    """
    lst = "[" + ", ".join(_lit(str(f)) for f in files) + "]"
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE otlp_req AS
            SELECT filename, json,
                   json_exists(json, '$.resourceSpans') AS has_spans,
                   json_exists(json, '$.resourceLogs') AS has_logs
            FROM read_json_objects({lst}, format='auto', filename=true,
                                   maximum_object_size={MAX_OBJECT})""")
    except duckdb.Error as exc:
        _locate_bad_json(con, files, exc)
    per_file = dict(con.execute("""SELECT filename, count(*) FILTER (WHERE has_spans OR has_logs)
                                   FROM otlp_req GROUP BY filename""").fetchall())
    for f in files:
        if not per_file.get(str(f)):
            raise PassportError("holds no OTLP/JSON export request; expected objects with "
                                "'resourceSpans' (traces) or 'resourceLogs' (logs)", file=str(f))
    return per_file


def _locate_bad_json(con, files, exc) -> None:
    for f in files:
        try:
            con.execute(f"SELECT count(*) FROM read_json_objects({_lit(str(f))}, format='auto', "
                        f"maximum_object_size={MAX_OBJECT})").fetchone()
        except duckdb.Error as e2:
            first = str(e2).splitlines()[0]
            raise PassportError(f"is not valid JSON (truncated file?): {first}; expected OTLP/JSON "
                                "export requests, one per line or one per file",
                                file=str(f)) from None
    raise PassportError(f"cannot be read as OTLP/JSON: {str(exc).splitlines()[0]}",
                        file=", ".join(map(str, files))) from None


_KIND = """CASE upper(CAST(sp->>'kind' AS VARCHAR))
    WHEN '1' THEN 'internal' WHEN 'SPAN_KIND_INTERNAL' THEN 'internal'
    WHEN '2' THEN 'server' WHEN 'SPAN_KIND_SERVER' THEN 'server'
    WHEN '3' THEN 'client' WHEN 'SPAN_KIND_CLIENT' THEN 'client'
    WHEN '4' THEN 'producer' WHEN 'SPAN_KIND_PRODUCER' THEN 'producer'
    WHEN '5' THEN 'consumer' WHEN 'SPAN_KIND_CONSUMER' THEN 'consumer'
    ELSE 'unspecified' END"""


def build_spans(con: duckdb.DuckDBPyConnection, *, span_attributes: bool) -> int:
    """Flatten spans into ``otlp_spans``; returns the span count.

    Columns: filename, rattr (resource attributes map), sattr (span attributes
    map, empty unless ``span_attributes``), name, kind, trace_id, span_id,
    parent_id, start_ns, end_ns, is_error, ts (TIMESTAMPTZ of the start).
    """
    sattr = attr_map("sp", "$.attributes[*]") if span_attributes else "MAP {}::MAP(VARCHAR, VARCHAR)"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE otlp_spans AS
        WITH rs AS (
            SELECT filename, unnest(json_extract(json, '$.resourceSpans[*]')) AS r
            FROM otlp_req WHERE has_spans),
        ss AS (
            SELECT filename, {attr_map('r', '$.resource.attributes[*]')} AS rattr,
                   unnest(json_extract(r, '$.scopeSpans[*]')) AS s FROM rs),
        sp AS (
            SELECT filename, rattr, unnest(json_extract(s, '$.spans[*]')) AS sp FROM ss)
        SELECT filename, rattr, {sattr} AS sattr,
               sp->>'name' AS name, {_KIND} AS kind,
               sp->>'traceId' AS trace_id, sp->>'spanId' AS span_id,
               nullif(sp->>'parentSpanId', '') AS parent_id,
               TRY_CAST(sp->>'startTimeUnixNano' AS HUGEINT) AS start_ns,
               TRY_CAST(sp->>'endTimeUnixNano' AS HUGEINT) AS end_ns,
               upper(coalesce(CAST(sp->>'$.status.code' AS VARCHAR), '0'))
                   IN ('2', 'STATUS_CODE_ERROR') AS is_error
        FROM sp""")
    bad = con.execute("""SELECT filename, count(*) FROM otlp_spans
                         WHERE start_ns IS NULL OR end_ns IS NULL OR start_ns <= 0
                         GROUP BY filename ORDER BY filename LIMIT 1""").fetchone()
    if bad:
        raise PassportError(f"{bad[1]} span(s) have no valid startTimeUnixNano/endTimeUnixNano; "
                            "expected nanoseconds since the epoch as a decimal string",
                            file=bad[0])
    con.execute("""ALTER TABLE otlp_spans ADD COLUMN ts TIMESTAMPTZ""")
    con.execute("""UPDATE otlp_spans SET ts = CAST(make_timestamp(CAST(start_ns // 1000 AS BIGINT))
                                              AS TIMESTAMPTZ)""")
    return con.execute("SELECT count(*) FROM otlp_spans").fetchone()[0]


def build_logs(con: duckdb.DuckDBPyConnection) -> int:
    """Flatten log records into ``otlp_logs``; returns the record count."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE otlp_logs AS
        WITH rl AS (
            SELECT filename, unnest(json_extract(json, '$.resourceLogs[*]')) AS r
            FROM otlp_req WHERE has_logs),
        sl AS (
            SELECT filename, {attr_map('r', '$.resource.attributes[*]')} AS rattr,
                   unnest(json_extract(r, '$.scopeLogs[*]')) AS s FROM rl),
        lr AS (
            SELECT filename, rattr, s->>'$.scope.name' AS scope,
                   unnest(json_extract(s, '$.logRecords[*]')) AS l FROM sl)
        SELECT filename, rattr, scope, {attr_map('l', '$.attributes[*]')} AS lattr,
               coalesce(nullif(TRY_CAST(l->>'timeUnixNano' AS HUGEINT), 0),
                        TRY_CAST(l->>'observedTimeUnixNano' AS HUGEINT)) AS time_ns,
               TRY_CAST(l->>'severityNumber' AS INTEGER) AS severity_number,
               l->>'severityText' AS severity_text,
               coalesce(l->>'$.body.stringValue', CAST(l->'$.body' AS VARCHAR)) AS body,
               nullif(l->>'traceId', '') AS trace_id, nullif(l->>'spanId', '') AS span_id
        FROM lr""")
    bad = con.execute("""SELECT filename, count(*) FROM otlp_logs WHERE time_ns IS NULL
                         GROUP BY filename ORDER BY filename LIMIT 1""").fetchone()
    if bad:
        raise PassportError(f"{bad[1]} log record(s) have neither timeUnixNano nor "
                            "observedTimeUnixNano; expected nanoseconds since the epoch",
                            file=bad[0])
    return con.execute("SELECT count(*) FROM otlp_logs").fetchone()[0]
