"""OAuth login (``serve --oauth-provider``): what can be tested without a provider.

No OAuth provider is reachable from this machine, so nothing here logs anybody in
through one, and no provider is faked. What is tested, for real:

* the refusal rules of the configuration (unknown provider, no client id or secret, a
  generic provider without its endpoints, an endpoint over plain HTTP to another
  machine), through :func:`check_oauth_config` and through ``workbench serve`` (exit 2,
  nothing stored);
* the real server (``python -m workbench.ui.app --oauth-provider generic``, Panel's own
  OAuth handler) refusing every route without a login, sending ``/login`` to the
  provider's authorize URL with the client id, the callback URL and a random ``state``
  also set in a cookie; and refusing a callback whose ``state`` is not the cookie's
  (or that comes with no cookie) before any code is exchanged.

Not tested: the exchange of a code for a token at the provider, the user the
provider returns, and the role that user gets (roles from ``--users``, viewer
otherwise): these need a provider.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from workbench.errors import UsageError
from workbench.governance.auth import check_oauth_config
from workbench.ui.harness import free_port, start_process, stop_process

from .test_auth import ASSETS, _concrete, _fetch

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "sample_data" / "demo"
KNOWN = ["github", "google", "generic", "okta"]
KEYS = {"PANEL_OAUTH_KEY": "wb-test-client", "PANEL_OAUTH_SECRET": "wb-test-secret-0123456789"}


@pytest.mark.parametrize("provider, env, match", [
    ("gitbub", KEYS, "'gitbub' is not a provider; expected one of generic, github"),
    ("github", {}, "needs PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET"),
    ("github", {"PANEL_OAUTH_KEY": "x", "PANEL_OAUTH_SECRET": " "}, "needs PANEL_OAUTH_SECRET "),
    ("generic", KEYS, "needs PANEL_OAUTH_AUTHORIZE_URL, PANEL_OAUTH_TOKEN_URL"),
    ("generic", {**KEYS, "PANEL_OAUTH_AUTHORIZE_URL": "http://idp.example.org/auth",
                 "PANEL_OAUTH_TOKEN_URL": "https://idp.example.org/token"},
     "plain http to another machine"),
    ("generic", {**KEYS, "PANEL_OAUTH_AUTHORIZE_URL": "ftp://idp.example.org/auth",
                 "PANEL_OAUTH_TOKEN_URL": "https://idp.example.org/token"},
     "expected an http\\(s\\) URL"),
])
def test_oauth_configurations_that_cannot_work_are_refused(provider, env, match):
    with pytest.raises(UsageError, match=match):
        check_oauth_config(provider, known=KNOWN, env=env)


def test_oauth_configurations_that_can_work_pass():
    check_oauth_config("github", known=KNOWN, env=KEYS)
    check_oauth_config("generic", known=KNOWN, env={
        **KEYS, "PANEL_OAUTH_AUTHORIZE_URL": "https://idp.example.org/auth",
        "PANEL_OAUTH_TOKEN_URL": "http://127.0.0.1:9/token"})  # loopback http is allowed


@pytest.mark.parametrize("provider, env, expect", [
    ("nosuch", KEYS, "is not a provider; expected one of"),
    ("github", {}, "needs PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET"),
])
def test_serve_refuses_a_broken_oauth_login_with_exit_2(tmp_path, provider, env, expect):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PANEL_OAUTH")}
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "serve", str(DEMO),
                        "--address", "0.0.0.0", "--oauth-provider", provider,
                        "--db", str(tmp_path / "s.duckdb")], capture_output=True, text=True,
                       timeout=120, env={**clean, **env})
    assert r.returncode == 2, r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.duckdb").exists()


# --------------------------------------------------------------------------- server
@pytest.fixture(scope="module")
def oauth_server(tmp_path_factory):
    """The real server with Panel's generic OAuth handler; the provider's endpoints are
    on a loopback port where nothing listens (nothing here reaches them)."""
    tmp = tmp_path_factory.mktemp("oauth-server")
    nowhere = free_port()
    env = {**os.environ, **KEYS, "PYTHONUNBUFFERED": "1",
           "PANEL_OAUTH_AUTHORIZE_URL": f"http://127.0.0.1:{nowhere}/authorize",
           "PANEL_OAUTH_TOKEN_URL": f"http://127.0.0.1:{nowhere}/token"}
    port = free_port()
    cmd = [sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db",
           str(tmp / "store.duckdb"), "--library", str(tmp / "library"), "--port", str(port),
           "--oauth-provider", "generic"]
    proc, url = start_process(cmd, env=env, ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=90)
    routes = re.search(r"routes: (.*)", (tmp / "server.log").read_text()).group(1).split()
    yield {"url": url, "port": port, "routes": routes, "authorize": env[
        "PANEL_OAUTH_AUTHORIZE_URL"], "log": tmp / "server.log"}
    stop_process(proc)


def _state_cookie(resp) -> str:
    cookies = resp.headers.get_list("Set-Cookie")
    found = [c.split(";")[0].split("=", 1)[1] for c in cookies
             if c.startswith("panel-oauth-state=")]
    assert found, cookies
    return found[0]


def test_oauth_server_refuses_every_route_without_a_login(oauth_server):
    base = f"http://127.0.0.1:{oauth_server['port']}"
    assert "token=" not in oauth_server["url"]  # OAuth replaces the token login
    checked = []
    for pattern in oauth_server["routes"]:
        path = _concrete(pattern) or "/"
        if path.startswith(ASSETS) or path in ("/login", "/logout"):
            continue
        r = _fetch(base + path)
        to = urllib.parse.urlparse(r.headers.get("Location", "")).path
        ok = r.code in (401, 403) or (r.code == 302 and to.endswith("login"))
        ok = ok or (path == "/autoload.js" and r.code == 400)  # no element: refused first
        assert ok, (path, r.code, r.body[:200])
        assert b"Divergence Workbench serving" not in (r.body or b"")
        checked.append(path)
    assert {"/", "/ws"} <= set(checked)


def test_login_redirects_to_the_provider_with_a_state_and_a_wrong_state_is_refused(
        oauth_server):
    base = f"http://127.0.0.1:{oauth_server['port']}"
    r = _fetch(base + "/login")
    assert r.code == 302, (r.code, r.body[:200])
    loc = urllib.parse.urlparse(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == oauth_server["authorize"]
    q = urllib.parse.parse_qs(loc.query)
    assert q["client_id"] == [KEYS["PANEL_OAUTH_KEY"]]
    assert q["redirect_uri"][0].startswith(base) and q["response_type"] == ["code"]
    state = q["state"][0]
    decoded = json.loads(base64.urlsafe_b64decode(state + "=" * (-len(state) % 4)))
    assert len(decoded["state_id"]) == 32  # random per login (uuid4 hex)
    assert KEYS["PANEL_OAUTH_SECRET"] not in r.headers["Location"]
    cookie = _state_cookie(r)
    again = urllib.parse.parse_qs(urllib.parse.urlparse(
        _fetch(base + "/login").headers["Location"]).query)["state"][0]
    assert again != state  # a new state each time

    # the provider's callback with the state of another login, with this browser's cookie
    forged = base64.urlsafe_b64encode(json.dumps(
        {"state_id": "0" * 32, "next_url": "/"}).encode()).decode()
    for st, headers in ((forged, {"Cookie": f"panel-oauth-state={cookie}"}),
                        (again, {"Cookie": f"panel-oauth-state={cookie}"}),
                        (state, {})):  # the right state but no cookie: another browser
        r = _fetch(f"{base}/login?code=stolen-code&state={urllib.parse.quote(st)}",
                   headers=headers)
        assert r.code == 401 and b"state mismatch" in r.body.lower(), (r.code, r.body[:300])
        assert "Set-Cookie" not in r.headers or "user=" not in r.headers["Set-Cookie"]
    # nothing was sent to the provider: no call to its token URL so far
    log_before = oauth_server["log"].read_text()
    # the positive control: the right state with its cookie passes the check and goes on
    # to exchange the code at the provider's token URL (where nothing listens)
    r = _fetch(f"{base}/login?code=a-code&state={urllib.parse.quote(state)}",
               headers={"Cookie": f"panel-oauth-state={cookie}"})
    assert b"state mismatch" not in (r.body or b"").lower() and r.code != 200
    assert "user=" not in (r.headers.get("Set-Cookie") or "")
    new_log = oauth_server["log"].read_text()[len(log_before):]
    assert "state mismatch" not in new_log.lower()
    assert "state mismatch" in log_before.lower()  # the three refusals, as Panel logged them
