"""Contract checks for plug-ins: ``check_source``, ``check_detector`` and friends.

Every plug-in group has a ``check_*`` function that raises
:class:`ContractError` (an ``AssertionError``) saying what is wrong and how to
fix it, or returns a :class:`ContractReport` listing what was checked. The
workbench's test suite runs them over every plug-in found
(``tests/test_registry.py``); a plug-in's own tests should call them too::

    from workbench.testing import check_source
    from my_adapter import MySource

    def test_contract():
        check_source(MySource)

:func:`check_plugin` dispatches on the group of a
:class:`~workbench.registry.PluginInfo`.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ContractError", "ContractReport", "check_detector", "check_flag_provider",
           "check_localizer", "check_plugin", "check_source", "check_stream_source",
           "check_view"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ContractError(AssertionError):
    """A plug-in does not meet its group's contract."""


@dataclass(frozen=True)
class ContractReport:
    """What a ``check_*`` function verified for one plug-in."""

    group: str
    name: str
    checks: tuple[str, ...]
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"group": self.group, "name": self.name, "checks": list(self.checks),
                "details": self.details}


class _Checker:
    def __init__(self, group: str, name: str):
        self.group, self.name, self.done = group, name, []

    def require(self, cond: Any, what: str, fix: str = "") -> None:
        if not cond:
            raise ContractError(f"{self.group} plug-in {self.name!r}: {what}"
                                + (f" ({fix})" if fix else ""))

    def ok(self, what: str) -> None:
        self.done.append(what)

    def report(self, **details) -> ContractReport:
        return ContractReport(self.group, self.name, tuple(self.done), details)


def _instance(obj: Any) -> Any:
    return obj() if isinstance(obj, type) else obj


# =========================================================================== sources
def check_source(source: Any, *, deterministic: bool = True) -> ContractReport:
    """Check a source plug-in (class or instance) against the Source API.

    On its own sample input (``sample_input()``), in temporary folders:

    1. ``name`` is a lowercase identifier, ``describe()`` a non-empty line;
    2. ``to_passport(sample, out)`` returns ``out`` and the folder passes
       :func:`workbench.passport.load_passport`;
    3. provenance: ``passport.yaml`` ``sources`` has, for every table the
       source wrote, a contribution naming the plug-in, its input files with a
       sha256 that matches the file, non-empty transform steps and a UTC
       ``extracted_at``; every change and log row it wrote carries a ``source``
       object naming the plug-in and an input file;
    4. converting again into the same folder replaces the rows it wrote instead
       of duplicating them, and gives byte-identical tables (if
       ``deterministic``);
    5. an input that does not exist raises a ``WorkbenchError`` and leaves the
       output folder unwritten.
    """
    from .errors import WorkbenchError
    from .passport import load_passport, sha256_file

    src = _instance(source)
    name = getattr(src, "name", None)
    c = _Checker("workbench.sources", str(name))
    c.require(isinstance(name, str) and re.match(r"^[a-z][a-z0-9_\-]*$", name or ""),
              f"name must be a lowercase identifier, got {name!r}")
    for meth in ("describe", "sample_input", "to_passport"):
        c.require(callable(getattr(src, meth, None)), f"has no method {meth}()",
                  "see the Source API in workbench.sources")
    desc = src.describe()
    c.require(isinstance(desc, str) and desc.strip(), "describe() must return a non-empty string")
    c.ok("name and describe()")
    sample = Path(src.sample_input())
    c.require(sample.exists(), f"sample_input() returned {sample}, which does not exist")
    c.ok("sample_input() exists")

    with tempfile.TemporaryDirectory(prefix="wb-contract-") as tmp:
        out = Path(tmp) / "a"
        got = src.to_passport(sample, out)
        c.require(got is not None and Path(got).resolve() == out.resolve(),
                  f"to_passport() must return the output folder {out}, got {got!r}")
        try:
            pp = load_passport(out)
        except WorkbenchError as exc:
            raise ContractError(f"workbench.sources plug-in {name!r}: its sample does not "
                                f"become a valid passport: {exc}") from None
        c.ok("sample -> passport that load_passport accepts")

        tables = _check_provenance(c, pp, name, sha256_file)
        c.ok(f"provenance of {', '.join(sorted(tables))} (plug-in, input files and hashes, "
             "transform steps)")
        _check_row_sources(c, out, name)
        c.ok("every change and log row names its source")

        n_changes = len(pp.changes)
        first = {f.name: sha256_file(f) for f in sorted(out.iterdir())
                 if f.is_file() and f.name != "passport.yaml" and not f.name.startswith(".")}
        src.to_passport(sample, out)
        pp2 = load_passport(out)
        c.require(len(pp2.changes) == n_changes,
                  f"converting the same input again into the same folder changed the change "
                  f"log from {n_changes} to {len(pp2.changes)} rows",
                  "re-runs must replace the rows they wrote, not add them again")
        c.ok("re-running into the same folder is idempotent")
        if deterministic:
            for name, digest in first.items():
                g = out / name
                c.require(g.is_file() and sha256_file(g) == digest,
                          f"converting the same input twice gave different {name}",
                          "sort rows and keep wall-clock times out of tables")
            c.ok("deterministic tables")

        bad_out = Path(tmp) / "c"
        try:
            src.to_passport(Path(tmp) / "no-such-input", bad_out)
        except WorkbenchError:
            pass
        except Exception as exc:
            raise ContractError(f"workbench.sources plug-in {name!r}: a missing input raised "
                                f"{type(exc).__name__}: {exc}; expected a WorkbenchError "
                                "naming the file") from None
        else:
            raise ContractError(f"workbench.sources plug-in {name!r}: a missing input did not "
                                "raise; expected a WorkbenchError naming the file")
        c.require(not (bad_out / "passport.yaml").exists(),
                  "a failed conversion wrote passport.yaml")
        c.ok("bad input -> WorkbenchError, nothing written")
        return c.report(tables=sorted(tables), changes=n_changes,
                        metrics=sorted(pp.manifest.metrics))


