"""The served workbench: ``workbench serve PASSPORT`` or ``python -m workbench.ui.app PASSPORT``.

:class:`WorkbenchApp` investigates once per metric and shares the result (and
its caches and replay snapshots) with every browser session; each session gets
its own :class:`~workbench.ui.state.WorkbenchState` (its own slice, hypothesis,
replay position). The first investigation starts when the server starts, so a
session opened a few seconds later finds the answer ready; one opened earlier
shows the progress bar until it is.

The server is Panel's (Bokeh's) Tornado server, bound to 127.0.0.1 by default;
the URL is printed on standard output once it listens.
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

__all__ = ["WorkbenchApp", "serve", "main", "run", "free_port"]

log = logging.getLogger("workbench.ui")
#: ``pn.extension`` called once for the whole served process (``serve``): called in each
#: session it was about 0.03 CPU s of every session's build, to set the same options
_EXTENSION_LOADED = False


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class WorkbenchApp:
    """Shared, per-metric investigations behind every session of a served workbench.

    Parameters
    ----------
    passport:
        Passport directory (its store defaults to ``PASSPORT/.workbench/store.duckdb``).
    db:
        A store; alone, the passport directory it was ingested from is used.
    metric:
        Metric shown first (default: the first of the manifest).
    library:
        Library of investigations (decisions, past investigations).
    """

    def __init__(self, passport: str | None = None, *, db: str | None = None,
                 metric: str | None = None, library: str | None = None):
        from ..errors import UsageError

        if passport is None and db is None:
            raise UsageError("serve: give a passport directory or --db PATH")
        self.passport = str(Path(passport).resolve()) if passport else None
        self.db = str(Path(db).resolve()) if db else None
        if self.passport is None:
            self.passport, first_metric = self._from_store(self.db)
            metric = metric or first_metric
        if self.db is None:
            from ..investigation import default_db
            self.db = str(default_db(self.passport))
        if metric is None:
            from ..passport import load_passport
            metric = next(iter(load_passport(self.passport).manifest.metrics))
        self.metric = metric
        self.library = library
        self._futures: dict[str, Future] = {}
        self._messages: dict[str, str] = {}
        self._lock = threading.Lock()
        #: the served authentication (``serve`` sets it; None: the local user, unserved)
        self.auth = None
        self._masked: WorkbenchApp | None = None
        #: smallest count shown to roles without ``view_unmasked`` (None: the default, 11)
        self.suppress_k: int | None = None

    @staticmethod
    def _from_store(db: str) -> tuple[str, str]:
        from ..errors import UsageError
        from ..store import Store

        with Store(db, read_only=True) as st:
            sp = st.passport()
        if not sp.directory or not Path(sp.directory).is_dir():
            raise UsageError(f"{db}: the passport it holds was ingested from "
                             f"{sp.directory!r}, which is not available; pass the passport "
                             "directory too")
        return sp.directory, next(iter(sp.manifest.metrics))

    # ------------------------------------------------------------------ investigations
    def live(self, metric: str, progress: Callable[[str], None] | None = None):
        """The investigation of ``metric`` (computed once; later callers wait for it)."""
        with self._lock:
            fut = self._futures.get(metric)
            owner = fut is None
            if owner:
                fut = self._futures[metric] = Future()
        if owner:
            try:
                from .state import WorkbenchState

                def say(msg):
                    self._messages[metric] = msg
                    if progress is not None:
                        progress(msg)
                fut.set_result(WorkbenchState._investigate(self.passport, self.db, metric, say))
            except BaseException as exc:
                with self._lock:
                    self._futures.pop(metric, None)  # let the next session try again
                fut.set_exception(exc)
            return fut.result()
        last = None
        while not fut.done():
            msg = self._messages.get(metric)
            if progress is not None and msg and msg != last:
                progress(msg)
                last = msg
            time.sleep(0.1)
        return fut.result()

    def warm(self, *, replay: bool = False) -> None:
        """Start the first investigation now, on a thread, so the first page is quick.

        With ``replay``, the replay steps are computed next (in the replay child
        process, one step at a time). Off by default: each step is a whole
        investigation (about 25 s of CPU on 10M rows), and on a two-core machine
        computing them while people click slices slowed every click (10M rows:
        p50 1.63 s without, 1.88 s with). A session starts them when its replay is
        first used (step or play), nearest step first.
        """
        def run():
            t0 = time.perf_counter()
            try:
                live = self.live(self.metric)
                self.prepare(live)
            except Exception as exc:  # the session will show it in its alert
                log.error("investigation of %s failed: %s", self.metric, exc)
                return
            log.info("investigation of %s ready in %.1f s", self.metric,
                     time.perf_counter() - t0)
            if replay:
                from .state import _REPLAY_POOL
                try:
                    live.replay().start(_REPLAY_POOL)
                except Exception as exc:  # replay is optional: no passport, no replay
                    log.info("replay not precomputed: %s", exc)
        threading.Thread(target=run, name="workbench-warm", daemon=True).start()

    def prepare(self, live) -> None:
        """Compute once what every session's first page derives from ``live``.

        The slice list, the selector's values per dimension, the comparison's
        values and the replay steps are cached on the shared data; computed here,
        the first sessions find them ready instead of computing them on the event
        loop (with a 1M-value dimension: about 3.6 s, once).
        """
        from .state import WorkbenchState

        state = WorkbenchState(passport=self.passport, db=self.db, library=self.library)
        state._set_metrics(live, live.metric)
        state._set_live(live)
        for d in live.dimensions:
            live.values(d, limit=8)
        # What is built so far (modules, the investigation, these caches) lives as long
        # as the server: out of the collector's reach, each session's collections only
        # walk the session's own objects (about a tenth less CPU a session build).
        import gc
        gc.collect()
        gc.freeze()

    def ready(self, metric: str) -> bool:
        fut = self._futures.get(metric)
        return fut is not None and fut.done() and fut.exception() is None

    # ------------------------------------------------------------------ sessions
    def identity(self):
        """Who this session is (the authenticated user; the OS user when not served)."""
        import panel as pn

        from ..governance.policy import local_identity

        if self.auth is None:
            return local_identity()
        user = pn.state.user
        if user and ":" not in user:  # Panel's OAuth provider: the bare login name
            user = f"oauth:{user}"
        if user is None:  # the token's first request: its cookie is only being set
            given = (pn.state.session_args.get("token") or [b""])[0]
            if self.auth.token_ok(given.decode("utf-8", "replace")):
                user = f"token:{self.auth.owner}"
        return self.auth.identity(user)

    def masked(self) -> "WorkbenchApp":
        """The same workbench over a pseudonymised copy of the passport
        (:mod:`workbench.governance.masking`), for roles without ``view_unmasked``;
        ``self`` when the passport has no ``pii`` dimension."""
        import tempfile

        from ..governance.masking import masked_passport, new_key, pii_dimensions
        from ..passport import load_passport

        with self._lock:
            if self._masked is None:
                if not pii_dimensions(load_passport(self.passport).manifest):
                    self._masked = self
                else:
                    # beside the store: inside the folders a locked-down session may read
                    Path(self.db).parent.mkdir(parents=True, exist_ok=True)
                    tmp = Path(tempfile.mkdtemp(prefix="masked-", dir=Path(self.db).parent))
                    masked_passport(self.passport, tmp / "passport", new_key())
                    self._masked = WorkbenchApp(str(tmp / "passport"),
                                                db=str(tmp / "store.duckdb"),
                                                metric=self.metric, library=self.library)
                    self._masked.auth = self.auth
                    self._masked.suppress_k = self.suppress_k
                    self._masked._masked = self._masked  # already masked: no copy of a copy
        return self._masked

    def session(self, identity=None):
        """One browser session: a fresh state over the shared investigation."""
        import panel as pn

        from ..governance.policy import Action, allowed
        from .state import WorkbenchState
        from .views import Workbench

        if not _EXTENSION_LOADED:  # served: loaded once for the process (``serve``)
            pn.extension(notifications=False)
        identity = identity or self.identity()
        if identity is None or not allowed(identity, Action.VIEW):
            return pn.pane.Markdown("Not logged in: [log in](/login)")
        if not allowed(identity, Action.VIEW_UNMASKED) and self.masked() is not self:
            return self.masked().session(identity)
        state = WorkbenchState(passport=self.passport, db=self.db, metric=self.metric,
                               library=self.library, identity=identity)
        state.suppress_k = self.suppress_k
        if self.auth is not None and pn.state.curdoc is not None:
            from .auth_web import refuse_client_models
            from ..investigation.library import audit_path
            refuse_client_models(pn.state.curdoc, identity, audit_path(self.library))
        state.investigator = lambda p, d, m, progress: self.live(m, progress)
        if self.ready(self.metric):
            live = self.live(self.metric)
            state._set_metrics(live, self.metric)
            state._set_live(live)
            # the replay and the slice explorer follow the first paint (Workbench.defer)
            return self._framed(Workbench(state=state, keyboard="page", defer=True), identity)
        # Not ready yet: a progress page first, the workbench once the answer is in. Built
        # with its data, the workbench renders in one go (building it empty and filling
        # it while the page connects left parts of it hidden on a loaded machine).
        holder = pn.Column(_loading_view(state), sizing_mode="stretch_width")

        def on_live(event):
            if event.new is not None and not getattr(holder, "_wb_built", False):
                holder._wb_built = True
                holder.objects = [Workbench(state=state, keyboard="page")]

        state.param.watch(on_live, "live")
        state.load()
        return self._framed(holder, identity)

    def _framed(self, view, identity):
        """A served page: who is logged in, their role and a way out, above the workbench."""
        import html

        import panel as pn

        if self.auth is None:
            return view
        who = pn.pane.HTML(
            f"<span class='wb-muted'>Logged in as <b>{html.escape(identity.name)}</b> "
            f"({identity.role.value}) · <a href='/logout'>log out</a></span>",
            css_classes=["wb-identity"], margin=(0, 10), align="end")
        return pn.Column(who, view, sizing_mode="stretch_width", margin=0)


def _application(app: WorkbenchApp, build_threads: int):
    """The Bokeh application of the served workbench: sessions built off the event loop.

    Bokeh builds a session's document on the server's one event loop
    (``initialize_document`` runs synchronously), so ten pages opened at once
    queued there: 47 s to the tenth first page, and every click of the pages
    already open waited behind the builds. Here a session whose investigation is
    ready is built on a worker thread while the loop goes on serving the other
    sessions: Bokeh awaits ``on_session_created`` before it calls
    ``initialize_document``, and the document belongs to nobody else until then
    (no connection, no session yet). The thread claims the document the way
    Panel's own ``initialize_document`` does; the loop takes it back afterwards. A
    session opened before the investigation is ready gets the light progress page
    on the loop, as before. ``build_threads=0`` builds everything on the loop.

    One thread by default: with two, two HoloViews renders at once failed once in
    44 builds under load (a figure's title still a string); a build that fails is
    discarded and redone on the loop.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.application.handlers.handler import Handler
    from panel.io.application import Application, _eval_panel
    from panel.io.state import set_curdoc, state as pn_state
    from panel.pane import panel as as_panel

    built: set[int] = set()  # ids of documents built on a worker
    pool = (ThreadPoolExecutor(max_workers=build_threads, thread_name_prefix="workbench-build")
            if build_threads > 0 else None)

    def build(doc) -> None:
        t0 = time.perf_counter()
        pn_state._thread_id_[doc] = threading.get_ident()
        with set_curdoc(doc):
            # what Panel's _eval_panel does with a returned view (its document_ready
            # hook is registered once, on the loop, by the FunctionHandler below)
            as_panel(app.session())._modify_doc(None, "Divergence Workbench", doc, False)
        built.add(id(doc))
        log.info("session built on %s in %.2f s", threading.current_thread().name,
                 time.perf_counter() - t0)

    class OffLoop(Handler):
        """Builds the document on a worker before Bokeh initializes it on the loop."""

        def modify_document(self, doc) -> None:  # the FunctionHandler below does it
            pass

        async def on_session_created(self, session_context) -> None:
            if pool is None or not app.ready(app.metric):
                return

            async def off_loop(doc):
                try:
                    await asyncio.get_running_loop().run_in_executor(pool, build, doc)
                except Exception:  # built on the loop instead (and its error shown there)
                    log.exception("building a session off the loop failed")
                    for root in list(doc.roots):
                        doc.remove_root(root)
            await session_context.with_locked_document(off_loop)

    def on_loop():
        doc = pn_state.curdoc
        if doc is not None and id(doc) in built:
            built.discard(id(doc))
            return None  # built on a worker already
        return app.session()

    # No Location model (the page's URL synced into ``pn.state.location``): nothing reads
    # it, and each session's page sent its URL back over the websocket (one more model,
    # one more patch handled per session).
    return Application(OffLoop(), FunctionHandler(
        partial(_eval_panel, on_loop, None, "Divergence Workbench", False, False)))


def _loading_view(state):
    """The page while the first investigation runs: progress, status, errors."""
    import panel as pn

    alert = pn.pane.Alert(pn.bind(lambda e: f"**Something went wrong:** {e}" if e else "",
                                  state.param.error),
                          alert_type="danger", visible=pn.bind(bool, state.param.error))
    return pn.Column(
        pn.pane.Markdown("## Divergence Workbench"),
        pn.pane.Markdown(pn.bind(lambda m: f"Investigating **{m}**…", state.param.metric)),
        pn.indicators.Progress(value=state.param.progress, max=100, width=400,
                               active=state.param.busy),
        pn.pane.Markdown(state.param.message, styles={"color": "#6b7280"}),
        alert, margin=(10, 20))


def serve(passport: str | None = None, *, db: str | None = None, metric: str | None = None,
          port: int = 0, address: str = "127.0.0.1", library: str | None = None,
          show: bool = False, on_ready: Callable[[str], None] | None = None,
          users: str | None = None, oauth_provider: str | None = None, token: bool = True,
          cookie_secret: str | None = None, allow_origin: list[str] | None = None,
          build_threads: int = 1, suppress_k: int | None = None, num_procs: int = 1) -> None:
    """Serve the workbench until interrupted; print the URL once the server listens.

    Authentication is on (:mod:`workbench.governance.auth`): the printed URL
    carries a random token; ``users`` adds password logins, ``oauth_provider``
    Panel's OAuth instead. Every route but ``/login`` and static assets refuses a
    request without a valid session.

    Parameters
    ----------
    passport, db, metric, library:
        See :class:`WorkbenchApp`.
    port:
        TCP port (0: a free one).
    address:
        Interface to bind (default loopback only; any other needs ``users`` or OAuth).
    show:
        Open a browser tab.
    on_ready:
        Called with the URL (default: print it).
    users:
        Users file of password logins (``workbench users add``).
    oauth_provider:
        A Panel OAuth provider name (roles from ``users``, viewer otherwise).
    token:
        Offer the token login (the printed URL carries it).
    cookie_secret:
        Signs session cookies (>= 32 bytes; default ``$WORKBENCH_COOKIE_SECRET`` or random).
    allow_origin:
        More ``HOST:PORT`` websocket origins (a proxy in front); no wildcards.
    build_threads:
        Threads building sessions off the event loop (0: on the loop, as Panel does).
    suppress_k:
        Smallest count a role without ``view_unmasked`` is shown (default 11).
    num_procs:
        Server processes sharing the port (Tornado forks them after the first
        investigation, which they share). See docs/serving.md for costs and gains.
    """
    import os
    import secrets

    import panel as pn

    from ..errors import UsageError
    from .auth_web import auth_provider, oauth_providers
    from ..governance.auth import (ServeAuth, UserFile, check_serve_config, new_token,
                                   redact_logs)
    from ..governance.audit import default_actor
    from ..investigation.library import audit_path

    secret = cookie_secret or os.environ.get("WORKBENCH_COOKIE_SECRET") or None
    origins = list(allow_origin or [])
    check_serve_config(address, users=users, oauth=oauth_provider, cookie_secret=secret,
                       origins=origins, oauth_providers=oauth_providers() if oauth_provider
                       else None)
    if not (token or users or oauth_provider):
        raise UsageError("serve: --no-token needs --users FILE or --oauth-provider NAME")
    secret = secret or secrets.token_urlsafe(32)
    redact_logs()
    global _EXTENSION_LOADED
    pn.extension(notifications=False)  # before any session: global, not per document
    _EXTENSION_LOADED = True
    # Bokeh validates every new session's document (its integrity checks walk every
    # model: ~0.01 CPU s a session, about half the page request), a development aid
    # that only logs; the tests validate the figures instead (tests/ui/test_timeline.py).
    from bokeh.settings import settings as bokeh_settings
    bokeh_settings.perform_document_validation.set_value(False)
    app = WorkbenchApp(passport, db=db, metric=metric, library=library)
    from ..store.lockdown import serve_lockdown
    Path(app.db).parent.mkdir(parents=True, exist_ok=True)
    serve_lockdown([app.passport, Path(app.db).parent, audit_path(library).parent])
    port = port or free_port(address)
    auth = ServeAuth(new_token() if token and not oauth_provider else None,
                     owner=default_actor(), users=UserFile(users) if users else None,
                     audit=audit_path(library))
    app.auth = auth
    app.suppress_k = suppress_k
    host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address
    url = f"http://{host}:{port}/" + (f"?token={auth.token}" if auth.token else "")
    access = ({"oauth_provider": oauth_provider} if oauth_provider
              else {"auth_provider": auth_provider(auth)})
    if num_procs > 1:
        # Forked processes must not write the store at the same time (an investigation
        # ingests first) and should not each compute the same answer: investigate (and
        # mask) here, once, before the fork; the processes share it copy-on-write.
        for one in dict.fromkeys([app, app.masked()]):
            one.prepare(one.live(one.metric))
    # With num_procs > 1 Tornado forks here: what follows runs in each server process
    # (no thread may be started before it: warm() comes after).
    server = pn.serve({"/": _application(app, build_threads)}, port=port, address=address,
                      show=False, start=False, title="Divergence Workbench",
                      cookie_secret=secret, websocket_origin=_origins(address, port, origins),
                      num_procs=num_procs, **access)
    app.warm()
    server.start()
    log.info("routes: %s", " ".join(_routes(server)))
    (on_ready or (lambda u: print(f"Divergence Workbench serving {app.metric} of "
                                  f"{app.passport} at {u}", flush=True)))(url)
    if show:
        server.io_loop.add_callback(server.show, "/")
    # SIGTERM (a service manager, a test stopping the server) ends the loop like Ctrl-C,
    # so the replay child process is stopped with the server.
    import signal

    def on_term(signum, frame):
        server.io_loop.add_callback(server.io_loop.stop)  # safe from a signal handler
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        server.stop()
        from .replay import _shutdown_step_processes
        _shutdown_step_processes()


def _origins(address: str, port: int, extra: list[str]) -> list[str]:
    """Hosts a page may open the websocket from: loopback names, the bound address
    (all interfaces: this machine's names), and ``--allow-origin`` entries."""
    hosts = {"localhost", "127.0.0.1"}
    if address in ("0.0.0.0", "::", ""):
        hosts |= {socket.gethostname(), socket.getfqdn()}
    else:
        hosts.add(address)
    return sorted({f"{h}:{port}" for h in hosts if h} | set(extra))


def _routes(server) -> list[str]:
    """The URL patterns a server answers (logged at start; the tests request each)."""
    return [r.matcher.regex.pattern for r in server._tornado.wildcard_router.rules]


def run(a: argparse.Namespace) -> int:
    """Run ``serve`` from parsed arguments (``workbench serve``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    serve(a.passport, db=a.db, metric=a.metric, port=a.port, address=a.address,
          library=a.library, show=a.show, users=a.users, oauth_provider=a.oauth_provider,
          token=not a.no_token, cookie_secret=a.cookie_secret, allow_origin=a.allow_origin,
          build_threads=getattr(a, "build_threads", 1), suppress_k=a.suppress_k,
          num_procs=getattr(a, "num_procs", 1))
    return 0


if __name__ == "__main__":  # ``python -m workbench.ui.app ...`` is ``workbench serve ...``
    from workbench.cli import main as _cli_main

    sys.exit(_cli_main(["serve", *sys.argv[1:]]))
