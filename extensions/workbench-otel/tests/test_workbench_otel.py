"""workbench-otel: OTLP/JSON format handling, provenance, and the bad deploy ranked first."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from workbench.errors import PassportError, WorkbenchError
from workbench.passport import load_passport
from workbench.testing import check_source
from workbench_otel import OtelSource
from workbench_otel.sample import write_incident_sample


def _events(pp_dir: Path):
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con.execute(f"SELECT * FROM read_parquet('{pp_dir / 'events.parquet'}') "
                       "ORDER BY ts, service, operation").df()


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    src = OtelSource()
    sample = src.sample_input()
    out = src.to_passport(sample, tmp_path_factory.mktemp("otel") / "passport")
    return sample, out


def test_tiny_export_becomes_events_changes_and_logs(tmp_path):
    src = OtelSource()
    out = src.to_passport(src.tiny_sample(), tmp_path / "pp")
    pp = load_passport(out)
    assert pp.manifest.dimensions == ("service", "operation", "region")
    assert pp.manifest.metric("error_rate").numerator == "errors"
    assert pp.manifest.metric("latency").better == "lower"
    ev = _events(out)
    rows = {(r.ts.hour, r.service, r.operation): (r.requests, r.errors, r.duration_ms_sum)
            for r in ev.itertuples()}
    # the CLIENT span (INSERT orders) is not a request; a string enum kind is read
    assert rows == {
        (14, "checkout", "POST /checkout"): (1, 0, 231.0),
        (14, "checkout", "GET /checkout/summary"): (1, 0, 80.0),
        (15, "checkout", "POST /checkout"): (2, 1, 762.0),   # STATUS_CODE_OK is no error
        (15, "payments", "POST /payments/authorize"): (1, 1, 300.0),
    }
    ch = pp.changes
    assert list(ch["id"]) == ["otel-deploy-checkout-2.4.0"]
    assert ch["scope"][0] == {"service": "checkout"} and ch["kind"][0] == "deploy"
    assert str(ch["ts"][0]) == "2026-11-17 15:00:00+00:00"  # floored; exact time in the text
    assert "2.3.2 -> 2.4.0" in ch["description"][0] and "15:10:00" in ch["description"][0]
    logs = [json.loads(x) for x in (out / "logs.jsonl").read_text().splitlines()]
    assert [r["severity_text"] for r in logs] == ["INFO", "ERROR", "WARN"]
    assert logs[1]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert logs[1]["attributes"] == {"http.route": "/checkout"}
    assert "slow query" in logs[2]["body"]  # a kvlist body is kept as JSON
    assert logs[2]["ts"].startswith("2026-11-17T15:10:30")  # observedTimeUnixNano fallback
    for r in logs:
        assert r["source"]["plugin"] == "otel" and r["source"]["input"].endswith("logs.json")


def test_provenance_names_every_input_and_its_hash(tmp_path):
    src = OtelSource()
    out = src.to_passport(src.tiny_sample(), tmp_path / "pp")
    pp = load_passport(out)
    ev = pp.manifest.raw["sources"]["events"]["contributions"][0]
    assert ev["plugin"] == {"name": "otel", "package": "workbench-otel", "version": "0.1.0"}
    traces = src.tiny_sample() / "traces.json"
    assert ev["inputs"] == [{"path": str(traces.resolve()),
                             "sha256": hashlib.sha256(traces.read_bytes()).hexdigest(),
                             "bytes": traces.stat().st_size}]
    assert any("entry spans" in t for t in ev["transform"])
    row = json.loads((out / "changes.jsonl").read_text().splitlines()[0])
    assert row["source"]["input"] == str(traces.resolve())
    assert "first span 00f067aa0ba902b7" in row["source"]["record"]


def test_dimensions_map_any_attribute(tmp_path):
    src = OtelSource()
    out = src.to_passport(src.tiny_sample(), tmp_path / "pp", grain="30min",
                          dimensions={"service": "service.name", "sdk": "telemetry.sdk.language",
                                      "route": "http.route"})
    assert load_passport(out).manifest.dimensions == ("service", "sdk", "route")
    con = duckdb.connect()
    got = con.execute(f"SELECT DISTINCT service, sdk, route FROM read_parquet("
                      f"'{out / 'events.parquet'}') ORDER BY ALL").fetchall()
    assert ("checkout", "java", "/checkout") in got
    assert ("payments", None, None) in got  # absent attributes stay null -> "(null)"


@pytest.mark.parametrize("content, message", [
    ('{"resourceSpans": [', "is not valid JSON"),
    ('{"hello": 1}', "holds no OTLP/JSON export request"),
])
def test_bad_files_are_named(tmp_path, content, message):
    f = tmp_path / "export.json"
    f.write_text(content)
    with pytest.raises(PassportError, match=message) as exc:
        OtelSource().to_passport(f, tmp_path / "pp")
    assert str(f) in str(exc.value)
    assert not (tmp_path / "pp").exists()


def test_logs_only_is_not_enough(tmp_path):
    src = OtelSource()
    with pytest.raises(PassportError, match="need.* traces"):
        src.to_passport(src.tiny_sample() / "logs.json", tmp_path / "pp")


def test_bad_times_are_reported(tmp_path):
    doc = json.loads((OtelSource().tiny_sample() / "traces.json").read_text())
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = "yesterday"
    f = tmp_path / "t.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(PassportError, match=r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\] "
                                            r"\(spanId eee19b7ec3c1b174\): startTimeUnixNano "
                                            r"'yesterday' is not a time; expected nanoseconds"):
        OtelSource().to_passport(f, tmp_path / "pp")


def test_generator_is_deterministic(tmp_path):
    a = write_incident_sample(tmp_path / "a", seed=3, days=2)
    b = write_incident_sample(tmp_path / "b", seed=3, days=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_incident_sample_has_a_bad_deploy_and_decoys(incident):
    sample, out = incident
    truth = json.loads((sample / "truth.json").read_text())
    pp = load_passport(out)
    ids = set(pp.changes["id"])
    assert truth["culprit"]["change_id"] in ids
    for d in truth["decoys"]:
        assert f"otel-deploy-{d['service']}-{d['version']}" in ids
    assert len(pp.changes) >= 10
    hours = (_events(out)["ts"].max() - _events(out)["ts"].min()).total_seconds() / 3600
    assert hours >= 14 * 24  # enough history for the seasonal baseline


def test_investigate_ranks_the_bad_deploy_first(incident):
    sample, out = incident
    truth = json.loads((sample / "truth.json").read_text())
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(out),
                        "--metric", "error_rate", "--json", "--no-artifact", "-q"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["verdict"] == "change"
    assert ans["causes"][0]["change_id"] == truth["culprit"]["change_id"]
    assert ans["causes"][0]["confidence"] >= 0.8
    assert ans["slices"][0]["filter"].get("service") == "checkout"


def test_contract():
    check_source(OtelSource)


# ------------------------------------------------------------------ malformed input
# Each malformed export gives one WorkbenchError: one line naming the file, where in it
# (line, JSON path) and what was expected; the output folder and the writer's staging area
# are left as they were.
TINY = OtelSource().tiny_sample()
TRACES = (TINY / "traces.json").read_text()
LOGS = (TINY / "logs.json").read_text()
_NAMES = {TRACES: "traces.json", LOGS: "logs.json"}


def _snapshot(folder: Path) -> dict | None:
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails_cleanly(inputs, out: Path, monkeypatch, tmp_path: Path, *needles: str) -> str:
    """Convert ``inputs`` into ``out``: one located error line, ``out`` and staging unchanged."""
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where PassportWriter stages
    before = _snapshot(out)
    with pytest.raises(WorkbenchError) as exc:
        OtelSource().to_passport(inputs, out)
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1, msg
    bad = inputs[-1] if isinstance(inputs, list) else inputs
    assert msg.startswith(f"{bad}: "), msg
    for n in needles:
        assert n in msg, msg
    assert "expected" in msg, msg
    assert _snapshot(out) == before
    assert list(staging.iterdir()) == []
    return msg


def _spans(doc=None):
    doc = json.loads(TRACES) if doc is None else doc
    return doc, doc["resourceSpans"][0]["scopeSpans"][0]["spans"]


def _without(field: str) -> str:
    doc, spans = _spans()
    del spans[1][field]
    return json.dumps(doc)


def _no_service() -> str:
    doc = json.loads(TRACES)
    res = doc["resourceSpans"][1]["resource"]
    res["attributes"] = [a for a in res["attributes"] if a["key"] != "service.name"]
    return json.dumps(doc)


def _jsonl_second_request_without_start() -> str:
    second, spans = _spans()
    del spans[1]["startTimeUnixNano"]
    return "\n".join(json.dumps(d) for d in (json.loads(TRACES), second, json.loads(TRACES)))


def _log_without_times() -> str:
    doc = json.loads(LOGS)
    rec = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]
    rec.pop("timeUnixNano", None)
    rec.pop("observedTimeUnixNano", None)
    return json.dumps(doc)


MALFORMED = {
    # name: (file name, content, what the message must say)
    "truncated": ("t.json", TRACES[:len(TRACES) // 2],
                  ["is not valid JSON at line ", "ends in the middle of a JSON value (truncated?)",
                   "expected OTLP/JSON"]),
    "truncated_jsonl": ("t.jsonl", "\n".join(json.dumps(json.loads(TRACES)) for _ in range(3))[:-40],
                        ["is not valid JSON at line 3, column ", "truncated"]),
    "truncated_gzip": ("t.json.gz", gzip.compress(TRACES.encode())[:300],
                       ["is not a readable gzip file", "expected a complete .gz"]),
    "utf16": ("t.json", TRACES.encode("utf-16"),
              ["is UTF-16 text", "expected OTLP/JSON", "encoded as UTF-8"]),
    "latin1": ("t.json", TRACES.replace("checkout-232-eu0", "caf\u00e9-232").encode("latin-1"),
               ["is not UTF-8 text: byte 0xE9 at line 9, column ", "encoded as UTF-8"]),
    "no_start": ("t.json", _without("startTimeUnixNano"),
                 ["resourceSpans[0].scopeSpans[0].spans[1] (spanId eee19b7ec3c1b175): the span "
                  "has no startTimeUnixNano; expected nanoseconds since the epoch"]),
    "no_end": ("t.json", _without("endTimeUnixNano"),
               ["resourceSpans[0].scopeSpans[0].spans[1] (spanId eee19b7ec3c1b175): the span "
                "has no endTimeUnixNano"]),
    "no_trace_id": ("t.json", _without("traceId"),
                    ["resourceSpans[0].scopeSpans[0].spans[1] (spanId eee19b7ec3c1b175): the "
                     "span has no traceId; expected the trace id as 32 hex digits"]),
    "no_span_id": ("t.json", _without("spanId"),
                   ["resourceSpans[0].scopeSpans[0].spans[1]: the span has no spanId"]),
    "no_service_name": ("t.json", _no_service(),
                        ["resourceSpans[1].resource: the resource has no service.name attribute"]),
    "jsonl_line": ("t.jsonl", _jsonl_second_request_without_start(),
                   ["line 2 (request 2), resourceSpans[0].scopeSpans[0].spans[1]",
                    "no startTimeUnixNano"]),
    "log_without_time": ("l.json", _log_without_times(),
                         ["resourceLogs[0].scopeLogs[0].logRecords[1]",
                          "neither timeUnixNano nor observedTimeUnixNano"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_gives_one_located_error(case, tmp_path, monkeypatch):
    name, content, needles = MALFORMED[case]
    bad = tmp_path / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    # a log file is only read along with traces
    inputs = [TINY / "traces.json", bad] if case.startswith("log") else bad
    _fails_cleanly(inputs, tmp_path / "pp", monkeypatch, tmp_path, *needles)


def test_malformed_input_leaves_an_existing_passport_as_it_was(tmp_path, monkeypatch):
    out = OtelSource().to_passport(TINY, tmp_path / "pp")
    bad = tmp_path / "t.json"
    bad.write_text(_without("endTimeUnixNano"))
    _fails_cleanly(bad, out, monkeypatch, tmp_path, "the span has no endTimeUnixNano")
    load_passport(out)


def test_cli_reports_malformed_input_on_one_line(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(TRACES[:len(TRACES) // 2])
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "convert", "otel", str(bad),
                        "--out", str(tmp_path / "pp")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"workbench: error: {bad}: is not valid JSON"), \
        r.stderr
    assert r.stdout == "" and not (tmp_path / "pp").exists()
