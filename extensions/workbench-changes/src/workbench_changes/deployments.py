"""CI deployment lists shaped like the GitHub Deployments REST API -> deploy change rows.

Input: a JSON array of deployment objects as ``GET /repos/{owner}/{repo}/deployments``
returns them (``id``, ``sha``, ``ref``, ``task``, ``environment``,
``description``, ``creator.login``, ``created_at``, ``payload``,
``repository_url``), each with its ``statuses`` (the objects ``GET
.../deployments/{id}/statuses`` returns: ``state``, ``created_at``,
``creator``, ``description``, ``log_url``) embedded, as an export script or
``gh api --paginate`` plus a join writes them. An object ``{"deployments": [...]}``
is accepted too.

Rules:

* a deployment takes effect at its first ``success`` status (statuses come
  newest first from the API; order does not matter here); one that never
  succeeded (``failure``, ``error``, only ``queued``/``in_progress``) changed
  nothing and is left out, which the transform steps count;
* ``target`` is ``payload.service``, else the ``service`` option, else the
  repository name from ``repository_url``;
* ``scope`` is ``payload.scope`` when it is an object (the deployer's own
  targeting), else what the ``environments`` option maps the environment to;
  by default ``production`` and ``production-*``/``prod*`` environments are
  ``{}`` and every other environment (staging, previews) is left out, since it
  serves no production traffic;
* ``rollout`` is ``payload.rollout`` or ``payload.canary_percent`` when given
  (a canary), else empty.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from workbench.errors import PassportError

_PROD = re.compile(r"^(production|prod)([-_].*)?$", re.IGNORECASE)


def deployments_of(doc) -> list | None:
    """The deployment list of a parsed JSON document, or None if it is not one."""
    if isinstance(doc, dict) and isinstance(doc.get("deployments"), list):
        doc = doc["deployments"]
    if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc) and \
            all("environment" in d and "sha" in d for d in doc):
        return doc
    return None


def _ts(value, path: str, where: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(str(value))
    except ValueError:
        raise PassportError(f"{where}: {value!r} is not a time; expected ISO 8601 such as "
                            "2026-11-10T09:30:00Z", file=path) from None
    if pd.isna(t):
        raise PassportError(f"{where}: no time; expected ISO 8601", file=path)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def read_deployments(files: list[Path], *, environments: dict | None = None,
                     service: str | None = None, dimensions: list[str] | None = None,
                     row_source=None) -> tuple[pd.DataFrame, dict]:
    """Deploy change rows from deployment lists, and counts of what was left out."""
    rows = []
    skipped = {"never succeeded": 0, "non-production environment": 0}
    for p in files:
        try:
            doc = json.loads(Path(p).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PassportError(f"is not valid JSON ({exc.msg} at line {exc.lineno}); expected "
                                "a GitHub deployments list", file=str(p)) from None
        deps = deployments_of(doc)
        if deps is None:
            raise PassportError("is not a deployments list: expected a JSON array of objects "
                                "with environment, sha, ref, created_at and statuses",
                                file=str(p))
        for i, d in enumerate(deps):
            where = f"deployment [{i}] id={d.get('id')}"
            env = str(d.get("environment") or "")
            payload = d.get("payload") if isinstance(d.get("payload"), dict) else {}
            if isinstance(payload.get("scope"), dict):
                scope = payload["scope"]
            elif environments is not None:
                if env not in environments:
                    skipped["non-production environment"] += 1
                    continue
                scope = environments[env] or {}
            elif _PROD.match(env):
                scope = {}
            else:
                skipped["non-production environment"] += 1
                continue
            if dimensions is not None:
                bad = [k for k in scope if k not in dimensions]
                if bad:
                    raise PassportError(f"{where}: scope names {bad}, which are not dimensions; "
                                        f"dimensions are: {', '.join(dimensions)}", file=str(p))
            ok = [s for s in (d.get("statuses") or []) if isinstance(s, dict)
                  and str(s.get("state", "")).lower() == "success"]
            if not ok:
                skipped["never succeeded"] += 1
                continue
            first = min(ok, key=lambda s: _ts(s.get("created_at"), str(p), where))
            ts = _ts(first.get("created_at"), str(p), where + " status")
            repo = str(d.get("repository_url") or "").rstrip("/").rsplit("/", 1)[-1] or None
            target = payload.get("service") or service or repo
            if not target:
                raise PassportError(f"{where}: cannot tell which service was deployed; add "
                                    "payload.service, or pass service=NAME", file=str(p))
            rollout = payload.get("rollout", payload.get("canary_percent"))
            sha = str(d.get("sha") or "")
            who = (d.get("creator") or {}).get("login") if isinstance(d.get("creator"), dict) \
                else None
            desc = f"Deploy {target} {d.get('ref')}@{sha[:7]} to {env}"
            if d.get("description"):
                desc += f": {d['description']}"
            if rollout is not None:
                desc += f" ({float(rollout):g}% canary)"
            rows.append({"id": f"gh-deployment-{d.get('id', i)}", "ts": ts, "kind": "deploy",
                         "target": str(target), "description": desc, "scope": dict(scope),
                         "rollout": None if rollout is None else float(rollout), "author": who,
                         "source": row_source(str(p), f"deployments[{i}] id={d.get('id')}")
                         if row_source else {"input": str(p)}})
    df = pd.DataFrame(rows, columns=["id", "ts", "kind", "target", "description", "scope",
                                     "rollout", "author", "source"])
    return df.sort_values(["ts", "id"], kind="stable").reset_index(drop=True), skipped
