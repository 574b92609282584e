"""The notebooks run on a real kernel (nbclient), from the repository root, on the demo passport.

- the quickstart investigates conversion_rate and shows the culprit of
  ``sample_data/demo/truth.json``;
- the investigation template runs as it is;
- ``workbench investigate`` writes a versioned artifact whose headless
  execution reproduces the same top cause and ranking, and a second run
  adds a version with a readable diff.

Stores and libraries go to temporary folders (parameters injected the
papermill way), so the repository is left as it was.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.investigation import artifact as A
from workbench.investigation import library as V
from workbench.investigation.run import reopen

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "sample_data" / "demo"
TIMEOUT = 120  # per cell; each notebook takes well under 30 s here


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((DEMO / "truth.json").read_text())


def execute(path: Path, params: dict, cwd: Path = REPO) -> tuple[dict, float]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb = nbformat.from_dict(A.inject_parameters(nb, params))
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    print(f"{path.name}: executed in {seconds:.1f}s")
    return nb, seconds


def text_of(nb) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif "data" in o:
                out.append(o["data"].get("text/plain", ""))
    return "\n".join(out)


def test_quickstart(tmp_path, truth):
    lib = tmp_path / "investigations"
    nb, _ = execute(REPO / "notebooks" / "quickstart.ipynb",
                          {"db": str(tmp_path / "store.duckdb"), "library": str(lib)})
    text = text_of(nb)
    culprit = truth["culprit_ids"][0]
    assert f"top={culprit}" in text  # the Investigation's repr
    assert "Verdict: CHANGE" in text
    assert "platform" in text and "app_version" in text  # the slices table
    assert "SELECT" in text.upper()  # the query shown, then run
    m = re.search(r"observed conversion_rate: (\S+) from the query, (\S+) in the answer", text)
    assert m and float(m.group(1)) == pytest.approx(float(m.group(2)), rel=1e-5)
    (entry,) = V.list_investigations(lib)
    assert entry.latest.top_cause == culprit and entry.versions == 1


def test_quickstart_runs_from_the_notebooks_folder(tmp_path, truth):
    """Started where Jupyter opens it (issue 17): the demo is found from the package."""
    nb, _ = execute(REPO / "notebooks" / "quickstart.ipynb",
                    {"db": str(tmp_path / "store.duckdb"), "library": None},
                    cwd=REPO / "notebooks")
    assert f"top={truth['culprit_ids'][0]}" in text_of(nb)
    assert not (REPO / "notebooks" / "sample_data").exists()


def test_template_runs_as_is(tmp_path, truth):
    nb, _ = execute(REPO / "notebooks" / "investigation_template.ipynb",
                          {"db": str(tmp_path / "store.duckdb")})
    checks = [o["data"][A.MIME_REPRODUCTION] for c in nb.cells for o in c.get("outputs", [])
              if A.MIME_REPRODUCTION in o.get("data", {})]
    assert len(checks) == 1
    assert checks[0]["reproduced"] is None  # nothing saved in the bare template
    assert checks[0]["top"] == truth["culprit_ids"][0]
    # verified by default (set_options(verify=True)): DoWhy's verdict, its refuters, the
    # counterfactual total, a drawn timeline and the role stories with their sentence
    text = text_of(nb)
    assert f"{truth['culprit_ids'][0]}: VERIFIED" in text and "placebo treatment" in text
    assert "counterfactual in app_version=5.2, platform=ios" in text
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outs)
    stories = [o["data"]["text/markdown"] for o in outs if "text/markdown" in o.get("data", {})]
    assert len(stories) == 3 and all("more conversions" in m for m in stories)


def test_template_tests_a_persons_hypothesis(tmp_path):
    """The notebook surface of issue 17: ``hypotheses`` is a parameter of the template."""
    hyp = "CDN outage;platform=ios,app_version=5.2;2026-11-18T14:00Z;2026-11-20T00:00Z"
    nb, _ = execute(REPO / "notebooks" / "investigation_template.ipynb",
                    {"db": str(tmp_path / "store.duckdb"), "hypotheses": [hyp]})
    text = text_of(nb)
    assert "external CDN outage  @ 2026-11-18T14:00:00Z" in text


def test_cli_artifact_reexecutes_to_the_same_top_cause(tmp_path, truth, monkeypatch):
    # executing a saved notebook needs a signed audit head (issue 19): a server-side key
    key = tmp_path / "server" / "audit.key"
    key.parent.mkdir()
    key.write_text("k" * 64)
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(key))
    demo = shutil.copytree(DEMO, tmp_path / "demo",
                           ignore=shutil.ignore_patterns(".workbench"))
    lib = tmp_path / "investigations"
    cmd = [sys.executable, "-m", "workbench.cli", "investigate", str(demo), "--metric",
           "conversion_rate", "--out", str(lib), "--json", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert Path(answer["artifact"]).name == "v0001.ipynb"
    top = answer["causes"][0]["change_id"]
    assert top == truth["culprit_ids"][0]
    info = V.resolve_version(lib, Path(answer["artifact"]).parent.name)
    assert info.path == answer["artifact"] and info.top_cause == top

    rep = V.reproduce_version(lib, info.version_id, timeout=TIMEOUT, cwd=tmp_path)
    print(f"artifact: executed in {rep.seconds:.1f}s")
    assert rep.reproduced, rep.check
    assert rep.check["top"] == top and rep.check["same_ranking"]
    assert [c[0] for c in rep.check["causes"]] == [c["change_id"] for c in
                                                   answer["causes"][:10]]
    assert Path(rep.executed_path).parent.name == "runs"  # outputs stored apart
    assert all(not c.get("outputs") for c in json.loads(Path(info.path).read_text())["cells"])

    # a second run of the same incident is a second version, with a readable diff
    r2 = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert Path(json.loads(r2.stdout)["artifact"]).name == "v0002.ipynb"
    V.record_decision(lib, info.investigation_id, hypothesis=top, status="confirmed",
                      note="payment step broken on iOS 5.2", author="ana")
    inv = reopen(lib, info.investigation_id)
    v3 = V.save_investigation(inv, message="flag new_checkout_flow on iOS 5.2 broke payment",
                              author="ana", root=lib)
    d = V.diff_versions(lib, info.version_id, v3.version_id)
    assert f'+ {top} confirmed by ana: "payment step broken on iOS 5.2"' in d
    assert V.diff_versions(lib, f"{info.investigation_id}@2").endswith(
        "No change in the answer.")
