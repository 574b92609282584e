"""Write an investigation as a re-executable notebook (nbformat 4).

The notebook holds a tagged ``parameters`` cell (papermill convention) with
the passport, metric and window, a cell that re-runs the investigation, and
the answer as it was computed, so a reader sees the result without running
anything and a re-run can be compared with it. Outputs are not stored: the
artifact stays small and diffable.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path


def _cell(kind: str, source: str, **meta) -> dict:
    cid = hashlib.sha1((kind + source).encode()).hexdigest()[:12]
    c = {"cell_type": kind, "id": cid, "metadata": meta, "source": source}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def write_artifact(inv, passport, artifact_dir, *, window=None) -> Path:
    """Write ``inv`` as ``ARTIFACT_DIR/<passport>-<metric>-<utc time>.ipynb``."""
    out = Path(artifact_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{inv.passport}-{inv.metric}")
    path = out / f"{safe}-{stamp}.ipynb"
    answer = inv.to_dict()
    answer["artifact"] = str(path)
    top = inv.top_cause
    params = (f"passport = {str(passport.directory)!r}\nmetric = {inv.metric!r}\n"
              f"window = {window if window is None or isinstance(window, str) else '/'.join(map(str, window))!r}\n"
              f"db = {inv.db!r}")
    cells = [
        _cell("markdown", f"# Investigation: {inv.metric} in {inv.passport}\n\n"
                          f"Verdict **{inv.verdict}**; onset {inv.divergence.get('onset')}; "
                          f"top cause {top['change_id'] + ' at ' + format(top['confidence'], '.0%') if top else 'none'}.\n\n"
                          f"Saved {stamp}. Run all cells to re-run it."),
        _cell("code", params, tags=["parameters"]),
        _cell("code", "import workbench as wb\n"
                      "inv = wb.investigate(passport, metric=metric, window=window, db=db, "
                      "artifact_dir=None)\nprint(inv.summary())"),
        _cell("markdown", "## The answer as saved\n\n```json\n"
                          + json.dumps({k: answer[k] for k in ("metric", "divergence", "verdict",
                                                               "slices", "causes",
                                                               "data_quality")},
                                       indent=1, default=str)[:20000] + "\n```"),
        _cell("code", "saved_top = " + repr(top["change_id"] if top else None) + "\n"
                      "now_top = inv.top_cause['change_id'] if inv.top_cause else None\n"
                      "print('same top cause as saved:', saved_top == now_top)"),
    ]
    nb = {"cells": cells, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "workbench": {"passport": inv.passport, "metric": inv.metric, "verdict": inv.verdict,
                      "saved_at": stamp}},
        "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path
