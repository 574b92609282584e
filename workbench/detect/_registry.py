"""Detector look-up through the house plug-in registry (``workbench.registry``).

A detector is an object with a ``detect(frame, *, kind, better, grain, window,
config) -> DivergenceResult`` method, or a callable with that signature; a class
is instantiated with no arguments. ``frame`` is the normalized series (complete
UTC grid, columns ``num`` and ``den``, NaN where missing). Names live in the
``workbench.detectors`` entry-point group; the built-in ``seasonal`` is declared
there like any plug-in, and a plug-in that fails to load is warned about and
skipped by the registry, never fatal.
"""
from __future__ import annotations

from typing import Any

from workbench.errors import UsageError

GROUP = "workbench.detectors"


def register_detector(name: str, detector: Any, *, replace: bool = False) -> None:
    """Register ``detector`` (class, instance or callable) under ``name`` for this process."""
    from workbench import registry

    registry.register(GROUP, name, detector, replace=replace)


def unregister_detector(name: str) -> None:
    """Remove a run-time registration made with :func:`register_detector`."""
    from workbench import registry

    registry.unregister(GROUP, name)


def available_detectors() -> list[str]:
    """Names accepted by ``detect_divergence(..., detector=NAME)``."""
    from workbench import registry

    return sorted(registry.load_plugins(GROUP))


def resolve_detector(detector: Any):
    """Return an object with a ``detect`` method, or a callable, for ``detector``."""
    if isinstance(detector, str):
        from workbench import registry

        try:
            detector = registry.get_plugin(GROUP, detector)
        except UsageError as exc:
            raise UsageError(f"unknown detector {detector!r}; available: "
                             + ", ".join(available_detectors()) + f" ({exc})") from exc
    if isinstance(detector, type):
        detector = detector()
    if hasattr(detector, "detect") or callable(detector):
        return detector
    raise UsageError(f"detector must be a registered name, a class, an object with a detect "
                     f"method or a callable; got {type(detector).__name__}")