def _check_provenance(c: _Checker, pp, name: str, sha256_file) -> set[str]:
    from datetime import datetime

    sources = pp.manifest.raw.get("sources") or {}
    tables = set()
    for table, entry in sources.items():
        contribs = [x for x in (entry or {}).get("contributions", [])
                    if isinstance(x, dict) and (x.get("plugin") or {}).get("name") == name]
        if not contribs:
            continue
        tables.add(table)
        c.require(entry.get("origin") and entry.get("extracted_at"),
                  f"sources.{table} lacks origin or extracted_at (passport.md)")
        for x in contribs:
            plugin = x["plugin"]
            c.require(plugin.get("package") and plugin.get("version"),
                      f"sources.{table} contribution lacks the plug-in's package or version")
            c.require(x.get("transform") and all(isinstance(t, str) and t for t in x["transform"]),
                      f"sources.{table} contribution has no transform steps")
            try:
                datetime.fromisoformat(str(x.get("extracted_at")).replace("Z", "+00:00"))
            except ValueError:
                raise ContractError(f"workbench.sources plug-in {name!r}: sources.{table} "
                                    f"extracted_at {x.get('extracted_at')!r} is not ISO "
                                    "8601") from None
            c.require(x.get("inputs"), f"sources.{table} contribution lists no input file")
            for i in x["inputs"]:
                c.require(isinstance(i, dict) and i.get("path") and _HEX64.match(str(i.get("sha256"))),
                          f"sources.{table} input {i!r} needs a path and a sha256")
                p = Path(i["path"])
                if p.is_file():
                    c.require(sha256_file(p) == i["sha256"],
                              f"sources.{table} records sha256 {i['sha256'][:12]}... for "
                              f"{p}, but the file hashes differently")
    c.require(tables, "passport.yaml sources has no contribution by this plug-in",
              "record provenance with PassportWriter (workbench.sources)")
    c.require("events" in tables or "changes" in tables,
              "the plug-in wrote neither events nor changes")
    return tables


