"""The verification part of a saved answer: its digest, and what a re-run changed in it.

A verified investigation carries, per top hypothesis, the DoWhy estimate of
its effect with an interval, the refuters that tried to break it and the
evidence lines they wrote (:mod:`workbench.causal.verify`: backdoor linear
regression refuted by placebo treatment, random common cause, data subsets
and placebo times, after Sharma and Kiciman, "DoWhy: An End-to-End Library
for Causal Inference", 2020). Reproducing such a version must reproduce those
lines too; a re-run that skipped the verification, or whose verdicts,
estimates, refuters or lines moved, is not a reproduction.

:func:`verification_digest` keeps what is compared (it goes into the
notebook's ``saved`` cell); :func:`verification_differences` compares two
digests and returns one structured record per difference::

    {"change_id": "chg-0431" | None, "field": "verification" | "hypothesis" |
     "verdict" | "estimate" | "refuter" | "evidence" | "attribution",
     "saved": ..., "now": ..., "text": "one readable line"}
"""
from __future__ import annotations

from typing import Any

__all__ = ["verification_differences", "verification_digest"]


def verification_digest(verification: dict | None) -> dict | None:
    """What a re-run's verification is compared with (None: the answer was not verified).

    Parameters
    ----------
    verification:
        The ``verification`` of a saved answer (``VerificationReport.to_dict()``).
    """
    if not verification:
        return None
    causes = [{"change_id": c.get("change_id"), "verdict": c.get("verdict"),
               "estimate": c.get("estimate"), "ci": [c.get("ci_low"), c.get("ci_high")],
               "refuters": {r.get("name"): bool(r.get("passed"))
                            for r in c.get("refuters") or []},
               "evidence": [str(x) for x in c.get("evidence") or []]}
              for c in verification.get("causes") or []]
    attribution = verification.get("attribution") or {}
    return {"causes": causes, "attribution": attribution.get("top"),
            "attribution_error": verification.get("attribution_error")}


def _diff(cid: str | None, field: str, saved: Any, now: Any, text: str) -> dict:
    return {"change_id": cid, "field": field, "saved": saved, "now": now, "text": text}


def _moved(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > tolerance


def _cause_differences(s: dict, n: dict, tolerance: float) -> list[dict]:
    cid, out = s["change_id"], []
    if s.get("verdict") != n.get("verdict"):
        out.append(_diff(cid, "verdict", s.get("verdict"), n.get("verdict"),
                         f"{cid}: verification verdict {s.get('verdict')} -> {n.get('verdict')}"))
    if _moved(s.get("estimate"), n.get("estimate"), tolerance):
        out.append(_diff(cid, "estimate", s.get("estimate"), n.get("estimate"),
                         f"{cid}: estimated effect {s.get('estimate')} -> {n.get('estimate')}"))
    rs, rn = s.get("refuters") or {}, n.get("refuters") or {}
    for name in sorted(set(rs) | set(rn)):
        if rs.get(name) != rn.get(name):
            word = {True: "passed", False: "failed", None: "not run"}
            out.append(_diff(cid, "refuter", {name: rs.get(name)}, {name: rn.get(name)},
                             f"{cid}: refuter {name} {word[rs.get(name)]} -> "
                             f"{word[rn.get(name)]}"))
    lost = [x for x in s.get("evidence") or [] if x not in (n.get("evidence") or [])]
    new = [x for x in n.get("evidence") or [] if x not in (s.get("evidence") or [])]
    if lost or new:
        out.append(_diff(cid, "evidence", lost, new,
                         f"{cid}: {len(lost)} verification line(s) lost, {len(new)} new"))
    return out


def verification_differences(saved: dict | None, now: dict | None, *,
                             tolerance: float = 1e-3) -> list[dict]:
    """How the verification of a re-run differs from the saved one (empty: the same).

    Parameters
    ----------
    saved, now:
        Digests (:func:`verification_digest`). A saved digest of None (the
        version was not verified) compares with nothing; a re-run digest of
        None when one was saved loses every verification line, which is one
        difference naming them.
    tolerance:
        The largest absolute move of an estimate that still counts as the same.

    Returns
    -------
    list of dict
        One record per difference (see the module docstring).
    """
    if not saved:
        return []
    if not now:
        lines = [x for c in saved["causes"] for x in c.get("evidence") or []]
        verdicts = ", ".join(f"{c['change_id']} {c['verdict']}" for c in saved["causes"])
        return [_diff(None, "verification", {"causes": verdicts, "evidence": lines}, None,
                      f"verification not re-run: the saved answer verified {verdicts or 'nothing'}"
                      f"; its {len(lines)} verification line(s) are missing")]
    out: list[dict] = []
    by_now = {c["change_id"]: c for c in now["causes"]}
    by_saved = {c["change_id"]: c for c in saved["causes"]}
    for cid, s in by_saved.items():
        if cid not in by_now:
            out.append(_diff(cid, "hypothesis", s.get("verdict"), None,
                             f"{cid}: verified as saved ({s.get('verdict')}), not in the "
                             f"re-run's verification; {len(s.get('evidence') or [])} line(s) "
                             "lost"))
        else:
            out += _cause_differences(s, by_now[cid], tolerance)
    for cid, n in by_now.items():
        if cid not in by_saved:
            out.append(_diff(cid, "hypothesis", None, n.get("verdict"),
                             f"{cid}: verified by the re-run ({n.get('verdict')}), not as saved"))
    if saved.get("attribution") != now.get("attribution"):
        out.append(_diff(None, "attribution", saved.get("attribution"), now.get("attribution"),
                         f"mechanism attribution {saved.get('attribution')} -> "
                         f"{now.get('attribution')}"))
    return out
