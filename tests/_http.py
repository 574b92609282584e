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


def fetch(url, *, method="GET", body=None, headers=None):
    """One request, redirects not followed, the response whatever its status."""
    from tornado.httpclient import HTTPClient, HTTPClientError

    def go():
        client = HTTPClient()
        try:
            return client.fetch(url, method=method, body=body, headers=headers or {},
                                follow_redirects=False, raise_error=False)
        except HTTPClientError as exc:
            return exc.response
        finally:
            client.close()
    return off_loop(go)
