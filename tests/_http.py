"""HTTP probes of a served workbench for the tests, safe beside the browser tests.

Tornado's synchronous clients run an event loop of their own; in the full suite the
test thread may already run Playwright's (the browser tests' sync API keeps it
running), and a second loop cannot run on the same thread. Every probe therefore
runs on a thread of its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def off_loop(fn):
    """``fn()`` on a thread of its own, and its result (or its exception)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


#: seconds a probe waits for the whole answer: a served workbench on a busy 2-core
#: machine (the full suite beside it) has taken more than Tornado's default 20 s to
#: answer a login (it hashes a password and appends to the audit log under a lock)
TIMEOUT = 90.0


def fetch(url, *, method="GET", body=None, headers=None, timeout=TIMEOUT):
    """One request, redirects not followed, the response whatever its status.

    A request that got no response at all (timeout, refused connection) raises
    ``AssertionError`` naming the URL and the client's error, instead of handing the
    caller ``None`` to trip over later.
    """
    from tornado.httpclient import HTTPClient, HTTPClientError

    def go():
        client = HTTPClient()
        try:
            return client.fetch(url, method=method, body=body, headers=headers or {},
                                follow_redirects=False, raise_error=False,
                                connect_timeout=timeout, request_timeout=timeout)
        except HTTPClientError as exc:
            if exc.response is None:
                raise AssertionError(f"{method} {url}: no response ({exc})") from exc
            return exc.response
        finally:
            client.close()
    return off_loop(go)
