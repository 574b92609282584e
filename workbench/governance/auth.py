"""Who is asking: authentication of the served workbench, on by default.

The Jupyter way (Jupyter Server's token authentication): ``workbench serve``
draws a random token, prints a URL carrying it, and refuses every request
without it (or without the signed session cookie the token buys). A password
login is the option for people other than the one who started the server:
passwords are stored as argon2id hashes (Biryukov, Dinu and Khovratovich,
"Argon2: the memory-hard function for password hashing", RFC 9106), checked
with the library's constant-time verification, and a client whose sixth
failure falls within 60 seconds is answered ``429`` for 30 seconds (a
fixed-window throttle in the manner of OWASP's authentication guidance).

A token in a URL leaks through shared links and proxy logs, so on an address
other than the loopback :func:`check_serve_config` refuses to start unless a
password file (or OAuth through Panel's providers) is configured; it also
refuses a cookie secret under 32 bytes and ``*`` in the websocket origin
allow-list. Every login, good or bad, is one audit record (never the token or
the password).

The pieces plug into Bokeh's server through its ``AuthProvider`` hooks
(``get_user``, ``login_url``, ``login_handler``): Bokeh's document, metadata,
autoload and websocket handlers are all ``@authenticated`` with them.
"""
from __future__ import annotations

import hmac
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .policy import Identity, Role

__all__ = ["UserFile", "Throttle", "ServeAuth", "check_serve_config", "new_token",
           "is_loopback", "MIN_SECRET_BYTES"]

#: the shortest cookie secret accepted (bytes)
MIN_SECRET_BYTES = 32
#: the signed cookie holding ``source:name``
COOKIE = "user"
#: days a session cookie stays valid
COOKIE_DAYS = 1


def new_token() -> str:
    """A random URL-safe token (256 bits)."""
    return secrets.token_urlsafe(32)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP or ``localhost``) only accepts local connections."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class RedactToken(logging.Filter):
    """Blank ``token=...`` in log records (Tornado's access log prints request URIs)."""

    _TOKEN = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str)
                                else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._TOKEN.sub(r"\1[redacted]", record.msg)
        return True


def redact_logs() -> None:
    """Keep tokens out of the server's logs (the access log and the server's own)."""
    for name in ("tornado.access", "tornado.application", "tornado.general", "bokeh"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactToken) for f in lg.filters):
            lg.addFilter(RedactToken())


# --------------------------------------------------------------------------- users
class UserFile:
    """A JSON file of users: ``{"users": {NAME: {"role": ROLE, "hash": ARGON2}}}``.

    Written by ``workbench users add FILE NAME --role ROLE`` (the password is
    read from the terminal or standard input, never from the command line).
    An OAuth user needs no ``hash``: the entry only gives the role.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._users = self._read()
        from argon2 import PasswordHasher
        self._hasher = PasswordHasher()
        # verified when the name is unknown, so an unknown name costs as long as a known one
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def _read(self) -> dict:
        if not self.path.is_file():
            raise UsageError(f"{self.path}: no such users file; create it with "
                             f"`workbench users add {self.path} NAME --role viewer`")
        try:
            users = json.loads(self.path.read_text(encoding="utf-8")).get("users", {})
            for name, u in users.items():
                Role(u["role"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{self.path}: not a users file (expected {{\"users\": {{NAME: "
                             f"{{\"role\": one of {', '.join(r.value for r in Role)}, "
                             f"\"hash\": ...}}}}}}): {type(exc).__name__}") from None
        return users

    def role(self, name: str) -> Role | None:
        u = self._users.get(name)
        return Role(u["role"]) if u else None

    def verify(self, name: str, password: str) -> Identity | None:
        """The identity when ``password`` is ``name``'s, else None (constant time)."""
        from argon2.exceptions import Argon2Error, InvalidHashError

        u = self._users.get(name)
        stored = (u or {}).get("hash") or self._dummy
        try:
            ok = self._hasher.verify(stored, password)
        except (Argon2Error, InvalidHashError):
            ok = False
        if not ok or u is None or not u.get("hash"):
            return None
        return Identity(name, Role(u["role"]), source="password")

    @staticmethod
    def add(path: str | Path, name: str, role: Role | str, password: str | None) -> None:
        """Add or replace ``name`` in the users file at ``path`` (created if missing)."""
        from argon2 import PasswordHasher

        if not name or ":" in name or name != name.strip():
            raise UsageError(f"user name {name!r}: expected a non-empty name without ':' "
                             "or surrounding spaces")
        if password is not None and len(password) < 8:
            raise UsageError("password: expected at least 8 characters")
        path = Path(path)
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        entry = {"role": Role(role).value}
        if password is not None:
            entry["hash"] = PasswordHasher().hash(password)
        data.setdefault("users", {})[name] = entry
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


