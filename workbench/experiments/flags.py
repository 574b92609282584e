"""Flag providers: where a launch writes its flag, and how the world reads it.

The workbench does not evaluate flags itself: it writes a flag definition to a
provider and everything that acts on the flag reads it through the
OpenFeature SDK (``openfeature-sdk``), as a product would. The embedded default,
:class:`FlagdFileProvider`, writes a flagd flag-definition file (JSON; the
``fractional`` operation splits a scope by a hash of the unit id, which is
how doses are given) and reads it back with the flagd provider in file mode
(``openfeature-provider-flagd``, in-process evaluation, no daemon).

Real providers (LaunchDarkly, Unleash, a company's flag service) plug in
through the ``workbench.flag_providers`` entry-point group; each is a class
with the :class:`FlagProvider` methods. Every call a provider makes has a
stated timeout; a fault (timeout, server error, malformed answer) is raised
as :class:`FlagProviderError` with one clear sentence, which the action
ledger records as the launch's outcome.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..errors import WorkbenchError

#: seconds a provider may take to apply or remove a flag before the launch fails
DEFAULT_TIMEOUT = 5.0
_LOCK = threading.Lock()


class FlagProviderError(WorkbenchError):
    """A flag provider failed or answered something that is not a flag."""


@runtime_checkable
class FlagProvider(Protocol):
    """What the loop needs from a flag provider."""

    name: str
    timeout: float

    def apply(self, key: str, definition: dict) -> dict:
        """Create or replace flag ``key``; return a receipt (at least ``{"key", "version"}``)."""

    def remove(self, key: str) -> dict:
        """Delete flag ``key`` (no error if absent); return a receipt."""

    def current(self, key: str) -> dict | None:
        """The definition of flag ``key`` the provider holds now (None if absent)."""

    def evaluate(self, key: str, contexts: pd.DataFrame, default: str) -> np.ndarray:
        """Variant of flag ``key`` for each row of ``contexts`` (``targetingKey``, attributes)."""


def scope_rule(scope: dict) -> dict | bool:
    """A flagd (JsonLogic) condition that is true inside ``scope`` (``{}``: everywhere)."""
    terms = []
    for dim, val in sorted(scope.items()):
        if isinstance(val, (list, tuple)):
            terms.append({"in": [{"var": dim}, [str(v) for v in val]]})
        else:
            terms.append({"==": [{"var": dim}, str(val)]})
    if not terms:
        return True
    return terms[0] if len(terms) == 1 else {"and": terms}


def dose_flag(scope: dict, dose: float, *, on: str = "reverted", off: str = "kept") -> dict:
    """A flagd flag giving variant ``on`` to ``dose`` percent of units in ``scope``.

    Examples
    --------
    >>> f = dose_flag({"platform": "ios"}, 50)
    >>> f["targeting"]["if"][1]
    {'fractional': [['reverted', 50], ['kept', 50]]}
    """
    if not 0 <= dose <= 100:
        raise FlagProviderError(f"dose must be a percent in 0..100, got {dose}")
    d = int(round(dose))
    split = {"fractional": [[on, d], [off, 100 - d]]}
    return {"state": "ENABLED", "variants": {on: on, off: off}, "defaultVariant": off,
            "targeting": {"if": [scope_rule(scope), split, off]}}


def _stringify(df: pd.DataFrame) -> list[dict]:
    return df.astype(str).to_dict("records")


class FlagdFileProvider:
    """The embedded provider: a flagd flag file, read through OpenFeature.

    Parameters
    ----------
    path:
        The flag-definition file (created when missing). Writes are atomic
        (temporary file, then rename), so a reader never sees half a file.
    """

    name = "flagd-file"

    def __init__(self, path: str | Path, *, timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path)
        self.timeout = timeout

    # ------------------------------------------------------------------ writing
    def _read(self) -> dict:
        if not self.path.is_file():
            return {"flags": {}}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise FlagProviderError(f"{self.path}: not a flagd flag file ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("flags"), dict):
            raise FlagProviderError(f"{self.path}: not a flagd flag file (no 'flags' object)")
        return doc

    def _write(self, doc: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".flags-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def apply(self, key: str, definition: dict) -> dict:
        with _LOCK:
            doc = self._read()
            doc["flags"][key] = definition
            version = int(doc.get("metadata", {}).get("version", 0)) + 1
            doc["metadata"] = {"version": version}
            self._write(doc)
        return {"key": key, "version": version, "provider": self.name, "file": str(self.path)}

    def remove(self, key: str) -> dict:
        with _LOCK:
            doc = self._read()
            doc["flags"].pop(key, None)
            version = int(doc.get("metadata", {}).get("version", 0)) + 1
            doc["metadata"] = {"version": version}
            self._write(doc)
        return {"key": key, "version": version, "provider": self.name, "removed": True}

    # ------------------------------------------------------------------ reading
    def current(self, key: str) -> dict | None:
        return self._read()["flags"].get(key)

    def evaluate(self, key: str, contexts: pd.DataFrame, default: str) -> np.ndarray:
        """Each unit's variant, through the OpenFeature SDK and the flagd file provider.

        One SDK call per unit, as the product would make on each request; the
        simulated world calls this once per unit at launch and keeps the
        answer (assignments are sticky), not once per row of data.
        """
        from openfeature.evaluation_context import EvaluationContext

        if self.current(key) is None:
            raise FlagProviderError(f"{self.path} holds no flag '{key}'; launch it first")
        out = np.empty(len(contexts), dtype=object)
        with openfeature_client(self.path) as client:
            for i, attrs in enumerate(_stringify(contexts)):
                tk = attrs.pop("targetingKey")
                out[i] = client.get_string_value(key, default, EvaluationContext(tk, attrs))
        return out


_SEQ = iter(range(1, 1 << 62))


@contextlib.contextmanager
def openfeature_client(path: str | Path):
    """An OpenFeature client bound to a fresh flagd provider reading ``path`` (file mode).

    A fresh provider (in its own OpenFeature *domain*) loads the file as it is
    now; the long-lived file watcher of a shared provider polls, and would
    answer from the previous version for up to one poll after a launch.
    """
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    with _LOCK:
        domain = f"workbench-flags-{next(_SEQ)}"
    provider = FlagdProvider(resolver_type=ResolverType.FILE,
                             offline_flag_source_path=str(Path(path).resolve()))
    # set_provider initializes on a background thread and answers the default until the
    # provider is ready: every unit 'kept' on a loaded machine. Wait for the file's load.
    try:
        api.set_provider_and_wait(provider, domain=domain)
    except Exception as exc:  # the SDK raises its own errors for a file it cannot load
        provider.shutdown()
        raise FlagProviderError(f"{path}: the flagd provider could not load the flag file "
                                f"({exc})") from None
    try:
        yield api.get_client(domain=domain)
    finally:
        provider.shutdown()


def load_provider(name: str, **options) -> FlagProvider:
    """A flag provider by name: ``flagd-file`` or a ``workbench.flag_providers`` plug-in."""
    if name == "flagd-file":
        return FlagdFileProvider(**options)
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="workbench.flag_providers")}
    if name not in eps:
        raise FlagProviderError(f"no flag provider '{name}'; available: "
                                + ", ".join(["flagd-file", *sorted(eps)]))
    try:
        cls = eps[name].load()
        provider = cls(**options)
    except TypeError as exc:
        raise FlagProviderError(f"flag provider '{name}' does not take these options: {exc}") \
            from None
    except Exception as exc:  # a broken plug-in is reported, never a traceback
        raise FlagProviderError(f"flag provider '{name}' failed to load: {exc}") from None
    missing = [m for m in ("apply", "remove", "current", "evaluate")
               if not callable(getattr(provider, m, None))]
    if missing:
        raise FlagProviderError(f"flag provider '{name}' only reads flag history; it cannot "
                                f"launch (no {', '.join(missing)}())")
    return provider
