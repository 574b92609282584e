"""``workbench serve --num-procs 2``: two forked server processes behind one port, one login.

The real server (``python -m workbench.ui.app``) on a free loopback port with a users
file; requests go through Tornado's HTTP client as a browser's would, each landing in
whichever process accepts it. The investigation runs once, before the fork; logins and
cookies made in one process hold in the other; every request without a login is
refused; the audit log stays one valid chain with both processes appending.
"""
from __future__ import annotations

import os
import re
import sys
import urllib.parse
from pathlib import Path

import pytest

from workbench.governance.audit import read_audit, verify_audit
from workbench.governance.auth import UserFile
from workbench.governance.policy import Role
from workbench.ui.harness import free_port, start_process, stop_process
from tests._http import fetch

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "sample_data" / "demo"


_fetch = fetch


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("procs")
    users = tmp / "users.json"
    UserFile.add(users, "ana", Role.ANALYST, "analyst-pass-2")
    port = free_port()
    cmd = [sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db", str(tmp / "store.duckdb"),
           "--library", str(tmp / "library"), "--port", str(port), "--users", str(users),
           "--num-procs", "2"]
    proc, url = start_process(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=240)
    yield {"proc": proc, "base": f"http://127.0.0.1:{port}", "url": url, "tmp": tmp}
    stop_process(proc)


def test_two_processes_share_the_port_and_one_investigation(served):
    assert len(_children(served["proc"].pid)) == 2
    token = urllib.parse.parse_qs(urllib.parse.urlparse(served["url"]).query)["token"][0]
    for _ in range(6):  # whichever process accepts it: the page with its session
        r = _fetch(f"{served['base']}/?token={token}")
        assert r.code == 200 and b"bokeh" in r.body.lower()
    log = (served["tmp"] / "server.log").read_text()
    # investigated before the fork: each process finds it ready at once
    assert len(re.findall(r"investigation of conversion_rate ready in 0\.\d s", log)) == 2, log


def test_a_login_holds_in_both_processes_and_the_audit_chain_stays_whole(served):
    base = served["base"]
    for _ in range(6):
        r = _fetch(base + "/")
        to = urllib.parse.urlparse(r.headers.get("Location", "")).path
        assert r.code in (401, 403) or (r.code == 302 and to in ("/login", "./login")), r.code
    cookies = []
    for _ in range(4):
        body = urllib.parse.urlencode({"username": "ana", "password": "analyst-pass-2"})
        r = _fetch(base + "/login?next=/", method="POST", body=body)
        assert r.code == 302, r.code
        cookies.append("; ".join(c.split(";")[0] for c in r.headers.get_list("Set-Cookie")))
    for cookie in cookies:
        for _ in range(3):
            assert _fetch(base + "/", headers={"Cookie": cookie}).code == 200
    audit = served["tmp"] / "library" / "audit.jsonl"
    logins = [r for r in read_audit(audit) if "login" in r.action and r.actor.endswith("ana")]
    assert len(logins) >= 4
    assert verify_audit(audit).ok