def _check_row_sources(c: _Checker, out: Path, name: str) -> None:
    for table in ("changes", "logs"):
        f = out / f"{table}.jsonl"
        if not f.is_file():
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            rec = json.loads(line)
            s = rec.get("source")
            c.require(isinstance(s, dict) and s.get("plugin"),
                      f"{table}.jsonl line {i} has no 'source' object",
                      "every adapted record carries its provenance")
            if s["plugin"] == name:
                c.require(s.get("input") and s.get("sha256"),
                          f"{table}.jsonl line {i}: source lacks the input file or its sha256")


# =========================================================================== detectors
def check_detector(detector: Any) -> ContractReport:
    """Check a detector on a seeded hourly ratio series with a step, and on a quiet one.

    It must return a :class:`~workbench.detect.DivergenceResult`, find a 25 %
    drop (60 sigma over the window) with an onset within 3 buckets, and not call
    a quiet series significant.
    """
    import numpy as np
    import pandas as pd

    from .detect import DivergenceResult, detect_divergence

    det = _instance(detector)
    c = _Checker("workbench.detectors", getattr(det, "name", type(det).__name__))
    c.require(hasattr(det, "detect") or callable(det),
              "must have a detect(frame, *, kind, better, grain, window, config) method or be "
              "callable with that signature")
    rng = np.random.default_rng(20261124)
    ts = pd.date_range("2026-11-01", periods=21 * 24, freq="1h", tz="UTC")
    hour = ts.hour.to_numpy()
    den = rng.poisson(4000 * (1.5 + np.sin(2 * np.pi * hour / 24)))
    onset = 470
    p = np.where(np.arange(len(ts)) >= onset, 0.03, 0.04)
    step = pd.DataFrame({"num": rng.binomial(den, p), "den": den}, index=ts)
    res = detect_divergence(step, kind="ratio", better="higher", detector=det)
    c.require(isinstance(res, DivergenceResult), "detect must return a DivergenceResult")
    c.require(res.significant, "a 25% drop in the last two days was not significant")
    c.require(res.onset is not None and abs((pd.Timestamp(res.onset) - ts[onset])
                                            / pd.Timedelta("1h")) <= 3,
              f"onset {res.onset} is more than 3 buckets from the true one {ts[onset]}")
    c.ok("finds a step and its onset")
    quiet = pd.DataFrame({"num": rng.binomial(den, 0.04), "den": den}, index=ts)
    res = detect_divergence(quiet, kind="ratio", better="higher", detector=det)
    c.require(not res.significant, "a quiet series was called significant")
    c.ok("quiet series -> not significant")
    return c.report()


# =========================================================================== localizers
def check_localizer(localizer: Any) -> ContractReport:
    """Check a localizer on leaves where one slice (platform=ios) holds the drop."""
    import numpy as np
    import pandas as pd

    loc = localizer if callable(localizer) and not isinstance(localizer, type) else \
        _instance(localizer)
    fn = loc if callable(loc) else getattr(loc, "localize", None)
    c = _Checker("workbench.localizers", getattr(localizer, "__name__", type(loc).__name__))
    c.require(callable(fn), "must be callable as f(leaves, *, dimensions, kind, hierarchies)")
    rng = np.random.default_rng(7)
    rows = []
    for country in ("DE", "FR", "US", "BR"):
        for platform in ("ios", "android", "web"):
            base_den = rng.poisson(20000)
            obs_den = rng.poisson(20000)
            rate = 0.05
            obs_rate = 0.03 if platform == "ios" else rate
            rows.append({"country": country, "platform": platform,
                         "base_num": rng.binomial(base_den, rate), "base_den": base_den,
                         "obs_num": rng.binomial(obs_den, obs_rate), "obs_den": obs_den})
    leaves = pd.DataFrame(rows)
    res = fn(leaves, dimensions=["country", "platform"], kind="ratio", hierarchies={})
    slices = getattr(res, "slices", None)
    c.require(slices, "must return an object with a non-empty .slices list")
    top = dict(getattr(slices[0], "filter", {}) or {})
    c.require(top == {"platform": "ios"}, f"top slice {top} is not platform=ios")
    c.ok("finds the slice that holds the drop")
    return c.report()


