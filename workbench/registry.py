"""Plug-ins: entry-point groups and built-ins registered the same way (discovery only).

A plug-in is a Python object advertised by an installed distribution under one
of the entry-point groups of :data:`GROUPS`::

    # the plug-in's pyproject.toml
    [project.entry-points."workbench.sources"]
    otel = "workbench_otel:OtelSource"

Built-ins are declared exactly the same way in the workbench's own
``pyproject.toml``; :data:`BUILTINS` repeats those declarations so a source
checkout that was never ``pip install``-ed still finds them (an entry point
and its built-in twin with the same value are one plug-in, not a conflict).

Loading follows xarray's ``backends/plugins.py``: every entry point of a
group is loaded once per process, when the group is first asked for (cached;
:func:`refresh` forgets it), so a run that needs detectors never imports a view
plug-in's Panel; a
plug-in that raises while importing is **warned about** with a
:class:`PluginWarning` naming the group, the entry point, its distribution and
the exception, **listed** with status ``broken`` and **skipped**; it never
stops the workbench. Two distributions claiming the same name in a group is
warned about too; the built-in (else the first distribution in name order)
wins and the other is listed as ``shadowed``.

The contract each group's plug-ins must meet is checked by the ``check_*``
functions of :mod:`workbench.testing`; the test suite runs them over every
plug-in found, the way scikit-learn's ``check_estimator`` is run over
third-party estimators.

The Source API (the :class:`~workbench.sources.Source` base class and the
:class:`~workbench.sources.PassportWriter` that records provenance) lives in
:mod:`workbench.sources`.

Examples
--------
>>> from workbench import registry
>>> [p.name for p in registry.list_plugins("workbench.detectors") if p.builtin]
['seasonal']
>>> registry.get_plugin("workbench.detectors", "seasonal").__name__
'SeasonalDetector'
"""
from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

#: The entry-point groups the workbench reads, and what a plug-in of each does.
GROUPS: dict[str, str] = {
    "workbench.sources": "turn an outside format into a passport "
                         "(name, describe(), sample_input(), to_passport(inputs, out_dir, **options))",
    "workbench.detectors": "find a divergence in a bucketed series "
                           "(detect(frame, *, kind, better, grain, window, config) -> DivergenceResult)",
    "workbench.localizers": "find the slices that explain a divergence "
                            "(callable(leaves, *, dimensions, kind, hierarchies) -> Localization)",
    "workbench.flag_providers": "a feature-flag provider: read its history as change rows "
                                "(name, sample_input(), read_changes(path, **options) -> "
                                "DataFrame) and, to launch tests from the loop (workbench "
                                "loop --provider NAME), act on flags (timeout, apply(key, "
                                "definition), current(key), remove(key), evaluate(key, "
                                "contexts, default); experiments.flags.FlagProvider)",
    "workbench.streams": "a micro-batch source for `workbench watch` (from_url(url), "
                         "open(spool), poll(timeout) -> [Batch], ack(batch), "
                         "reject(batch, reason), close(); workbench.stream.sources)",
    "workbench.views": "a tab of the workbench, served and in notebooks (a pn.viewable.Viewer "
                       "subclass with a title and an optional policy action a role needs to "
                       "see it, built as View(state=WorkbenchState); workbench.ui.plugins)",
}

#: Built-ins, declared as entry points of the ``workbench`` distribution too.
BUILTINS: dict[str, dict[str, str]] = {
    "workbench.detectors": {"seasonal": "workbench.detect.seasonal:SeasonalDetector"},
    "workbench.localizers": {"search": "workbench.localize.search:localize"},
    "workbench.streams": {"folder": "workbench.stream.sources:FolderSource"},
}

_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


class PluginWarning(RuntimeWarning):
    """A plug-in failed to load (and was skipped) or is shadowed by another."""


@dataclass(frozen=True)
class PluginInfo:
    """One plug-in as found: where it comes from and whether it loaded.

    ``status`` is ``ok``, ``broken`` (importing it raised; ``error`` says what)
    or ``shadowed`` (another distribution claims the same name in the group).
    """

    group: str
    name: str
    value: str
    package: str
    version: str
    status: str
    error: str | None = None
    builtin: bool = False
    obj: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return {"group": self.group, "name": self.name, "value": self.value,
                "package": self.package, "version": self.version, "status": self.status,
                "error": self.error, "builtin": self.builtin}


_RUNTIME: dict[tuple[str, str], PluginInfo] = {}


def _check_group(group: str) -> str:
    if group not in GROUPS:
        raise UsageError(f"unknown plug-in group {group!r}; groups are: {', '.join(GROUPS)}")
    return group


def _workbench_version() -> str:
    from . import __version__

    return __version__


def _dist_of(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    try:
        return str(dist.metadata["Name"]), str(dist.version)
    except Exception:  # a dist with broken metadata still gets listed
        return str(getattr(dist, "name", "?")), "?"


def _load(group: str, name: str, value: str, package: str, version: str,
          builtin: bool) -> PluginInfo:
    from importlib.metadata import EntryPoint

    try:
        obj = EntryPoint(name=name, value=value, group=group).load()
    except Exception as exc:  # any failure of a plug-in's import is its own, not ours
        err = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"workbench plug-in {name!r} in group {group} ({value}, from "
                      f"{package} {version}) failed to load and is skipped: {err}",
                      PluginWarning, stacklevel=4)
        return PluginInfo(group, name, value, package, version, "broken", err, builtin)
    return PluginInfo(group, name, value, package, version, "ok", None, builtin, obj)


