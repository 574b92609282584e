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

import json
import re
from pathlib import Path

import duckdb

from workbench.errors import PassportError

from workbench.passport.text import decode_utf8, json_error, json_values, read_bytes

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


EXPECTED = "OTLP/JSON export requests (one per file, or one per line)"


def load_requests(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, int]:
    """Read every file's top-level JSON objects into ``otlp_req``; classify them.

    Returns ``{file: number of OTLP requests}``. A file that is not UTF-8 JSON
    (truncated, another encoding) or holds no OTLP request raises a
    :class:`PassportError` naming it, and the line and column where it can.
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


def _duck_message(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^[A-Za-z ]+ Error: ", "", first).strip()


def _locate_bad_json(con, files, exc) -> None:
    """DuckDB refused the files: find the one at fault and say where (error path only)."""
    for f in files:
        try:
            con.execute(f"SELECT count(*) FROM read_json_objects({_lit(str(f))}, format='auto', "
                        f"maximum_object_size={MAX_OBJECT})").fetchone()
        except duckdb.Error as e2:
            text = decode_utf8(read_bytes(f), f, EXPECTED)
            try:
                for _ in json_values(text):
                    pass
            except json.JSONDecodeError as jexc:
                raise json_error(jexc, f, EXPECTED) from None
            raise PassportError(f"cannot be read as JSON: {_duck_message(e2)}; expected "
                                f"{EXPECTED}", file=str(f)) from None
    raise PassportError(f"cannot be read as OTLP/JSON: {_duck_message(exc)}",
                        file=", ".join(map(str, files))) from None


def _kind(sp: str) -> str:
    return f"""CASE upper(CAST({sp}->>'kind' AS VARCHAR))
    WHEN '1' THEN 'internal' WHEN 'SPAN_KIND_INTERNAL' THEN 'internal'
    WHEN '2' THEN 'server' WHEN 'SPAN_KIND_SERVER' THEN 'server'
    WHEN '3' THEN 'client' WHEN 'SPAN_KIND_CLIENT' THEN 'client'
    WHEN '4' THEN 'producer' WHEN 'SPAN_KIND_PRODUCER' THEN 'producer'
    WHEN '5' THEN 'consumer' WHEN 'SPAN_KIND_CONSUMER' THEN 'consumer'
    ELSE 'unspecified' END"""


def _span_cols(sp: str) -> str:
    """The columns of one span, from its JSON ``sp``."""
    return f"""{sp}->>'name' AS name, {_kind(sp)} AS kind,
               {sp}->>'traceId' AS trace_id, {sp}->>'spanId' AS span_id,
               nullif({sp}->>'parentSpanId', '') AS parent_id,
               TRY_CAST({sp}->>'startTimeUnixNano' AS HUGEINT) AS start_ns,
               TRY_CAST({sp}->>'endTimeUnixNano' AS HUGEINT) AS end_ns,
               upper(coalesce(CAST({sp}->>'$.status.code' AS VARCHAR), '0'))
                   IN ('2', 'STATUS_CODE_ERROR') AS is_error"""


#: The first field a span needs and lacks (NULL when it has them all). The resource's
#: service.name is the ``service`` dimension and the scope of deploys; the ids, the name and
#: both times are required by OTLP, and requests, latency and deploys are built from them.
_SPAN_PROBLEM = """CASE
    WHEN nullif(rattr['service.name'], '') IS NULL THEN 'service.name'
    WHEN nullif(trace_id, '') IS NULL THEN 'traceId'
    WHEN nullif(span_id, '') IS NULL THEN 'spanId'
    WHEN nullif(name, '') IS NULL THEN 'name'
    WHEN coalesce(start_ns, 0) <= 0 THEN 'startTimeUnixNano'
    WHEN coalesce(end_ns, 0) <= 0 THEN 'endTimeUnixNano'
    END"""

_LOG_TIME = """coalesce(nullif(TRY_CAST({l}->>'timeUnixNano' AS HUGEINT), 0),
                        TRY_CAST({l}->>'observedTimeUnixNano' AS HUGEINT))"""
_LOG_PROBLEM = "CASE WHEN coalesce(time_ns, 0) <= 0 THEN 'timeUnixNano' END"

_NS = ("expected nanoseconds since the epoch as a decimal string, such as "
       '"1794924000000000000"')
_WHAT = {
    "service.name": "the resource has no service.name attribute; expected resource.attributes "
                    'to hold {"key": "service.name", "value": {"stringValue": SERVICE}}',
    "traceId": "the span has no traceId; expected the trace id as 32 hex digits",
    "spanId": "the span has no spanId; expected the span id as 16 hex digits",
    "name": "the span has no name; expected its operation name (e.g. \"POST /checkout\")",
}


def build_spans(con: duckdb.DuckDBPyConnection, *, span_attributes: bool) -> int:
    """Flatten spans into ``otlp_spans``; returns the span count.

    Columns: filename, rattr (resource attributes map), sattr (span attributes
    map, empty unless ``span_attributes``), name, kind, trace_id, span_id,
    parent_id, start_ns, end_ns, is_error, ts (TIMESTAMPTZ of the start).
    A span lacking a field of :data:`_SPAN_PROBLEM` raises a PassportError
    naming its file, line and path (``resourceSpans[0].scopeSpans[1].spans[3]``).
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
            SELECT filename, rattr, unnest(json_extract(s, '$.spans[*]')) AS sp FROM ss),
        f AS (SELECT filename, rattr, {sattr} AS sattr, {_span_cols('sp')} FROM sp)
        SELECT *, {_SPAN_PROBLEM} AS problem FROM f""")
    bad = con.execute("""SELECT filename, count(*) FROM otlp_spans WHERE problem IS NOT NULL
                         GROUP BY filename ORDER BY filename LIMIT 1""").fetchone()
    if bad:
        raise _locate_problem(con, Path(bad[0]), bad[1], "spans")
    con.execute("""ALTER TABLE otlp_spans ADD COLUMN ts TIMESTAMPTZ""")
    con.execute("""UPDATE otlp_spans SET ts = CAST(make_timestamp(CAST(start_ns // 1000 AS BIGINT))
                                              AS TIMESTAMPTZ)""")
    return con.execute("SELECT count(*) FROM otlp_spans").fetchone()[0]


def _indexed(json_expr: str, path: str) -> str:
    """``unnest`` of the JSON list at ``path`` as structs {v: element, i: 1-based index}."""
    return (f"unnest(list_transform(coalesce(json_extract({json_expr}, '{path}'), []), "
            "lambda x, i: {'v': x, 'i': i}))")


def _locate_problem(con, f: Path, count: int, what: str) -> PassportError:
    """Re-read one file with the index of every request, resource, scope and record, and name
    the first record that lacks a required field (the error path only)."""
    top, scope, leaf = (("resourceSpans", "scopeSpans", "spans") if what == "spans"
                        else ("resourceLogs", "scopeLogs", "logRecords"))
    cols = (_span_cols("u3.v") if what == "spans" else
            f"{_LOG_TIME.format(l='u3.v')} AS time_ns, u3.v->>'spanId' AS span_id")
    problem = _SPAN_PROBLEM if what == "spans" else _LOG_PROBLEM
    raw = ("u3.v->>'startTimeUnixNano' AS start_raw, u3.v->>'endTimeUnixNano' AS end_raw"
           if what == "spans" else
           "u3.v->>'timeUnixNano' AS start_raw, u3.v->>'observedTimeUnixNano' AS end_raw")
    row = con.execute(f"""
        WITH req AS (
            SELECT json, ordinality AS q
            FROM read_json_objects({_lit(str(f))}, format='auto',
                                   maximum_object_size={MAX_OBJECT}) WITH ORDINALITY),
        l1 AS (SELECT q, {_indexed('json', f'$.{top}[*]')} AS u1 FROM req),
        l2 AS (SELECT q, u1.i AS i1, {attr_map('u1.v', '$.resource.attributes[*]')} AS rattr,
                      {_indexed('u1.v', f'$.{scope}[*]')} AS u2 FROM l1),
        l3 AS (SELECT q, i1, u2.i AS i2, rattr, {_indexed('u2.v', f'$.{leaf}[*]')} AS u3 FROM l2),
        f AS (SELECT q, i1, i2, u3.i AS i3, rattr, {cols}, {raw} FROM l3)
        SELECT q, i1, i2, i3, {problem} AS problem, span_id, start_raw, end_raw,
               (SELECT count(*) FROM req) AS nreq
        FROM f WHERE ({problem}) IS NOT NULL ORDER BY q, i1, i2, i3 LIMIT 1""").fetchone()
    if row is None:  # the two readings disagree; still name the file
        return PassportError(f"{count} record(s) of {leaf} lack a required field; expected "
                             f"{EXPECTED}", file=str(f))
    q, i1, i2, i3, field, span_id, start_raw, end_raw, nreq = row
    where = []
    if nreq > 1:
        where.append(f"line {_request_line(f, q)} (request {q})")
    if field == "service.name":
        where.append(f"{top}[{i1 - 1}].resource")
    else:
        where.append(f"{top}[{i1 - 1}].{scope}[{i2 - 1}].{leaf}[{i3 - 1}]"
                     + (f" (spanId {span_id})" if span_id and field != "spanId" else ""))
    if field in _WHAT:
        text = _WHAT[field]
    elif what == "logs":
        text = ("the log record has neither timeUnixNano nor observedTimeUnixNano; " + _NS
                if start_raw is None and end_raw is None else
                f"timeUnixNano {start_raw!r} / observedTimeUnixNano {end_raw!r} give no time; "
                + _NS)
    else:
        value = start_raw if field == "startTimeUnixNano" else end_raw
        text = (f"the span has no {field}; " + _NS if value is None
                else f"{field} {value!r} is not a time; " + _NS)
    if count > 1:
        text += f" (the first of {count} {leaf} in this file that lack a required field)"
    return PassportError(", ".join(where) + ": " + text, file=str(f))


def _request_line(f: Path, q: int) -> int | str:
    """The line on which the ``q``-th (1-based) request of a file starts."""
    try:
        text = read_bytes(f).decode("utf-8-sig")
        for n, (line, _) in enumerate(json_values(text), start=1):
            if n == q:
                return line
    except (ValueError, PassportError):
        pass
    return "?"


def build_logs(con: duckdb.DuckDBPyConnection) -> int:
    """Flatten log records into ``otlp_logs``; returns the record count.

    A record with neither ``timeUnixNano`` nor ``observedTimeUnixNano`` raises a
    PassportError naming its file, line and path.
    """
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
               {_LOG_TIME.format(l='l')} AS time_ns,
               TRY_CAST(l->>'severityNumber' AS INTEGER) AS severity_number,
               l->>'severityText' AS severity_text,
               coalesce(l->>'$.body.stringValue', CAST(l->'$.body' AS VARCHAR)) AS body,
               nullif(l->>'traceId', '') AS trace_id, nullif(l->>'spanId', '') AS span_id
        FROM lr""")
    bad = con.execute(f"""SELECT filename, count(*) FROM otlp_logs WHERE ({_LOG_PROBLEM}) IS NOT NULL
                          GROUP BY filename ORDER BY filename LIMIT 1""").fetchone()
    if bad:
        raise _locate_problem(con, Path(bad[0]), bad[1], "logs")
    return con.execute("SELECT count(*) FROM otlp_logs").fetchone()[0]
