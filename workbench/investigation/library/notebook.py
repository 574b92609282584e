"""Investigations as re-executable notebooks, built from ``notebooks/investigation_template.ipynb``.

The template is a plain notebook whose cells carry tags:

``parameters``
    defaults (papermill convention); saving adds an ``injected-parameters``
    cell after it with the investigation's passport, metric, window, store,
    id and version, so ``papermill -p ...`` can re-parameterize an artifact;
``title``, ``saved-answer``, ``decisions``
    markdown replaced by the investigation's title, its answer as saved and
    its decisions, notes and actions;
``saved``
    code replaced by ``saved = {...}``: the verdict, the ranked causes with
    their confidence and the SHA-256 of every input file.

Executing the artifact re-runs the investigation from the data; its last
cell displays a :class:`ReproductionCheck` comparing the re-run with
``saved`` (shown as text, and recorded under the MIME type
:data:`MIME_REPRODUCTION` the way scrapbook records values, so a headless
run can be checked by a program). Artifacts are written without outputs; the
saved answer also lives in the notebook metadata (``metadata.workbench``)
and, for diffs, in a JSON and a jupytext ``py:percent`` twin (see
:mod:`workbench.investigation.library`). Re-running one is
:func:`workbench.investigation.run.rerun_investigation`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import pprint
from dataclasses import dataclass
from pathlib import Path

from ..render import answer_markdown, decisions_markdown
from ..render import title_markdown as _title_md
from .verification import verification_differences, verification_digest

MIME_REPRODUCTION = "application/vnd.workbench.reproduction+json"
TEMPLATE_ENV = "WORKBENCH_NOTEBOOK_TEMPLATE"
TEMPLATE_NAME = "investigation_template.ipynb"
_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


# --------------------------------------------------------------------------- template
def template_path() -> Path | None:
    """``$WORKBENCH_NOTEBOOK_TEMPLATE``, else ``notebooks/investigation_template.ipynb`` of the
    source tree, else None (a built-in copy of the template is used)."""
    env = os.environ.get(TEMPLATE_ENV)
    if env:
        return Path(env)
    p = Path(__file__).resolve().parents[3] / "notebooks" / TEMPLATE_NAME
    return p if p.is_file() else None


def load_template() -> dict:
    """The template notebook as a dict (nbformat 4)."""
    p = template_path()
    if p is None:
        return _builtin_template()
    try:
        nb = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from ...errors import UsageError
        raise UsageError(f"{p}: cannot read the investigation template: {exc}") from None
    tags = {t for c in nb.get("cells", []) for t in c.get("metadata", {}).get("tags", [])}
    missing = {"parameters", "saved"} - tags
    if missing:
        from ...errors import UsageError
        raise UsageError(f"{p}: the investigation template has no cell tagged "
                         f"{', '.join(sorted(missing))}")
    for c in nb["cells"]:  # on disk, sources may be lists of lines
        if isinstance(c.get("source"), list):
            c["source"] = "".join(c["source"])
    return nb


def _cell(kind: str, source: str, tags: list[str] | None = None, cid: str | None = None) -> dict:
    cid = cid or hashlib.sha1((kind + source).encode()).hexdigest()[:12]
    c = {"cell_type": kind, "id": cid, "metadata": {"tags": tags} if tags else {},
         "source": source}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def _builtin_template() -> dict:
    """A minimal template with the same tags, for installs without the source tree."""
    cells = [
        _cell("markdown", "# Investigation", ["title"], "title"),
        _cell("code", "passport = 'sample_data/demo'\nmetric = 'conversion_rate'\nwindow = None\n"
                      "db = None\ninvestigation_id = None\nversion = None\nmemory = None\n"
                      "memory_asof = None\nverify = None", ["parameters"], "parameters"),
        _cell("markdown", "## The answer as saved", ["saved-answer"], "saved-answer"),
        _cell("code", "saved = None", ["saved"], "saved"),
        _cell("code", "from workbench.investigation import rerun_investigation\n\n"
                      "inv = rerun_investigation(passport, metric=metric, window=window, db=db, "
                      "memory=memory, memory_asof=memory_asof, verify=verify)\n"
                      "print(inv.summary())",
              cid="rerun"),
        _cell("markdown", "## Decisions", ["decisions"], "decisions"),
        _cell("code", "from workbench.investigation import reproduction_check\n\n"
                      "reproduction_check(inv, saved)", cid="check"),
    ]
    return {"cells": cells, "metadata": {"kernelspec": dict(_KERNELSPEC)}, "nbformat": 4,
            "nbformat_minor": 5}


# --------------------------------------------------------------------------- building
def inject_parameters(nb: dict, params: dict) -> dict:
    """Add (or replace) the ``injected-parameters`` cell after the ``parameters`` cell.

    The papermill convention: the template's defaults stay visible, the values
    of this run follow them.
    """
    nb = copy.deepcopy(nb)
    cells = [c for c in nb["cells"] if "injected-parameters" not in _tags(c)]
    src = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    new = _cell("code", src.rstrip("\n"), ["injected-parameters"], "injected-parameters")
    at = next((i for i, c in enumerate(cells) if "parameters" in _tags(c)), -1)
    cells.insert(at + 1, new)
    nb["cells"] = cells
    return nb


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def saved_digest(answer: dict) -> dict:
    """What a re-run is compared with: verdict, onset, ranked causes, input hashes, and
    the verification (None when the answer was not verified)."""
    return {
        "investigation_id": answer.get("investigation_id"),
        "verdict": answer.get("verdict"),
        "onset": (answer.get("divergence") or {}).get("onset"),
        "causes": [[c["change_id"], c.get("confidence")]
                   for c in (answer.get("causes") or [])[:10]],
        "inputs": {p.get("path"): p.get("sha256") for p in answer.get("provenance") or []},
        "verification": verification_digest(answer.get("verification")),
    }


def build_notebook(answer: dict, params: dict, *, template: dict | None = None) -> dict:
    """The artifact for one saved answer: the template, filled in, without outputs."""
    nb = copy.deepcopy(template if template is not None else load_template())
    title = _title_md(answer, params)
    for c in nb["cells"]:
        tags = _tags(c)
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
        if "title" in tags:
            c["source"] = title
        elif "saved-answer" in tags:
            c["source"] = answer_markdown(answer)
        elif "saved" in tags:
            c["source"] = ("# The answer as saved, compared with the re-run by the last cell\n"
                           "saved = " + pprint.pformat(saved_digest(answer), width=92,
                                                       sort_dicts=False))
        elif "decisions" in tags:
            c["source"] = decisions_markdown(answer)
    nb = inject_parameters(nb, params)
    md = nb.setdefault("metadata", {})
    md["kernelspec"] = dict(_KERNELSPEC)
    md["language_info"] = {"name": "python"}
    md.pop("jupytext", None)  # the artifact's twin is written by the library, not paired
    md["workbench"] = {"investigation_id": answer.get("investigation_id"),
                       "version": params.get("version"), "params": params, "answer": answer}
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    return nb


def notebook_text(nb: dict) -> str:
    """The notebook as text in jupytext's ``py:percent`` format, for line diffs.

    Written here rather than by jupytext: importing jupytext (through
    nbformat and jsonschema) costs seconds, and saving sits on the path of
    every ``investigate``. ``jupytext --to ipynb`` reads the result back
    (tests check the round trip).
    """
    ks = (nb.get("metadata") or {}).get("kernelspec") or _KERNELSPEC
    out = ["# ---\n# jupyter:\n#   kernelspec:\n"
           f"#     display_name: {ks.get('display_name', 'Python 3')}\n"
           f"#     language: {ks.get('language', 'python')}\n"
           f"#     name: {ks.get('name', 'python3')}\n# ---\n"]
    for c in nb["cells"]:
        tags = _tags(c)
        meta = f" tags={json.dumps(tags)}" if tags else ""
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        src = src.rstrip("\n")
        if c["cell_type"] == "markdown":
            body = "\n".join("# " + x if x else "#" for x in src.splitlines())
            out.append(f"# %% [markdown]{meta}\n{body}\n")
        elif c["cell_type"] == "raw":
            body = "\n".join("# " + x if x else "#" for x in src.splitlines())
            out.append(f"# %% [raw]{meta}\n{body}\n")
        else:
            out.append(f"# %%{meta}\n{src}\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- checking
@dataclass(frozen=True)
class ReproductionCheck:
    """A re-run compared with the saved answer.

    ``reproduced`` is True when the verdict and the ranked causes (ids in
    order, confidences within ``tolerance``) are the same and, when the saved
    answer was verified, so is the verification (``verification`` lists what
    differs there, one record per difference, see
    :mod:`workbench.investigation.library.verification`); None when nothing
    was saved (the bare template).
    """

    reproduced: bool | None
    saved_verdict: str | None
    verdict: str
    saved_top: str | None
    top: str | None
    same_ranking: bool | None
    max_confidence_delta: float | None
    inputs_changed: tuple[str, ...]
    differences: tuple[str, ...]
    causes: tuple[tuple[str, float], ...] = ()
    verification: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["verification"] = [dict(v) for v in self.verification]
        d["inputs_changed"] = list(self.inputs_changed)
        d["differences"] = list(self.differences)
        d["causes"] = [list(c) for c in self.causes]
        d["text"] = self.text()
        return d

    def text(self) -> str:
        if self.reproduced is None:
            return (f"nothing saved to compare with; verdict {self.verdict}, top cause "
                    f"{self.top or '-'}")
        head = (f"reproduced: verdict {self.verdict}, top cause {self.top or '-'}, same ranking"
                if self.reproduced else
                "NOT reproduced: " + "; ".join(self.differences))
        if self.inputs_changed:
            head += " (inputs changed since saved: " + ", ".join(self.inputs_changed) + ")"
        return head

    def __repr__(self) -> str:
        return f"<ReproductionCheck {self.text()}>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": self.text(), MIME_REPRODUCTION: self.to_dict()}


def reproduction_check(inv, saved: dict | None, *, tolerance: float = 1e-3) -> ReproductionCheck:
    """Compare a re-run Investigation with a saved digest (:func:`saved_digest`)."""
    causes = tuple((c["change_id"], float(c.get("confidence") or 0.0)) for c in inv.causes[:10])
    top = causes[0][0] if causes else None
    if not saved:
        return ReproductionCheck(None, None, inv.verdict, None, top, None, None, (), (), causes)
    diffs = []
    if saved.get("verdict") != inv.verdict:
        diffs.append(f"verdict {saved.get('verdict')} -> {inv.verdict}")
    s_causes = [(c[0], float(c[1] or 0.0)) for c in saved.get("causes") or []]
    s_ids = [c[0] for c in s_causes]
    # The order is compared among the causes that carry confidence; those at ~0 (within
    # the tolerance, then and now) are tied, and a tie's order says nothing
    lead = [c for c, p in causes[:len(s_causes)] if p > tolerance]
    s_lead = [c for c, p in s_causes if p > tolerance]
    same = lead == s_lead and len(causes) >= len(s_causes)
    if not same:
        diffs.append(f"ranking {s_ids[:5]} -> {[c[0] for c in causes[:5]]}")
    now = dict(causes)
    deltas = [abs(p - now[c]) for c, p in s_causes if c in now]
    mx = max(deltas, default=0.0)
    if mx > tolerance:
        diffs.append(f"confidence moved by up to {mx:.3f}")
    now_inputs = {p.get("path"): p.get("sha256") for p in inv.provenance or []}
    changed = tuple(sorted(str(k) for k, v in (saved.get("inputs") or {}).items()
                           if now_inputs.get(k) != v))
    ver = getattr(inv, "verification", None)
    ver_diffs = verification_differences(
        saved.get("verification"), verification_digest(None if ver is None else ver.to_dict()),
        tolerance=tolerance)
    diffs += [d["text"] for d in ver_diffs]
    return ReproductionCheck(reproduced=not diffs, saved_verdict=saved.get("verdict"),
                             verdict=inv.verdict, saved_top=s_ids[0] if s_ids else None,
                             top=top, same_ranking=same, max_confidence_delta=round(mx, 6),
                             inputs_changed=changed, differences=tuple(diffs), causes=causes,
                             verification=tuple(ver_diffs))
