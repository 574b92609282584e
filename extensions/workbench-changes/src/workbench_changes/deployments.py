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

* every deployment needs ``environment``, ``sha`` and ``created_at``, and every
  ``success`` status its ``created_at``; one that lacks them is an error naming
  the file and the deployment (``deployments[3] (id=1821530)``), before anything
  is written;
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

from workbench.passport.text import load_json, missing_keys

_PROD = re.compile(r"^(production|prod)([-_].*)?$", re.IGNORECASE)


EXPECTED = ("a GitHub deployments list (a JSON array of deployment objects with environment, "
            "sha, created_at and statuses)")
#: Keys every deployment must have, and what they hold.
_REQUIRED = {
    "environment": "the environment it went to, such as production",
    "sha": "the commit SHA that was deployed",
    "created_at": "the time it was created, ISO 8601 such as 2026-11-10T09:30:00Z",
}
#: A list is taken for a deployments list when one of its objects has one of these keys;
#: the others are then checked one by one, so a record missing a key gets a located error.
_DEPLOYMENT_KEYS = ("environment", "sha", "statuses", "statuses_url")


def deployments_of(doc) -> list | None:
    """The deployment list of a parsed JSON document, or None if it is not one."""
    if isinstance(doc, dict) and isinstance(doc.get("deployments"), list):
        return doc["deployments"]
    if isinstance(doc, list) and any(isinstance(d, dict) and any(k in d for k in _DEPLOYMENT_KEYS)
                                     for d in doc):
        return doc
    return None


def _where(i: int, d, suffix: str = "") -> str:
    ident = d.get("id") if isinstance(d, dict) else None
    return f"deployments[{i}]{suffix}" + (f" (id={ident})" if ident is not None else "")


def _ts(value, path: str, where: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(str(value))
    except ValueError:
        t = None
    if t is None or pd.isna(t):
        raise PassportError(f"{where}: {json.dumps(value)} is not a time; expected ISO 8601 such "
                            "as 2026-11-10T09:30:00Z", file=path)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def check_deployments(deps: list, path) -> None:
    """Raise a :class:`PassportError` naming the file and the first deployment (its index and
    id, ``deployments[3] (id=1821530)``) that lacks a required key or holds a bad one."""
    path = str(path)
    for i, d in enumerate(deps):
        if not isinstance(d, dict):
            raise PassportError(f"{_where(i, d)}: expected a deployment object, got "
                                f"{json.dumps(d)[:40]}", file=path)
        missing = [k for k in _REQUIRED if d.get(k) in (None, "")]
        if missing:
            raise PassportError(f"{_where(i, d)}: {missing_keys(missing, _REQUIRED)}", file=path)
        _ts(d["created_at"], path, _where(i, d, ".created_at"))
        statuses = d.get("statuses")
        if statuses is None:
            continue
        if not isinstance(statuses, list):
            raise PassportError(f"{_where(i, d, '.statuses')}: expected a list of status "
                                "objects (state, created_at)", file=path)
        for j, st in enumerate(statuses):
            if not isinstance(st, dict) or not st.get("state"):
                raise PassportError(f"{_where(i, d, f'.statuses[{j}]')}: expected a status "
                                    "object with state and created_at", file=path)
            if str(st["state"]).lower() == "success":
                if st.get("created_at") in (None, ""):
                    raise PassportError(f"{_where(i, d, f'.statuses[{j}]')}: missing required "
                                        "key 'created_at'; expected the time the deployment "
                                        "succeeded, ISO 8601", file=path)
                _ts(st["created_at"], path, _where(i, d, f".statuses[{j}].created_at"))


def read_deployments(files: list[Path], *, environments: dict | None = None,
                     service: str | None = None, dimensions: list[str] | None = None,
                     row_source=None) -> tuple[pd.DataFrame, dict]:
    """Deploy change rows from deployment lists, and counts of what was left out."""
    rows = []
    skipped = {"never succeeded": 0, "non-production environment": 0}
    for p in files:
        doc = load_json(Path(p), EXPECTED)
        deps = deployments_of(doc)
        if deps is None:
            raise PassportError("is not a deployments list: expected a JSON array of objects "
                                "with environment, sha, ref, created_at and statuses",
                                file=str(p))
        check_deployments(deps, p)
        for i, d in enumerate(deps):
            where = _where(i, d)
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
            ts = min(_ts(s["created_at"], str(p), where) for s in ok)  # checked above
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