# --------------------------------------------------------------------------- throttle
class Throttle:
    """Failures per client: the ``limit``-th within ``window`` s locks it for ``lock`` s."""

    def __init__(self, limit: int = 6, window: float = 60.0, lock: float = 30.0,
                 clock=time.monotonic):
        self.limit, self.window, self.lock, self.clock = limit, window, lock, clock
        self._fails: dict[str, deque] = {}
        self._until: dict[str, float] = {}
        self._mutex = threading.Lock()

    def locked(self, key: str) -> bool:
        with self._mutex:
            return self._until.get(key, 0.0) > self.clock()

    def fail(self, key: str) -> bool:
        """Record a failure; True when it locks the client out (answer 429)."""
        now = self.clock()
        with self._mutex:
            q = self._fails.setdefault(key, deque())
            q.append(now)
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                q.clear()
                self._until[key] = now + self.lock
                return True
            return False


# --------------------------------------------------------------------------- config
#: what an OAuth login needs beyond its provider's name (``PANEL_OAUTH_*`` are Panel's own)
OAUTH_ENV = ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET")
OAUTH_GENERIC_ENV = ("PANEL_OAUTH_AUTHORIZE_URL", "PANEL_OAUTH_TOKEN_URL")


def check_oauth_config(provider: str, *, known: list[str] | None = None,
                       env: dict | None = None) -> None:
    """Refuse an OAuth login that cannot work or would leak: an unknown provider, no
    client key or secret, a generic provider without its endpoints, or an endpoint over
    plain HTTP to another machine (the code and the token would cross the network in
    clear).

    Parameters
    ----------
    provider:
        The provider's name (``github``, ``google``, ``generic``...).
    known:
        The names the web layer offers (Panel's providers); None skips that check.
    env:
        The environment (default ``os.environ``).

    Raises :class:`~workbench.errors.UsageError` (exit 2) saying what to set.
    """
    env = os.environ if env is None else env
    if known is not None and provider not in known:
        raise UsageError(f"serve: --oauth-provider {provider!r} is not a provider; expected one "
                         f"of {', '.join(sorted(known))}")
    need = [*OAUTH_ENV, *(OAUTH_GENERIC_ENV if provider == "generic" else ())]
    missing = [v for v in need if not str(env.get(v) or "").strip()]
    if missing:
        raise UsageError(f"serve: --oauth-provider {provider} needs {', '.join(missing)} in the "
                         "environment (the client id and secret your provider issued"
                         + (", and its authorize and token URLs" if provider == "generic"
                            else "") + ")")
    for v in ("PANEL_OAUTH_AUTHORIZE_URL", "PANEL_OAUTH_TOKEN_URL", "PANEL_OAUTH_USER_URL"):
        url = str(env.get(v) or "")
        m = re.match(r"^(https?)://\[?([^/:\]]+)", url)
        if url and m is None:
            raise UsageError(f"serve: {v}={url!r}: expected an http(s) URL")
        if url and m.group(1) == "http" and not is_loopback(m.group(2)):
            raise UsageError(f"serve: {v}={url!r}: plain http to another machine would send "
                             "the login's code and token in clear; use https")


