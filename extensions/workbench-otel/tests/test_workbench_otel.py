"""workbench-otel: OTLP/JSON format handling, provenance, and the bad deploy ranked first."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from workbench.errors import PassportError
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
    with pytest.raises(PassportError, match="no valid startTimeUnixNano"):
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
