"""The HTTP flag provider against a real local flag service (a test server on a free port)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from workbench.experiments.flags import FlagProviderError, dose_flag
from workbench.experiments.ledger import OUTCOME, launch, reconcile
from workbench.governance.audit import read_audit, verify_audit
from workbench.governance.policy import Identity, Role
from workbench.testing import check_flag_provider
from workbench_flags_http import HttpFlagProvider


class FlagService:
    """A tiny flag service: flags by key in memory; ``mode`` injects a fault."""

    def __init__(self):
        self.flags: dict[str, dict] = {}
        self.version = 0
        self.mode = "ok"  # ok | slow | error | garbage | wrong-receipt
        self.release = threading.Event()
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep the test output clean
                pass

            def _send(self, code, body=None, raw=None):
                data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                                    else b"")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _fault(self) -> bool:
                if svc.mode == "slow":
                    svc.release.wait(10)
                    return True
                if svc.mode == "error":
                    self._send(503, {"error": "maintenance"})
                    return True
                if svc.mode == "garbage":
                    self._send(200, raw=b"<html>proxy login</html>")
                    return True
                return False

            def do_PUT(self):
                if self._fault():
                    return
                key = self.path.rsplit("/", 1)[-1]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                svc.flags[key] = body
                svc.version += 1
                if svc.mode == "wrong-receipt":
                    self._send(200, {"ok": True})
                else:
                    self._send(200, {"key": key, "version": svc.version})

            def do_GET(self):
                if self._fault():
                    return
                key = self.path.rsplit("/", 1)[-1]
                if key in svc.flags:
                    self._send(200, svc.flags[key])
                else:
                    self._send(404, {"error": "no such flag"})

            def do_DELETE(self):
                if self._fault():
                    return
                svc.flags.pop(self.path.rsplit("/", 1)[-1], None)
                self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    with FlagService() as s:
        yield s


OPERATOR = Identity("ops", Role.OPERATOR, source="token")


def test_contract_as_a_history_reader():
    rep = check_flag_provider(HttpFlagProvider)
    assert rep.name == "http" and rep.details["rows"] == 2  # raises ContractError on failure
    df = HttpFlagProvider().read_changes(HttpFlagProvider().sample_input())
    assert df.loc[1, "rollout"] == 50 and df.loc[1, "scope"] == {"app_version": "5.2",
                                                                 "platform": "ios"}


def test_apply_current_evaluate_remove(service):
    p = HttpFlagProvider(url=service.url, timeout=2)
    flag = dose_flag({"platform": "ios"}, 30)
    assert p.current("wb-x") is None
    rec = p.apply("wb-x", flag)
    assert rec["key"] == "wb-x" and rec["version"] == 1
    assert p.current("wb-x") == flag
    n = 2000
    ctx = pd.DataFrame({"targetingKey": [f"u{i}" for i in range(n)],
                        "platform": np.where(np.arange(n) % 2, "ios", "web")})
    v = p.evaluate("wb-x", ctx, "kept")
    ios = v[ctx["platform"].eq("ios").to_numpy()]
    assert set(v[ctx["platform"].eq("web").to_numpy()]) == {"kept"}
    assert 0.25 < (ios == "reverted").mean() < 0.35  # 1,000 units at 30%: sd 1.4 points
    p.remove("wb-x")
    assert p.current("wb-x") is None


@pytest.mark.parametrize("mode, words", [("slow", "did not answer within 0.3 s"),
                                         ("error", "answered HTTP 503"),
                                         ("garbage", "which is not JSON"),
                                         ("wrong-receipt", "expected {\"key\"")])
def test_faults_fail_clearly_and_are_audited(service, tmp_path, mode, words):
    service.mode = mode
    log = tmp_path / "audit.jsonl"
    p = HttpFlagProvider(url=service.url, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(FlagProviderError) as err:
        launch(p, "wb-rollback-chg-1", dose_flag({}, 50), identity=OPERATOR, audit=log,
               resource="chg-1")
    elapsed = time.monotonic() - t0
    assert words in str(err.value) and "launch failed" in str(err.value)
    recs = read_audit(log)
    assert [r.action for r in recs] == ["action.intent", OUTCOME]
    assert recs[1].details["status"] == "failed" and words in recs[1].details["message"]
    assert verify_audit(log).ok
    if mode == "slow":
        assert elapsed < 5  # bounded by the provider's timeout, not by the server's stall


def test_dangling_intent_is_reconciled_from_the_service(service, tmp_path):
    from workbench.governance.audit import append_audit

    log = tmp_path / "audit.jsonl"
    p = HttpFlagProvider(url=service.url, timeout=2)
    flag = dose_flag({"platform": "ios"}, 50)
    # a crash after the act and before the outcome: the service holds the flag
    p.apply("wb-a", flag)
    for key, f in (("ka", "wb-a"), ("kb", "wb-b")):
        append_audit(log, "action.intent", actor="ops", subject="chg-1",
                     details={"key": key, "flag": f, "provider": "http", "definition": flag})
    done = reconcile(log, p)
    assert [(d["flag"], d["status"]) for d in done] == [
        ("wb-a", "reconciled-applied"), ("wb-b", "reconciled-not-applied")]
    assert reconcile(log, p) == []  # nothing dangles any more


def test_workbench_loop_through_the_http_provider(service, tmp_path, capsys):
    from pathlib import Path

    from workbench.cli import main

    demo = Path(__file__).resolve().parents[3] / "sample_data" / "demo"
    args = ["loop", str(demo), "--metric", "conversion_rate", "--cause", "chg-0431",
            "--hours", "6", "--json", "-q", "--provider", "http",
            "--provider-option", f"url={service.url}", "--provider-option", "timeout=2",
            "--audit", str(tmp_path / "audit.jsonl"), "--workdir", str(tmp_path / "loop"),
            "--db", str(tmp_path / "store.duckdb")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"]["provider"] == "http" and out["status"] == "confirmed"
    assert "wb-rollback-chg-0431" in service.flags
    service.mode = "error"  # the same launch again while the service is down
    service.flags.clear()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "answered HTTP 503" in err and "launch failed" in err
    last = read_audit(tmp_path / "audit.jsonl")[-1]
    assert last.action == OUTCOME and last.details["status"] == "failed"
