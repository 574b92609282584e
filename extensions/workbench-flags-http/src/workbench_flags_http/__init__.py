"""A flag service over HTTP as a ``workbench.flag_providers`` plug-in.

The service stores flagd flag definitions by key (see README.md for the four
calls). Every call goes through :func:`urllib.request.urlopen` with the
provider's timeout; faults are turned into
:class:`workbench.experiments.flags.FlagProviderError` with one sentence, so
that the action ledger records them as the launch's outcome. Evaluation is
in-process: the definition is fetched once and evaluated with the flagd engine
through the OpenFeature SDK (:class:`workbench.experiments.flags.FlagdFileProvider`
on a private copy), the way flagd's in-process mode evaluates a synced rule set.
"""
from __future__ import annotations

import json
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from workbench.experiments.flags import FlagdFileProvider, FlagProviderError

__all__ = ["HttpFlagProvider"]


def _scope_and_rollout(definition: dict) -> tuple[dict, float]:
    """Scope and percent served the non-default variant, for the simple shapes a launch writes."""
    default = definition.get("defaultVariant")
    if definition.get("state") == "DISABLED":
        return {}, 0.0
    t = definition.get("targeting") or {}
    branches = t.get("if") if isinstance(t, dict) else None
    if not branches:
        return {}, 0.0
    cond, then = branches[0], branches[1] if len(branches) > 1 else default
    terms = cond.get("and", [cond]) if isinstance(cond, dict) else []
    scope = {}
    for term in terms:
        if isinstance(term, dict) and "==" in term:
            var, val = term["=="]
            scope[var["var"]] = val
        elif isinstance(term, dict) and "in" in term:
            var, vals = term["in"]
            scope[var["var"]] = list(vals)
    if isinstance(then, dict) and "fractional" in then:
        parts = [p for p in then["fractional"] if isinstance(p, list)]
        total = sum(p[1] for p in parts) or 1
        pct = 100.0 * sum(p[1] for p in parts if p[0] != default) / total
    else:
        pct = 0.0 if then == default else 100.0
    return scope, pct


class HttpFlagProvider:
    """Flags on an HTTP flag service.

    Parameters
    ----------
    url:
        Base URL of the service (``http://127.0.0.1:8013``).
    timeout:
        Seconds each call may take before it fails.
    token:
        Sent as ``Authorization: Bearer TOKEN`` when given.
    """

    name = "http"

    def __init__(self, url: str = "", timeout: float | str = 5.0, token: str | None = None):
        self.url = str(url).rstrip("/")
        self.timeout = float(timeout)
        self.token = token

    # ------------------------------------------------------------------ transport
    def _call(self, method: str, path: str, body: dict | None = None,
              ok: tuple[int, ...] = (200,)) -> tuple[int, object]:
        if not self.url.startswith(("http://", "https://")):
            raise FlagProviderError(f"flag provider http needs url=http://HOST:PORT, got "
                                    f"{self.url!r}")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.token}"}
                                                 if self.token else {})})
        where = f"flag service {self.url}: {method} {path}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds the response: close it
                raw = exc.read()
            if exc.code == 404 and 404 in ok:
                return 404, None
            if exc.code in ok:
                status = exc.code
            else:
                raise FlagProviderError(f"{where} answered HTTP {exc.code} ({exc.reason}); "
                                        "the flag was not changed by this call") from None
        except (socket.timeout, TimeoutError):
            raise FlagProviderError(f"{where} did not answer within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise FlagProviderError(f"{where} did not answer within {self.timeout:g} s") \
                    from None
            raise FlagProviderError(f"{where} failed: {reason}") from None
        if status not in ok:
            raise FlagProviderError(f"{where} answered HTTP {status}; expected "
                                    + " or ".join(map(str, ok)))
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise FlagProviderError(f"{where} answered {raw[:60]!r}, which is not JSON") from None

    # ------------------------------------------------------------------ acting
    def apply(self, key: str, definition: dict) -> dict:
        _, ans = self._call("PUT", f"/flags/{quote(key, safe='')}", definition, ok=(200, 201))
        if not isinstance(ans, dict) or ans.get("key") != key or "version" not in ans:
            raise FlagProviderError(f"flag service {self.url}: PUT /flags/{key} answered "
                                    f"{str(ans)[:80]!r}; expected {{\"key\": \"{key}\", "
                                    "\"version\": ...}")
        return {"key": key, "version": ans["version"], "provider": self.name, "url": self.url}

    def remove(self, key: str) -> dict:
        self._call("DELETE", f"/flags/{quote(key, safe='')}", ok=(200, 204, 404))
        return {"key": key, "provider": self.name, "removed": True}

    def current(self, key: str) -> dict | None:
        status, ans = self._call("GET", f"/flags/{quote(key, safe='')}", ok=(200, 404))
        if status == 404:
            return None
        if not isinstance(ans, dict) or "variants" not in ans:
            raise FlagProviderError(f"flag service {self.url}: GET /flags/{key} answered "
                                    f"{str(ans)[:80]!r}, which is not a flag definition")
        return ans

    def evaluate(self, key: str, contexts: pd.DataFrame, default: str) -> np.ndarray:
        definition = self.current(key)
        if definition is None:
            return np.full(len(contexts), default, dtype=object)
        # a private copy that lives as long as this provider: the flagd file watcher polls
        # once more after it is shut down, and must find the file there
        if getattr(self, "_copy", None) is None:
            self._copy = tempfile.mkdtemp(prefix="workbench-flags-http-")
            weakref.finalize(self, shutil.rmtree, self._copy, True)
        local = FlagdFileProvider(Path(self._copy) / "flags.json")
        local.apply(key, definition)
        return local.evaluate(key, contexts, default)

    # ------------------------------------------------------------------ history (change rows)
    def sample_input(self) -> Path:
        return Path(__file__).parent / "data" / "history.json"

    def read_changes(self, path: str | Path, **options) -> pd.DataFrame:
        """The service's history (a saved ``GET /history``) as passport change rows."""
        path = Path(path)
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FlagProviderError(f"{path}: not a flag history ({exc})") from None
        if not isinstance(rows, list):
            raise FlagProviderError(f"{path}: expected a JSON list of revisions")
        out = []
        for i, r in enumerate(rows):
            if not isinstance(r, dict) or not {"ts", "key", "definition"} <= set(r):
                raise FlagProviderError(f"{path}, revision {i}: needs ts, key and definition")
            scope, pct = _scope_and_rollout(r["definition"])
            out.append({"id": f"http-{r['key']}-{i}", "ts": pd.Timestamp(r["ts"]),
                        "kind": "flag", "target": r["key"],
                        "description": f"flag {r['key']} served to {pct:g}% of "
                                       + (", ".join(f"{k}={v}" for k, v in scope.items())
                                          or "all traffic"),
                        "scope": scope, "rollout": pct, "author": r.get("author"),
                        "source": {"input": str(path), "revision": i}})
        return pd.DataFrame(out)