def _discover() -> tuple[PluginInfo, ...]:
    """Every plug-in of every group (each group loaded once, when first asked for)."""
    return tuple(p for group in GROUPS for p in _discover_group(group))


@functools.lru_cache(maxsize=None)
def _discover_group(group: str) -> tuple[PluginInfo, ...]:
    """The plug-ins of one group, loaded once per process: a run that only needs
    detectors never imports a view plug-in's Panel."""
    from importlib.metadata import entry_points

    found: list[PluginInfo] = []
    if group in GROUPS:
        claims: dict[str, list[tuple[str, str, str, bool]]] = {}
        for name, value in BUILTINS.get(group, {}).items():
            claims.setdefault(name, []).append((value, "workbench", _workbench_version(), True))
        eps = sorted(entry_points(group=group), key=lambda e: (e.name, _dist_of(e)[0], e.value))
        for ep in eps:
            pkg, ver = _dist_of(ep)
            same = [c for c in claims.get(ep.name, []) if c[0] == ep.value]
            if same:  # the built-in twin, or the same dist seen twice on sys.path
                continue
            claims.setdefault(ep.name, []).append((ep.value, pkg, ver, False))
        for name in sorted(claims):
            (value, pkg, ver, builtin), *others = claims[name]
            found.append(_load(group, name, value, pkg, ver, builtin))
            for o_value, o_pkg, o_ver, _ in others:
                warnings.warn(f"workbench plug-in name {name!r} in group {group} is claimed by "
                              f"{pkg} ({value}) and by {o_pkg} ({o_value}); {pkg} is used",
                              PluginWarning, stacklevel=3)
                found.append(PluginInfo(group, name, o_value, o_pkg, o_ver, "shadowed",
                                        f"name taken by {pkg}", False))
    return tuple(found)


def refresh() -> None:
    """Forget what was discovered (after installing or removing a plug-in)."""
    _discover_group.cache_clear()


def list_plugins(group: str | None = None) -> list[PluginInfo]:
    """Every plug-in found, built-ins first within a group, with its status.

    Loading is done once per process; a broken plug-in is warned about then
    (:class:`PluginWarning`) and listed with ``status="broken"``.
    """
    if group is not None:
        _check_group(group)
    out = list(_discover() if group is None else _discover_group(group))
    out += [p for (g, _), p in _RUNTIME.items() if group is None or g == group]
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(out, key=lambda p: (order[p.group], not p.builtin, p.name, p.package))


def load_plugins(group: str) -> dict[str, Any]:
    """``{name: object}`` of the plug-ins of ``group`` that loaded."""
    out: dict[str, Any] = {}
    for p in list_plugins(group):
        if p.ok and p.name not in out:
            out[p.name] = p.obj
    for (g, name), p in _RUNTIME.items():  # run-time registrations override
        if g == group:
            out[name] = p.obj
    return out


def get_plugin(group: str, name: str) -> Any:
    """The plug-in ``name`` of ``group``; a :class:`UsageError` lists the valid names."""
    plugins = load_plugins(_check_group(group))
    if name in plugins:
        return plugins[name]
    broken = [p for p in list_plugins(group) if p.name == name and p.status == "broken"]
    if broken:
        raise UsageError(f"{group} plug-in {name!r} is installed ({broken[0].package}) but "
                         f"failed to load: {broken[0].error}; reinstall or fix it")
    raise UsageError(f"no {group} plug-in named {name!r}; installed: "
                     + (", ".join(sorted(plugins)) or "none")
                     + " (see `workbench plugins`)")


def register(group: str, name: str, obj: Any, *, replace: bool = False) -> None:
    """Register ``obj`` under ``name`` in ``group`` for this process.

    For objects made at run time (tests, notebooks); installed plug-ins use
    entry points. A name already taken raises unless ``replace=True``.
    """
    _check_group(group)
    if not isinstance(name, str) or not name:
        raise UsageError(f"a plug-in name must be a non-empty string; got {name!r}")
    taken = (group, name) in _RUNTIME or any(p.name == name and p.ok
                                              for p in _discover_group(group))
    if taken and not replace:
        raise UsageError(f"a {group} plug-in named {name!r} is already registered; "
                         "pass replace=True to override it")
    module = getattr(obj, "__module__", "") or ""
    _RUNTIME[(group, name)] = PluginInfo(group, name, f"{module}:{getattr(obj, '__qualname__', '')}",
                                         "(run time)", "", "ok", None, False, obj)


def unregister(group: str, name: str) -> None:
    """Remove a run-time registration (installed plug-ins are removed with pip)."""
    _RUNTIME.pop((_check_group(group), name), None)


def plugin_identity(obj: Any) -> dict:
    """``{name, package, version}`` of a plug-in object or class (for provenance)."""
    cls = obj if isinstance(obj, type) else type(obj)
    name = str(getattr(obj, "name", "") or cls.__name__)
    for group in GROUPS:  # group by group: a source is found before any view is loaded
        for p in list_plugins(group):
            o = p.obj
            if p.ok and (o is cls or o is obj):
                return {"name": name, "package": p.package, "version": p.version}
    top = (cls.__module__ or "").split(".")[0]
    try:
        from importlib.metadata import packages_distributions, version

        dists = packages_distributions().get(top) or []
        if dists:
            return {"name": name, "package": dists[0], "version": version(dists[0])}
    except Exception:  # provenance is best effort for objects not installed
        pass
    return {"name": name, "package": top or "?", "version": "?"}
