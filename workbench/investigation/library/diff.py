"""Readable diffs between two saved versions (verdict, divergence, inputs, slices,
causes and their evidence, decisions, data quality, the verification).

Lists are compared as ranked lists keyed by identity (a cause by its change
id, a slice by its filter), in the manner of a line diff (Hunt and McIlroy,
"An algorithm for differential file comparison", 1976) but on records; the
notebooks' text twins can be appended as a unified diff (:mod:`difflib`).
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

from ...errors import UsageError
from ..._format import fmt_filter as _fmt_filter, pct as _pct
from .integrity import _checked
from .store import library_root, resolve_version


def diff_versions(root: str | Path | None, a: str, b: str | None = None, *,
                  text: bool = False) -> str:
    """A readable diff of two versions: verdict, divergence, inputs, slices, causes
    with their confidence and evidence lines, decisions, data quality.

    Parameters
    ----------
    a, b:
        Version refs (:func:`resolve_version`). With ``b`` omitted, ``a`` is
        compared with its parent.
    text:
        Append a unified diff of the two notebooks' text twins (py:percent).

    Examples
    --------
    >>> iid = "inv-20261124-211853-3fa2"
    >>> print(diff_versions("investigations", f"{iid}@1", f"{iid}@2"))  # doctest: +SKIP
    inv-20261124-211853-3fa2@v0001 -> inv-20261124-211853-3fa2@v0002
    Causes:
      ~ #1 chg-0431 flag new_checkout_flow: confidence 87% -> 91%
    Decisions:
      + chg-0431 confirmed by ana: "payment step broken on iOS 5.2"
    """
    root = library_root(root)
    vb = resolve_version(root, a if b is None else b)
    if b is None:
        if vb.parent is None:
            raise UsageError(f"{vb.version_id} is the first version; give two versions to diff")
        va = resolve_version(root, vb.parent)
    else:
        va = resolve_version(root, a)
    _checked(root, va)
    _checked(root, vb)
    A = json.loads(Path(va.answer_path).read_text(encoding="utf-8"))
    B = json.loads(Path(vb.answer_path).read_text(encoding="utf-8"))
    lines = [f"{va.version_id} -> {vb.version_id}",
             f"  {va.version_id}: {va.created_at[:19]} by {va.author}: {va.message}",
             f"  {vb.version_id}: {vb.created_at[:19]} by {vb.author}: {vb.message}", ""]
    body = diff_answers(A, B)
    lines += body or ["No change in the answer."]
    if text:
        ta = Path(va.text_path).read_text(encoding="utf-8").splitlines(keepends=True)
        tb = Path(vb.text_path).read_text(encoding="utf-8").splitlines(keepends=True)
        lines += ["", "Notebook text (py:percent):", "".join(difflib.unified_diff(
            ta, tb, fromfile=Path(va.text_path).name, tofile=Path(vb.text_path).name)).rstrip()
            or "  (identical)"]
    return "\n".join(lines)


def diff_answers(A: dict, B: dict) -> list[str]:
    """The lines of a readable diff between two saved answers (empty: no change)."""
    out: list[str] = []
    if A.get("verdict") != B.get("verdict"):
        out.append(f"Verdict: {A.get('verdict')} -> {B.get('verdict')}")
    if (A.get("metric"), A.get("passport")) != (B.get("metric"), B.get("passport")):
        out.append(f"Subject: {A.get('metric')} in {A.get('passport')} -> "
                   f"{B.get('metric')} in {B.get('passport')}")
    da, db = A.get("divergence") or {}, B.get("divergence") or {}
    dl = []
    if da.get("onset") != db.get("onset"):
        dl.append(f"  onset {da.get('onset')} -> {db.get('onset')}")
    if (da.get("window") or None) != (db.get("window") or None):
        dl.append(f"  window {da.get('window')} -> {db.get('window')}")
    for k, f in (("relative_change", "{:+.2%}"), ("baseline", "{:.4g}"), ("observed", "{:.4g}"),
                 ("score", "{:.2f}")):
        x, y = da.get(k), db.get(k)
        if x is None and y is None:
            continue
        if x is None or y is None or abs(x - y) > 1e-9 * max(1.0, abs(x)):
            sx = "-" if x is None else f.format(x)
            sy = "-" if y is None else f.format(y)
            if sx != sy:
                dl.append(f"  {k} {sx} -> {sy}")
    if dl:
        out += ["Divergence:", *dl]
    pa = {p.get("path"): p.get("sha256") for p in A.get("provenance") or []}
    pb = {p.get("path"): p.get("sha256") for p in B.get("provenance") or []}
    il = []
    for path in sorted(set(pa) | set(pb), key=str):
        if path not in pa:
            il.append(f"  + {path} (sha256 {str(pb[path])[:12]})")
        elif path not in pb:
            il.append(f"  - {path}")
        elif pa[path] != pb[path]:
            il.append(f"  ~ {path}: sha256 {str(pa[path])[:12]} -> {str(pb[path])[:12]}")
    if il:
        out += ["Inputs:", *il]
    pr_a, pr_b = A.get("params") or {}, B.get("params") or {}
    if pr_a != pr_b:
        out += ["Parameters:"] + [f"  {k}: {pr_a.get(k)!r} -> {pr_b.get(k)!r}"
                                  for k in sorted(set(pr_a) | set(pr_b), key=str)
                                  if pr_a.get(k) != pr_b.get(k)]
    out += _diff_ranked("Slices", A.get("slices") or [], B.get("slices") or [],
                        key=lambda s: _fmt_filter(s.get("filter")),
                        val=lambda s: s.get("explained_share"), what="explains", limit=5)
    out += _diff_causes(A.get("causes") or [], B.get("causes") or [])
    out += _diff_list("Decisions", A.get("decisions") or [], B.get("decisions") or [],
                      lambda d: f"{d['hypothesis']} {d['status']} by {d.get('author')}"
                                + (f': "{d["note"]}"' if d.get("note") else ""))
    out += _diff_list("Actions", A.get("actions") or [], B.get("actions") or [],
                      lambda d: f"{d['action']} {d.get('target') or ''} by {d.get('author')}"
                                + (f': "{d["note"]}"' if d.get("note") else ""))
    out += _diff_list("Notes", A.get("notes") or [], B.get("notes") or [],
                      lambda d: f'{d.get("author")}: "{d["text"]}"')
    out += _diff_list("Data quality", A.get("data_quality") or [], B.get("data_quality") or [],
                      lambda f: f"[{f.get('severity')}] {f.get('check')}: {f.get('detail')}"
                                + (f" -> {f['bearing']}" if f.get("bearing") else ""))
    ka = {k: v for k, v in (A.get("queries") or {}).items()}
    kb = {k: v for k, v in (B.get("queries") or {}).items()}
    changed_q = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
    if changed_q:
        out.append("Queries changed: " + ", ".join(changed_q))
    return out


def _diff_list(title: str, a: list, b: list, fmt) -> list[str]:
    sa, sb = [fmt(x) for x in a], [fmt(x) for x in b]
    lines = [f"  - {x}" for x in sa if x not in sb] + [f"  + {x}" for x in sb if x not in sa]
    return [f"{title}:", *lines] if lines else []


def _diff_ranked(title, a, b, *, key, val, what, limit) -> list[str]:
    ia = {key(x): (i, x) for i, x in enumerate(a[:limit], 1)}
    ib = {key(x): (i, x) for i, x in enumerate(b[:limit], 1)}
    lines = []
    for k, (i, x) in ib.items():
        if k not in ia:
            lines.append(f"  + #{i} {k}: {what} {_pct(val(x))}")
            continue
        j, y = ia[k]
        bits = []
        if i != j:
            bits.append(f"rank #{j} -> #{i}")
        if _pct(val(y)) != _pct(val(x)):
            bits.append(f"{what} {_pct(val(y))} -> {_pct(val(x))}")
        if bits:
            lines.append(f"  ~ {k}: " + ", ".join(bits))
    for k, (j, y) in ia.items():
        if k not in ib:
            lines.append(f"  - #{j} {k} (was {what} {_pct(val(y))})")
    return [f"{title}:", *lines] if lines else []


def _diff_causes(a: list, b: list) -> list[str]:
    ia = {c["change_id"]: (i, c) for i, c in enumerate(a, 1)}
    ib = {c["change_id"]: (i, c) for i, c in enumerate(b, 1)}
    lines = []
    for cid, (i, c) in ib.items():
        name = f"{cid} {c.get('kind')} {c.get('target')}"
        if cid not in ia:
            if i <= 10:
                lines.append(f"  + #{i} {name}: confidence {_pct(c.get('confidence'))}")
                lines += [f"      + {e}" for e in c.get("evidence", [])]
            continue
        j, p = ia[cid]
        bits = []
        if i != j:
            bits.append(f"rank #{j} -> #{i}")
        if _pct(p.get("confidence")) != _pct(c.get("confidence")) or \
                abs((p.get("confidence") or 0) - (c.get("confidence") or 0)) >= 0.001:
            bits.append(f"confidence {_pct(p.get('confidence'))} -> {_pct(c.get('confidence'))}")
        ev_a, ev_b = list(p.get("evidence", [])), list(c.get("evidence", []))
        ev_lines = [f"      - {e}" for e in ev_a if e not in ev_b] + \
                   [f"      + {e}" for e in ev_b if e not in ev_a]
        if bits or ev_lines:
            lines.append(f"  ~ #{i} {name}" + (": " + ", ".join(bits) if bits else ""))
            lines += ev_lines
    for cid, (j, p) in ia.items():
        if cid not in ib and j <= 10:
            lines.append(f"  - #{j} {cid} {p.get('kind')} {p.get('target')} (was "
                         f"{_pct(p.get('confidence'))})")
    return ["Causes:", *lines] if lines else []
