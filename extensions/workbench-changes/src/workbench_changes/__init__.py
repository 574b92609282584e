"""Change-history source for the Divergence Workbench (entry point ``workbench.sources: changes``).

Reads deploy histories and feature-flag audit trails and merges them, as
``changes.jsonl`` rows with scopes and rollout percentages, into a passport:

* **flagd** flag-definition history: successive flagd JSON configurations
  (targeting rules and ``fractional`` rollouts become flag rows with a scope
  and a rollout %); see :mod:`workbench_changes.flagd`. Also registered as the
  ``flagd`` plug-in of ``workbench.flag_providers``.
* **GitHub Deployments** lists (the REST API's deployment objects with their
  statuses): one deploy row per deployment that succeeded in a production
  environment; see :mod:`workbench_changes.deployments`.

A change log needs the facts it explains: the rows are merged into the
passport already in ``out_dir``, or into a copy of ``base`` (a passport folder,
also accepted among ``inputs``). Scopes are checked against that passport's
dimensions. Rows of other sources are kept; re-running replaces the rows this
source wrote from the same files. Every row carries its ``source`` (input
file, sha256, and which flag revision or deployment it came from).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.errors import PassportError
from workbench.sources import Source

from workbench.passport.text import load_json
from .deployments import check_deployments, deployments_of, read_deployments
from .flagd import FlagdProvider, check_flagd, is_flagd_config, read_history, revision_time

__version__ = "0.1.0"
__all__ = ["ChangesSource", "FlagdProvider", "__version__"]

SAMPLE = Path(__file__).parent / "data" / "sample"


def _classify(inputs) -> tuple[list[Path], list[Path], Path | None]:
    """Split inputs into flagd revisions, deployment lists and a base passport folder."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    flagd, deps, base = [], [], None
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise PassportError("does not exist; expected a flagd history folder, a deployments "
                                "JSON file or a passport folder", file=str(p))
        if p.is_dir() and (p / "passport.yaml").is_file():
            base = p
            continue
        if p.is_dir():
            passports = [q.parent for q in p.rglob("passport.yaml")]
            if len(passports) == 1 and base is None:
                base = passports[0]
            files = sorted(f for f in p.rglob("*.json")
                           if not any(q in f.parents for q in passports))
        else:
            files = [p]
        for f in files:
            # every file is read and checked here, before a writer stages anything
            doc = load_json(f, "a flagd flag-definition file or a GitHub deployments list "
                               "(JSON)")
            if is_flagd_config(doc):
                check_flagd(doc, f)
                revision_time(doc, f)
                flagd.append(f.resolve())
            elif deployments_of(doc) is not None:
                check_deployments(deployments_of(doc), f)
                deps.append(f.resolve())
            else:
                raise PassportError("is neither a flagd flag-definition file (an object with "
                                    "'flags') nor a deployments list (objects with environment, "
                                    "sha, created_at, statuses)", file=str(f))
    if not flagd and not deps:
        raise PassportError("no flagd revision or deployments list found",
                            file=", ".join(map(str, inputs)))
    return flagd, deps, base


class ChangesSource(Source):
    """Deploy histories (GitHub Deployments JSON) and flag histories (flagd) -> change rows
    with scopes and rollout percentages."""

    name = "changes"

    def sample_input(self) -> Path:
        """A flagd history, a deployments list and the small passport they explain."""
        return SAMPLE

    def to_passport(self, inputs, out_dir, *, base=None, context_map: dict | None = None,
                    environments: dict | None = None, service: str | None = None) -> Path:
        """Merge change rows from ``inputs`` into the passport at ``out_dir``.

        Parameters
        ----------
        inputs:
            flagd revision files or folders, deployment list files, and optionally
            the passport folder to merge into (when ``out_dir`` holds none).
        out_dir:
            Passport folder: merged into when it holds a passport, else created
            from ``base``.
        base:
            A passport folder copied to ``out_dir`` first (never changed itself).
        context_map:
            flagd context variable -> passport dimension (``{"appVersion":
            "app_version"}``); variables named like a dimension map to it.
        environments:
            Deployment environment -> scope (``{"production": {}, "prod-eu":
            {"region": "EU"}}``); environments not listed are left out. Default:
            production environments are ``{}``, the rest left out.
        service:
            Target of deployments whose payload names no service.
        """
        flagd, deps, found_base = _classify(inputs)
        base = base or found_base
        if base is None and not (Path(out_dir) / "passport.yaml").is_file():
            # said before the writer exists, so it stages nothing
            raise PassportError("holds no passport to merge change rows into; pass base=PASSPORT "
                                "(or a passport folder among the inputs), or convert a fact "
                                "source (otel, warehouse) into it first", file=str(out_dir))
        w = self.writer(out_dir, base=base)
        for f in flagd + deps:
            w.add_input(f)
        raw = w.existing_manifest
        dims = list(raw.get("dimensions") or []) + [k for k in (raw.get("hierarchies") or {})]

        def row_source(path, record):
            return w.row_source(w.add_input(path), record)

        frames, transform, origins = [], [], []
        if flagd:
            df, notes = read_history(flagd, dimensions=dims, context_map=context_map,
                                     row_source=row_source)
            frames.append(df)
            origins.append(f"flagd flag-definition history ({len(flagd)} revisions)")
            transform += [
                "flagd: order revisions by metadata.updatedAt (or the time in the file name)",
                "flagd: targeting if-rules -> scopes (==, in, or, and on dimension variables); "
                "else-branch -> {}",
                "flagd: fractional weights -> percent served a treatment variant (true, or not "
                "the first defaultVariant); DISABLED -> 0%",
                "flagd: one flag row per (flag, scope) whose percent changed",
            ]
            if notes:
                transform.append("flagd: rules on non-dimension variables left out: "
                                 + "; ".join(notes))
        if deps:
            df, skipped = read_deployments(deps, environments=environments, service=service,
                                           dimensions=dims, row_source=row_source)
            frames.append(df)
            origins.append(f"GitHub deployments ({len(deps)} file(s))")
            transform += [
                "deployments: effective at the first 'success' status",
                "deployments: target = payload.service, else the service option, else the "
                "repository",
                "deployments: scope = payload.scope, else the environment's scope "
                "(production -> {})",
                f"deployments: left out {skipped['never succeeded']} that never succeeded and "
                f"{skipped['non-production environment']} in non-production environments",
            ]
        rows = pd.concat([f for f in frames if len(f)] or [frames[0]], ignore_index=True)
        rows = rows.sort_values(["ts", "id"], kind="stable").reset_index(drop=True)
        w.add_changes(rows, transform=transform, origin=" + ".join(origins))
        return w.finish()