# =========================================================================== flag providers
def check_flag_provider(provider: Any) -> ContractReport:
    """Check a flag provider: ``read_changes(sample_input())`` gives valid flag rows."""
    import pandas as pd

    from .passport import CHANGE_KINDS

    fp = _instance(provider)
    name = getattr(fp, "name", None)
    c = _Checker("workbench.flag_providers", str(name))
    c.require(isinstance(name, str) and name, "needs a name")
    for meth in ("sample_input", "read_changes"):
        c.require(callable(getattr(fp, meth, None)), f"has no method {meth}()")
    df = fp.read_changes(fp.sample_input())
    c.require(isinstance(df, pd.DataFrame) and len(df), "read_changes must return a non-empty "
              "DataFrame")
    need = {"id", "ts", "kind", "target", "description", "scope", "rollout", "source"}
    c.require(need <= set(df.columns), f"missing columns {sorted(need - set(df.columns))}")
    c.require(df["id"].is_unique, "ids must be unique")
    c.require(df["kind"].isin(CHANGE_KINDS).all(), "kinds must be change kinds of passport.md")
    r = pd.to_numeric(df["rollout"], errors="coerce")
    c.require(((r >= 0) & (r <= 100) | r.isna()).all(), "rollout must be within 0..100")
    c.require(df["scope"].map(lambda s: isinstance(s, dict)).all(), "scope must be a dict")
    c.require(df["source"].map(lambda s: isinstance(s, dict) and s.get("input")).all(),
              "every row needs a source with its input file")
    c.ok("read_changes gives valid change rows with provenance")
    return c.report(rows=len(df))


# =========================================================================== views
def check_view(view: Any) -> ContractReport:
    """Check a view class without importing Panel: a class with ``__panel__``, a title and,
    optionally, the policy ``action`` a role needs to see it (``view`` by default)."""
    c = _Checker("workbench.views", getattr(view, "__name__", str(view)))
    c.require(isinstance(view, type), "must be a class (a pn.viewable.Viewer subclass)")
    c.require(callable(getattr(view, "__panel__", None)), "must define __panel__()")
    c.require(isinstance(getattr(view, "title", None), str), "must have a str title")
    c.ok("a Viewer class with a title")
    from .governance.policy import Action

    action = getattr(view, "action", None) or "view"
    c.require(action in {a.value for a in Action}, f"action {action!r} is not a policy action",
              "one of " + ", ".join(a.value for a in Action))
    c.ok(f"shown to the roles granted {action!r}")
    return c.report(action=action)


# =========================================================================== streams
def check_stream_source(source: Any) -> ContractReport:
    """Check a stream source class: a name, ``from_url`` and the delivery methods.

    Delivery itself needs the source's service; a plug-in's own tests run it
    against the real thing (``extensions/workbench-nats`` starts ``nats-server``).
    """
    import inspect

    c = _Checker("workbench.streams", getattr(source, "__name__", str(source)))
    c.require(isinstance(source, type), "must be a class with a from_url(url) classmethod")
    c.require(isinstance(getattr(source, "name", None), str) and source.name,
              "needs a str name (the URL scheme)")
    c.require(inspect.ismethod(getattr(source, "from_url", None)),
              "from_url must be a classmethod taking the --source URL")
    for meth, n_args in (("open", 1), ("poll", 1), ("ack", 1), ("reject", 2), ("close", 0)):
        f = getattr(source, meth, None)
        c.require(callable(f), f"has no method {meth}()")
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.name != "self" and p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        c.require(len(params) == n_args, f"{meth}() must take {n_args} argument(s), "
                  f"takes {len(params)}")
    c.ok("a class with from_url, open, poll, ack, reject and close")
    return c.report()


_CHECKS = {"workbench.sources": check_source, "workbench.streams": check_stream_source, "workbench.detectors": check_detector,
           "workbench.localizers": check_localizer,
           "workbench.flag_providers": check_flag_provider, "workbench.views": check_view}


def check_plugin(plugin) -> ContractReport:
    """Run the check of ``plugin``'s group on its loaded object (a PluginInfo)."""
    from dataclasses import replace

    if not plugin.ok:
        raise ContractError(f"{plugin.group} plug-in {plugin.name!r} did not load: {plugin.error}")
    return replace(_CHECKS[plugin.group](plugin.obj), name=plugin.name)
