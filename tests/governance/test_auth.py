"""Authentication of the served workbench: token, passwords, throttle, routes, origins.

The server tests run the real thing (``python -m workbench.ui.app``, the code of
``workbench serve``) on a free loopback port and speak HTTP and websocket to it
with Tornado's clients, as a browser or a script on the network would.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from workbench.errors import UsageError
from workbench.governance.audit import read_audit, verify_audit
from workbench.governance.auth import ServeAuth, Throttle, UserFile, check_serve_config
from workbench.governance.policy import Role
from workbench.ui.harness import free_port, start_process, stop_process
from tests._http import fetch, off_loop

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "sample_data" / "demo"
PASSWORDS = {"vera": "viewer-pass-1", "ana": "analyst-pass-2"}


def _users(path: Path) -> Path:
    UserFile.add(path, "vera", Role.VIEWER, PASSWORDS["vera"])
    UserFile.add(path, "ana", Role.ANALYST, PASSWORDS["ana"])
    return path


# --------------------------------------------------------------------------- units
def test_users_file_holds_argon2_hashes_and_verifies(tmp_path):
    path = _users(tmp_path / "users.json")
    text = path.read_text()
    assert "$argon2id$" in text and PASSWORDS["vera"] not in text
    assert oct(path.stat().st_mode)[-3:] == "600"
    users = UserFile(path)
    who = users.verify("vera", PASSWORDS["vera"])
    assert who is not None and who.role is Role.VIEWER and who.source == "password"
    assert users.verify("vera", PASSWORDS["ana"]) is None
    assert users.verify("nobody", PASSWORDS["vera"]) is None
    with pytest.raises(UsageError, match="8 characters"):
        UserFile.add(path, "bob", Role.VIEWER, "short")
    (tmp_path / "bad.json").write_text(json.dumps({"users": {"x": {"role": "king"}}}))
    with pytest.raises(UsageError, match="not a users file"):
        UserFile(tmp_path / "bad.json")


def test_sixth_failure_within_a_minute_locks_for_thirty_seconds():
    now = [0.0]
    t = Throttle(clock=lambda: now[0])
    for i in range(5):
        now[0] = i * 10.0
        assert not t.fail("ip") and not t.locked("ip")
    now[0] = 55.0
    assert t.fail("ip") and t.locked("ip")  # the 6th within 60 s
    now[0] = 84.0
    assert t.locked("ip")
    now[0] = 85.5
    assert not t.locked("ip")
    # failures spread over more than a minute never lock
    t2 = Throttle(clock=lambda: now[0])
    for i in range(12):
        now[0] = 1000 + i * 13.0
        assert not t2.fail("ip")


def test_session_cookie_values_map_to_identities(tmp_path):
    auth = ServeAuth("tok", owner="owner", users=UserFile(_users(tmp_path / "u.json")))
    assert auth.identity("token:owner").role is Role.ADMIN
    assert auth.identity("password:vera").role is Role.VIEWER
    assert auth.identity("token:vera") is None        # only the owner holds the token
    assert auth.identity("password:nobody") is None
    assert auth.identity("vera") is None and auth.identity(None) is None
    assert auth.token_ok("tok") and not auth.token_ok("tok2") and not auth.token_ok("")


@pytest.mark.parametrize("address, kw, match", [
    ("0.0.0.0", {}, r"--users users.json"),
    ("192.168.1.5", {}, "refusing to listen on 192.168.1.5"),
    ("127.0.0.1", {"cookie_secret": "x" * 31}, "at least 32"),
    ("127.0.0.1", {"origins": ["*"]}, "wildcards"),
    ("127.0.0.1", {"origins": ["*.example.com:80"]}, "wildcards"),
])
def test_unsafe_serving_configurations_are_refused(address, kw, match):
    args = {"users": None, "oauth": None, "cookie_secret": None, "origins": [], **kw}
    with pytest.raises(UsageError, match=match):
        check_serve_config(address, **args)
    check_serve_config("0.0.0.0", users="u.json", oauth=None, cookie_secret="y" * 32,
                       origins=["proxy.example.com:443"])
    check_serve_config("::1", users=None, oauth=None, cookie_secret=None, origins=[])


def test_serve_on_all_interfaces_without_a_login_exits_2_with_how_to(tmp_path):
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "serve", str(DEMO),
                        "--address", "0.0.0.0", "--db", str(tmp_path / "s.duckdb")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "workbench users add" in r.stderr and "--users" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "s.duckdb").exists()


def test_users_add_reads_the_password_from_stdin(tmp_path):
    f = tmp_path / "users.json"
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "users", "add", str(f), "olga",
                        "--role", "operator"], input="operator-pass-3\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert UserFile(f).verify("olga", "operator-pass-3").role is Role.OPERATOR


# --------------------------------------------------------------------------- server
def _serve(tmp):
    users = _users(tmp / "users.json")
    port = free_port()
    cmd = [sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db", str(tmp / "store.duckdb"),
           "--library", str(tmp / "library"), "--port", str(port), "--users", str(users)]
    proc, url = start_process(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=90)
    routes = re.search(r"routes: (.*)", (tmp / "server.log").read_text()).group(1).split()
    return proc, {"url": url, "port": port, "routes": routes,
                  "audit": tmp / "library" / "audit.jsonl", "log": tmp / "server.log",
                  "token": urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    proc, info = _serve(tmp_path_factory.mktemp("auth-server"))
    yield info
    stop_process(proc)


@pytest.fixture
def served_fresh(tmp_path):
    """A server of its own: the throttle counts failures per client address."""
    proc, info = _serve(tmp_path)
    yield info
    stop_process(proc)


_fetch = fetch


#: routes that serve files anyone may have (Bokeh's and Panel's JavaScript and CSS)
ASSETS = ("/static/", "/components/", "/favicon.ico")


def _concrete(pattern: str) -> str:
    return re.sub(r"\(\?!.*?\)", "", pattern).replace("(.*)", "x").rstrip("$").replace("?", "")


def test_every_route_refuses_an_unauthenticated_request(served):
    base = f"http://127.0.0.1:{served['port']}"
    assert "/ws$" in served["routes"] and "/?$" in served["routes"]
    checked = []
    for pattern in served["routes"]:
        path = _concrete(pattern) or "/"
        if path.startswith(ASSETS) or path in ("/login", "/logout"):
            continue
        for query in ("", "?token=wrong", "?bokeh-autoload-element=x&bokeh-absolute-url=" + base):
            r = _fetch(base + path + query)
            to = urllib.parse.urlparse(r.headers.get("Location", "")).path
            ok = r.code in (401, 403) or (r.code == 302 and to in ("/login", "./login"))
            # Bokeh's autoload answers 400 to a request without its element parameter
            # before anything else runs (no app); with the parameter it is refused above
            ok = ok or (path == "/autoload.js" and "autoload-element" not in query
                        and r.code == 400 and b"bokeh-autoload-element" in r.body)
            assert ok, (path + query, r.code, r.body[:200])
            assert b"Divergence Workbench serving" not in (r.body or b"")
        checked.append(path)
    assert {"/", "/ws", "/metadata", "/autoload.js"} <= set(checked)
    # the token opens the app (the same request with it is not refused)
    r = _fetch(f"{base}/?token={served['token']}")
    assert r.code == 200 and b"bokeh" in r.body.lower()
    assert "user=" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def _login(base, name, password, ip_header=None):
    body = urllib.parse.urlencode({"username": name, "password": password})
    return _fetch(base + "/login?next=/", method="POST", body=body)


def test_password_login_throttle_and_audit(served_fresh):
    served = served_fresh
    base = f"http://127.0.0.1:{served['port']}"
    page = _fetch(base + "/login")
    assert page.code == 200 and b'name="password"' in page.body and b"<script" not in page.body
    ok = _login(base, "vera", PASSWORDS["vera"])
    assert ok.code == 302 and ok.headers["Location"] == "/"
    cookie = ok.headers["Set-Cookie"].split(";")[0]
    assert _fetch(base + "/", headers={"Cookie": cookie}).code == 200
    codes = [_login(base, "vera", f"wrong-{i}").code for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert _login(base, "vera", PASSWORDS["vera"]).code == 429  # locked, even when right
    recs = read_audit(served["audit"])
    assert verify_audit(served["audit"]).ok
    logins = [r for r in recs if r.action.startswith("login.")]
    assert [r.action for r in logins].count("login.failed") == 6
    good = [r for r in logins if r.action == "login.succeeded"]
    assert good and good[0].actor == "vera" and good[0].details["role"] == "viewer"
    # the URL printed for the person who started the server carries the token (its
    # purpose); no log line or record does
    printed = re.compile(r"^Divergence Workbench serving .*$", re.M)
    text = served["audit"].read_text() + printed.sub("", served["log"].read_text())
    for secret in (*PASSWORDS.values(), served["token"], *[f"wrong-{i}" for i in range(6)]):
        assert secret not in text


def _ws(port, origin, cookie=None):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.ioloop import IOLoop
    from tornado.websocket import websocket_connect

    headers = {"Origin": origin, **({"Cookie": cookie} if cookie else {})}

    async def go():
        try:
            conn = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/ws",
                                                       headers=headers, request_timeout=30))
        except HTTPClientError as exc:
            return exc.code
        conn.close()
        return 101
    return off_loop(lambda: IOLoop(make_current=False).run_sync(go))


def test_websocket_from_a_foreign_origin_is_refused(served):
    port = served["port"]
    r = _fetch(f"http://127.0.0.1:{port}/?token={served['token']}")
    cookie = r.headers["Set-Cookie"].split(";")[0]
    for origin in (f"http://evil.example:{port}", f"http://127.0.0.1:{port}.attacker.tld",
                   f"http://allowed.host.attacker.tld:{port}", "null",
                   f"http://localhost.attacker.tld:{port}"):
        assert _ws(port, origin, cookie) == 403, origin
    assert _ws(port, f"http://127.0.0.1:{port}") != 101  # right origin, no cookie: refused
    # the right origin with the session cookie gets past both checks (Bokeh then
    # wants its session token, a 101 or a later close, never the 403 above)
    assert _ws(port, f"http://127.0.0.1:{port}", cookie) != 403


def test_websocket_origins_are_exact_hosts():
    import socket

    from workbench.ui.app import _origins

    assert _origins("127.0.0.1", 8080, []) == ["127.0.0.1:8080", "localhost:8080"]
    every = _origins("0.0.0.0", 8080, ["proxy.example.com:443"])
    assert f"{socket.gethostname()}:8080" in every and "proxy.example.com:443" in every
    assert not [o for o in every if "*" in o or o.startswith("0.0.0.0")]
