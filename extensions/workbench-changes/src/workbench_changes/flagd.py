"""flagd flag-definition history -> flag change rows with scopes and rollout percentages.

Input: successive flagd configurations (``{"$schema": ".../flags.json",
"flags": {...}}``, the format of https://flagd.dev/reference/flag-definitions/),
one file per revision, e.g. exported from the git history of the flags
repository. A revision's time is read from the flag-set ``metadata``
(``updatedAt``, ``timestamp`` or ``createdAt``; flagd allows arbitrary
flag-set metadata) or else from an ISO time in the file name
(``flags.2026-11-10T09-30-00Z.json``); its author from ``metadata.author``.

Every flag needs ``state``, ``variants`` and ``defaultVariant`` (flagd's newer
schema lets the last two go; the model below needs them), and
``defaultVariant`` must name one of the variants: a flag that lacks them is an
error naming the file and the flag (``flags["dark-mode"]``).

The exposure model
------------------
For every flag and revision the targeting is read as a list of *segments*
``(scope, percent)``: the percent of the scope that is served a *treatment*
variant. A boolean flag's treatment is ``true``; any other flag's treatment is
every variant other than the ``defaultVariant`` it had when it first appeared.

* no ``targeting`` (or ``{}``): everyone gets ``defaultVariant``;
* ``{"if": [cond1, v1, cond2, v2, ..., else]}``: each condition becomes a scope,
  the ``else`` branch the scope ``{}`` (the rest of the traffic);
* a condition is ``==``/``===`` on a variable (``{"platform": "ios"}``), ``in``
  with a list (``{"country": ["DE", "FR"]}``), ``or`` of equalities on one
  variable, or ``and`` of those (a conjunction). Variables map to passport
  dimensions through ``context_map`` (default: a variable named like a
  dimension); a rule on anything else (``email``, ``sem_ver``) cannot be
  expressed as a scope and is left out, which the description says;
* a branch value is a variant name, a nested ``if``, or ``fractional``
  (``[["on", 25], ["off", 75]]``, with or without a bucketing expression
  first): the treatment's share of the weights;
* ``state: DISABLED`` serves the default variant everywhere (0 %).

A change row is written whenever a (flag, scope) percent differs from the
previous revision's (a new flag is compared with nothing served), with
``rollout`` the new percent and ``kind: flag``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from workbench.errors import PassportError

from workbench.passport.text import load_json, missing_keys

_TIME_KEYS = ("updatedAt", "timestamp", "createdAt", "updated_at")
_FNAME_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T_ ](\d{2})[-:]?(\d{2})[-:]?(\d{2})?Z?")


EXPECTED = "a flagd flag-definition file (JSON with a 'flags' mapping)"
#: What each key every flag must have holds. flagd's own schema lets newer configurations
#: leave out variants (booleans) or set defaultVariant to null (the code's default); this
#: source needs both to tell the treatment from the control, so it asks for them.
_FLAG_KEYS = {
    "state": "ENABLED or DISABLED",
    "variants": 'a mapping of variant name -> value, such as {"on": true, "off": false}',
    "defaultVariant": "the name of the variant served when no rule applies (this source needs "
                      "it to tell the treatment from the control)",
}


def is_flagd_config(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("flags"), dict)


def check_flagd(doc, path) -> None:
    """Raise a :class:`PassportError` naming the file and the first flag (its JSON path,
    ``flags["dark-mode"].state``) that lacks what the exposure model needs."""
    if not is_flagd_config(doc):
        raise PassportError("is not a flagd flag-definition file: expected an object with "
                            "a 'flags' mapping", file=str(path))
    for key, flag in doc["flags"].items():
        where = f"flags[{json.dumps(key)}]"
        if not isinstance(flag, dict):
            raise PassportError(f"{where}: expected a flag definition (an object with "
                                f"{', '.join(_FLAG_KEYS)}), got {json.dumps(flag)[:40]}",
                                file=str(path))
        missing = [k for k in _FLAG_KEYS if k not in flag]
        if missing:
            raise PassportError(f"{where}: {missing_keys(missing, _FLAG_KEYS)}", file=str(path))
        state = flag["state"]
        if not isinstance(state, str) or state.upper() not in ("ENABLED", "DISABLED"):
            raise PassportError(f"{where}.state: {json.dumps(state)}; expected ENABLED or "
                                "DISABLED", file=str(path))
        variants = flag["variants"]
        if not isinstance(variants, dict) or not variants:
            raise PassportError(f"{where}.variants: {json.dumps(variants)[:40]}; expected "
                                + _FLAG_KEYS["variants"], file=str(path))
        default = flag["defaultVariant"]
        if not isinstance(default, str) or default not in variants:
            raise PassportError(f"{where}.defaultVariant: {json.dumps(default)} is not one of "
                                f"its variants; expected one of {', '.join(map(str, variants))}",
                                file=str(path))


def revision_time(doc: dict, path: Path) -> pd.Timestamp:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    for k in _TIME_KEYS:
        if meta.get(k):
            try:
                t = pd.Timestamp(str(meta[k]))
            except ValueError:
                raise PassportError(f"metadata.{k} {meta[k]!r} is not a time; expected ISO 8601 "
                                    "such as 2026-11-10T09:30:00Z", file=str(path)) from None
            return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    m = _FNAME_TIME.search(path.name)
    if m:
        return pd.Timestamp(f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4) or '00'}Z")
    raise PassportError("has no revision time: expected metadata.updatedAt in the flag set or an "
                        "ISO time in the file name (flags.2026-11-10T09-30-00Z.json)",
                        file=str(path))


class _Unsupported(Exception):
    pass


def _var(x) -> str | None:
    if isinstance(x, dict) and set(x) == {"var"}:
        v = x["var"]
        return v[0] if isinstance(v, list) and v else v
    return None


def _dim(var, cmap: dict[str, str] | None) -> str | None:
    """The dimension a context variable maps to (any name when no passport is known)."""
    if not isinstance(var, str):
        return None
    return var if cmap is None else cmap.get(var)


def _cond_scope(cond, cmap: dict[str, str] | None) -> dict:
    """A JsonLogic condition as a scope (dimension -> value or list)."""
    if not isinstance(cond, dict) or len(cond) != 1:
        raise _Unsupported(json.dumps(cond)[:80])
    op, args = next(iter(cond.items()))
    if op in ("==", "===") and isinstance(args, list) and len(args) == 2:
        a, b = args
        var, val = (_var(a), b) if _var(a) is not None else (_var(b), a)
        if var is None or _dim(var, cmap) is None or isinstance(val, (dict, list)):
            raise _Unsupported(f"{var} {op} {val}")
        return {_dim(var, cmap): str(val)}
    if op == "in" and isinstance(args, list) and len(args) == 2 and _var(args[0]) is not None \
            and isinstance(args[1], list):
        var = _var(args[0])
        if _dim(var, cmap) is None:
            raise _Unsupported(f"{var} in {args[1]}")
        return {_dim(var, cmap): [str(v) for v in args[1]]}
    if op == "or" and isinstance(args, list):
        parts = [_cond_scope(c, cmap) for c in args]
        dims = {k for p in parts for k in p}
        if len(dims) != 1 or any(len(p) != 1 for p in parts):
            raise _Unsupported("or across several variables")
        d = dims.pop()
        vals: list[str] = []
        for p in parts:
            v = p[d]
            vals += v if isinstance(v, list) else [v]
        return {d: sorted(set(vals))}
    if op == "and" and isinstance(args, list):
        out: dict = {}
        for c in args:
            for k, v in _cond_scope(c, cmap).items():
                if k in out:
                    raise _Unsupported(f"two conditions on {k}")
                out[k] = v
        return out
    raise _Unsupported(op)


def _treated(value, flag: dict, treatment: set[str]) -> float:
    """Percent of a branch served a treatment variant."""
    if isinstance(value, str):
        return 100.0 if value in treatment else 0.0
    if value is None:
        return 100.0 if flag.get("defaultVariant") in treatment else 0.0
    if isinstance(value, dict) and "fractional" in value:
        buckets = [b for b in value["fractional"] if isinstance(b, list) and b
                   and isinstance(b[0], str)]
        weights = [(b[0], float(b[1]) if len(b) > 1 else 1.0) for b in buckets]
        total = sum(w for _, w in weights)
        if total <= 0:
            raise _Unsupported("fractional with no weight")
        return round(100.0 * sum(w for v, w in weights if v in treatment) / total, 4)
    raise _Unsupported(json.dumps(value)[:80])


def segments(flag: dict, treatment: set[str], cmap: dict[str, str] | None) -> tuple[list, list]:
    """``[(scope, percent)]`` of one flag revision, and the rules left out."""
    if str(flag.get("state", "ENABLED")).upper() == "DISABLED":
        return [({}, 0.0)], []
    t = flag.get("targeting") or {}
    if not t:
        return [({}, _treated(None, flag, treatment))], []
    skipped: list[str] = []

    def walk(node, scope: dict, out: list) -> None:
        if isinstance(node, dict) and "if" in node:
            args = list(node["if"])
            while len(args) >= 2:
                cond, val = args[0], args[1]
                args = args[2:]
                try:
                    sc = {**scope, **_cond_scope(cond, cmap)}
                except _Unsupported as exc:
                    skipped.append(str(exc))
                    continue
                walk(val, sc, out)
            walk(args[0] if args else None, scope, out)
            return
        try:
            out.append((scope, _treated(node, flag, treatment)))
        except _Unsupported as exc:
            skipped.append(str(exc))

    out: list = []
    walk(t, {}, out)
    return out, skipped


def _scope_key(scope: dict) -> str:
    return json.dumps(scope, sort_keys=True)


def _scope_text(scope: dict) -> str:
    if not scope:
        return "all traffic"
    return ", ".join(f"{k}=" + ("|".join(v) if isinstance(v, list) else v)
                     for k, v in scope.items())


def read_history(files: list[Path], *, dimensions: list[str] | None = None,
                 context_map: dict[str, str] | None = None,
                 row_source=None) -> tuple[pd.DataFrame, list[str]]:
    """Change rows from successive flagd configs, and notes on what was left out.

    ``row_source(path, record) -> dict`` gives each row's ``source`` object.
    """
    revs = []
    for p in files:
        doc = load_json(Path(p), EXPECTED)
        check_flagd(doc, p)
        revs.append((revision_time(doc, Path(p)), str(p), doc))
    revs.sort(key=lambda r: (r[0], r[1]))
    cmap: dict[str, str] | None = None
    if dimensions is not None:
        cmap = {d: d for d in dimensions}
        cmap.update(context_map or {})
        bad = {k: v for k, v in cmap.items() if v not in dimensions}
        if bad:
            raise PassportError(f"context_map {bad} names columns that are not dimensions; "
                                f"dimensions are: {', '.join(dimensions)}", file="context_map")
    prev: dict[str, dict[str, float]] = {}
    baseline: dict[str, str] = {}
    rows, notes = [], []
    for n, (ts, path, doc) in enumerate(revs, start=1):
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        author = meta.get("author")
        label = str(meta.get("version") or meta.get("revision") or f"r{n}")
        flags = doc["flags"]
        for key in sorted(set(flags) | set(prev)):
            flag = flags.get(key)
            if flag is None:  # removed from the config: served nothing any more
                now, skipped = {_scope_key({}): 0.0}, []
            else:
                variants = flag["variants"]
                baseline.setdefault(key, str(flag.get("defaultVariant")))
                if all(isinstance(v, bool) for v in variants.values()):
                    treatment = {k for k, v in variants.items() if v is True}
                else:
                    treatment = {k for k in variants if k != baseline[key]}
                segs, skipped = segments(flag, treatment, cmap)
                now = {}
                for sc, pct in segs:
                    now.setdefault(_scope_key(sc), pct)  # first matching rule wins
            before = prev.get(key, {})
            for i, sk in enumerate(sorted(set(now) | set(before))):
                old, new = before.get(sk, 0.0), now.get(sk, 0.0)
                if old == new:
                    continue
                scope = json.loads(sk)
                verb = ("Remove flag" if flag is None else "Disable" if new == 0 else
                        "Enable" if new == 100 and old == 0 else "Ramp")
                desc = f"{verb} {key} for {_scope_text(scope)}: {old:g}% -> {new:g}%"
                if skipped:
                    desc += f" (rules on non-dimensions left out: {'; '.join(skipped)})"
                    notes += [f"{key} @ {label}: {s}" for s in skipped]
                rows.append({"id": f"flagd-{key}-{label}-{i}", "ts": ts, "kind": "flag",
                             "target": key, "description": desc, "scope": scope,
                             "rollout": float(new), "author": author,
                             "source": row_source(path, f"flags.{key} @ revision {label}")
                             if row_source else {"input": path}})
            prev[key] = now
    df = pd.DataFrame(rows, columns=["id", "ts", "kind", "target", "description", "scope",
                                     "rollout", "author", "source"])
    return df, sorted(set(notes))


class FlagdProvider:
    """flagd flag-definition history (successive flags.json revisions) -> flag change rows."""

    name = "flagd"

    def sample_input(self) -> Path:
        return Path(__file__).parent / "data" / "sample" / "flagd-history"

    def read_changes(self, path, *, dimensions: list[str] | None = None,
                     context_map: dict[str, str] | None = None) -> pd.DataFrame:
        """Change rows (passport columns plus ``source``) from a file or folder of revisions."""
        from workbench.passport import sha256_file
        from workbench.sources import as_input_paths

        files = as_input_paths(path, patterns=("*.json",))
        hashes = {str(f): sha256_file(f) for f in files}

        def src(p, record):
            return {"plugin": "flagd", "input": str(Path(p).resolve()), "sha256": hashes[str(p)],
                    "record": record}

        df, _ = read_history(files, dimensions=dimensions, context_map=context_map,
                             row_source=src)
        return df
