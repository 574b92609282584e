"""Synthetic product telemetry with injected, known root causes.

The generator writes passports (``shared/spec/passport.md``) of a web and app
shop: hourly sessions, conversions, revenue and latency by country (with its
region), platform, app version, browser and plan, a busy change log, and a
``truth.json`` naming the family of the incident, its onset, slice, culprit
changes and effect. It serves three uses: the bundled demo
(:func:`generate_demo`), the benchmarks that score detection, localization
and attribution against ground truth, and tests that need realistic data.

See :mod:`workbench.synth.generate` for the generative model and the
families.

Examples
--------
>>> import tempfile
>>> from workbench.synth import FAMILIES, generate_incident
>>> path = generate_incident(FAMILIES[0], seed=1, out_dir=tempfile.mkdtemp())
>>> sorted(p.name for p in path.iterdir())
['changes.jsonl', 'events.parquet', 'passport.yaml', 'truth.json']
"""
from __future__ import annotations

from .generate import FAMILIES, HELDOUT_FAMILIES, generate_demo, generate_incident
from . import _heldout  # noqa: F401  registers the held-out families

__all__ = ["FAMILIES", "HELDOUT_FAMILIES", "generate_demo", "generate_incident"]
