"""The web side of serving: Bokeh's auth provider, the login/logout handlers, and the
hook refusing models a page adds to its own document.

The rules (who is who, tokens, passwords, throttling, what is audited) live in
:mod:`workbench.governance.auth` and :mod:`workbench.governance.policy`, which import no
UI or web library (architecture.md: bokeh, panel and tornado only under ``workbench/ui/``).
"""
from __future__ import annotations

import logging

from ..governance.auth import COOKIE, COOKIE_DAYS, ServeAuth, login_page
from ..governance.policy import Identity

__all__ = ["auth_provider", "oauth_providers", "refuse_client_models"]

log = logging.getLogger("workbench.ui")


def oauth_providers() -> list[str]:
    """Panel's OAuth providers (its password, PAM and code-challenge handlers are not
    OAuth logins and are left out: ``--users`` is the workbench's password login)."""
    from panel.auth import AUTH_PROVIDERS

    return sorted(set(AUTH_PROVIDERS) - {"password", "pam", "auth_code"})


def auth_provider(auth: ServeAuth):
    """A Bokeh ``AuthProvider`` enforcing ``auth`` (its rules live in governance/auth.py)."""
    from bokeh.server.auth_provider import AuthProvider

    login, logout = _handlers(auth)

    class Provider(AuthProvider):
        @property
        def get_user(self):
            return auth._get_user

        @property
        def login_url(self):
            return "/login"

        @property
        def login_handler(self):
            return login

        @property
        def logout_url(self):
            return "/logout"

        @property
        def logout_handler(self):
            return logout

    return Provider()


def _handlers(auth: ServeAuth):
    """The ``/login`` and ``/logout`` request handlers of ``auth``."""
    from tornado.web import RequestHandler

    class Login(RequestHandler):
        def get(self):
            if self.get_argument("token", None) is not None and auth._get_user(self):
                return self.redirect(_next(self))
            self._page()

        def post(self):
            ip = self.request.remote_ip or "?"
            if auth.throttle.locked(ip):
                return self._page("Too many failed logins; try again in 30 seconds.", 429)
            name = self.get_body_argument("username", "").strip()
            password = self.get_body_argument("password", "")
            token = self.get_body_argument("token", "")
            who = None
            if token:
                if auth.token_ok(token):
                    who, method = Identity(auth.owner, auth.token_role, "token"), "token"
                else:
                    method = "token"
            else:
                method = "password"
                if auth.users is not None and name and password:
                    who = auth.users.verify(name, password)
            if who is None:
                locked = auth.throttle.fail(ip)
                auth.record("login.failed", "anonymous", method=method, ip=ip,
                            **({"name": name} if name and method == "password" else {}))
                if locked:
                    return self._page("Too many failed logins; try again in 30 seconds.", 429)
                return self._page("Wrong name, password or token.", 401)
            self.set_secure_cookie(COOKIE, f"{who.source}:{who.name}", expires_days=COOKIE_DAYS,
                                   httponly=True, samesite="Strict")
            auth.record("login.succeeded", who.name, method=method, ip=ip, role=who.role.value)
            self.redirect(_next(self))

        def _page(self, error: str = "", status: int = 200):
            self.set_status(status)
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src "
                            "'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
            self.set_header("X-Frame-Options", "DENY")
            self.finish(login_page(error, password=auth.users is not None,
                                   token=auth.token is not None, next_url=_next(self)))

    class Logout(RequestHandler):
        def get(self):
            self.clear_cookie(COOKIE)
            self.redirect("/login")

    return Login, Logout


def _next(handler) -> str:
    """Where to go after logging in: a local path only (no open redirect)."""
    nxt = handler.get_argument("next", "/")
    return nxt if nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt else "/"


def refuse_client_models(doc, identity, audit) -> None:
    """Refuse models a page adds to its own served document, and audit each attempt.

    A Panel page never adds a root to its document from the browser; a model that
    arrives that way (a forged ``Button`` to click, any widget the role was not
    given) is removed at once and written to the audit log as ``access.denied``
    with the identity and the model's type. Events on models the document does not
    hold are refused by Bokeh itself (the reference does not resolve), and audited too
    (:func:`_audit_refused_messages`).
    """
    from bokeh.document.events import RootAddedEvent

    from ..governance.audit import append_audit

    def on_change(event):
        if not isinstance(event, RootAddedEvent) or event.setter is None:
            return  # the server's own changes
        model = event.model
        label = str(getattr(model, "label", "") or "")
        append_audit(audit, "access.denied", actor=identity.name, subject=label[:80],
                     details={"action": "add_model", "model": type(model).__name__,
                              "role": identity.role.value, "source": identity.source})
        log.warning("refused: %s (%s) added a %s to its page", identity.name,
                    identity.role.value, type(model).__name__)
        doc.add_next_tick_callback(lambda: doc.remove_root(model)
                                   if model in doc.roots else None)

    doc.on_change(on_change)
    doc.add_next_tick_callback(lambda: _audit_refused_messages(doc, identity, audit))


def _audit_refused_messages(doc, identity, audit) -> None:
    """Audit what Bokeh refuses from this page: a patch or an event naming a model the
    session does not hold (a fabricated id, or a control of another session such as an
    operator's launch button) fails to decode and is answered with an error; each such
    message is also one ``access.denied`` record with the identity (then refused as
    before). Runs once the session exists (the first tick of the document)."""
    session = getattr(doc.session_context, "_session", None)
    if session is None or getattr(session, "_wb_audited", False):
        return
    from ..governance.audit import append_audit

    handle = session._handle_patch  # a coroutine function (Bokeh's document lock)

    async def audited(message, connection):
        try:
            return await handle(message, connection)
        except Exception as exc:
            append_audit(audit, "access.denied", actor=identity.name, subject="",
                         details={"action": "patch", "refused": type(exc).__name__,
                                  "role": identity.role.value, "source": identity.source})
            log.warning("refused: a message of %s (%s): %s", identity.name,
                        identity.role.value, type(exc).__name__)
            raise
    session._handle_patch = audited
    session._wb_audited = True