def check_serve_config(address: str, *, users: str | None, oauth: str | None,
                       cookie_secret: str | None, origins: list[str],
                       oauth_providers: list[str] | None = None) -> None:
    """Refuse a serving configuration that would expose the workbench.

    ``oauth_providers`` lists the OAuth providers the web layer offers (see
    :func:`check_oauth_config`). Raises :class:`~workbench.errors.UsageError` (exit 2)
    with how to fix it.
    """
    if oauth:
        check_oauth_config(oauth, known=oauth_providers)
    if not is_loopback(address) and not (users or oauth):
        raise UsageError(
            f"serve: refusing to listen on {address} with only a token (a token in a URL "
            "leaks through shared links and proxy logs). Configure a login: "
            "`workbench users add users.json NAME --role analyst`, then "
            "`workbench serve ... --address " + address + " --users users.json` "
            "(or --oauth-provider NAME with PANEL_OAUTH_KEY/PANEL_OAUTH_SECRET set).")
    if cookie_secret is not None and len(cookie_secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise UsageError(f"serve: the cookie secret is {len(cookie_secret.encode('utf-8'))} "
                         f"bytes; expected at least {MIN_SECRET_BYTES} (e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    bad = [o for o in origins if "*" in o]
    if bad:
        raise UsageError(f"serve: websocket origin {bad[0]!r}: wildcards are refused; list "
                         "each HOST:PORT the page is reached at")


@dataclass
class ServeAuth:
    """The authentication of one served workbench.

    Parameters
    ----------
    token:
        The token printed in the URL (None: no token login).
    owner:
        Name the token holder acts as (the OS user who started the server).
    users:
        A :class:`UserFile` for password logins (None: none).
    audit:
        Audit log path for login records (None: not recorded).
    token_role:
        Role of the token holder (default admin: whoever started the server).
    """

    token: str | None
    owner: str
    users: UserFile | None = None
    audit: str | Path | None = None
    token_role: Role = Role.ADMIN
    throttle: Throttle = field(default_factory=Throttle)

    # ------------------------------------------------------------ identities
    def identity(self, user: str | None) -> Identity | None:
        """The identity behind a session cookie value ``source:name`` (None: refused)."""
        if not user or ":" not in user:
            return None
        source, name = user.split(":", 1)
        if source == "token" and self.token and name == self.owner:
            return Identity(name, self.token_role, source="token")
        if source in ("password", "oauth") and self.users is not None:
            role = self.users.role(name)
            if role is not None:
                return Identity(name, role, source=source)
        if source == "oauth":
            return Identity(name, Role.VIEWER, source="oauth")
        return None

    def token_ok(self, given: str | None) -> bool:
        return bool(self.token and given) and hmac.compare_digest(
            given.encode("utf-8"), self.token.encode("utf-8"))

    def record(self, action: str, actor: str, **details) -> None:
        """One audit record (never a secret: callers pass names, methods and addresses)."""
        if self.audit is None:
            return
        from .audit import append_audit
        Path(self.audit).parent.mkdir(parents=True, exist_ok=True)
        append_audit(self.audit, action, actor=actor, subject="serve", details=details)

    def _get_user(self, handler) -> str | None:
        """Bokeh's ``get_user`` (wired in :mod:`workbench.ui.auth_web`; ``handler`` is the
        request handler, duck-typed so that this module imports no web framework): the signed cookie, or a correct ``?token=`` (sets it)."""
        raw = handler.get_secure_cookie(COOKIE, max_age_days=COOKIE_DAYS)
        user = raw.decode("utf-8") if raw else None
        if self.identity(user) is not None:
            return user
        given = handler.get_argument("token", None) if hasattr(handler, "get_argument") else None
        if given is None:
            return None
        ip = handler.request.remote_ip or "?"
        if self.throttle.locked(ip):
            return None
        if self.token_ok(given):
            user = f"token:{self.owner}"
            handler.set_secure_cookie(COOKIE, user, expires_days=COOKIE_DAYS, httponly=True,
                                      samesite="Strict")
            self.record("login.succeeded", self.owner, method="token", ip=ip)
            return user
        self.throttle.fail(ip)
        self.record("login.failed", "anonymous", method="token", ip=ip)
        return None


def login_page(error: str = "", *, password: bool = True, token: bool = True,
               next_url: str = "/") -> str:
    """The login form (no script; every value escaped)."""
    e = html.escape
    fields = []
    if password:
        fields.append('<label>Name <input name="username" autocomplete="username" autofocus>'
                      '</label><label>Password <input name="password" type="password" '
                      'autocomplete="current-password"></label>')
    if token:
        fields.append('<label>Token <input name="token" type="password" '
                      'autocomplete="off"></label><p class="hint">The token is in the URL '
                      '<code>workbench serve</code> printed.</p>')
    err = f'<p class="err" role="alert">{e(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Divergence Workbench: log in</title><style>
body{{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}}
form{{max-width:340px;margin:12vh auto;background:#fff;padding:28px 32px;border-radius:8px;
box-shadow:0 1px 4px #0002}} h1{{font-size:20px;margin:0 0 16px}}
label{{display:block;margin:10px 0;font-size:14px;color:#374151}}
input{{display:block;width:100%;box-sizing:border-box;padding:7px;margin-top:4px;
border:1px solid #d1d5db;border-radius:4px}} button{{margin-top:14px;padding:8px 18px;
background:#2563eb;color:#fff;border:0;border-radius:4px;font-size:14px}}
.err{{color:#b91c1c;font-size:14px}} .hint{{color:#6b7280;font-size:12px}}</style></head>
<body><form method="post" action="/login?next={e(next_url)}"><h1>Divergence Workbench</h1>
{err}{''.join(fields)}<button type="submit">Log in</button></form></body></html>"""
