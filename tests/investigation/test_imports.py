"""Saving stays cheap: the library code never loads the UI, DoWhy or the notebook stack.

nbformat pulls in jsonschema's format checkers (seconds to import); saving
sits on the path of every ``investigate``, so only executing a notebook may
load nbformat/nbclient.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

AVOID = {"panel", "bokeh", "holoviews", "param", "dowhy", "nbformat", "nbclient", "jupytext",
         "jsonschema"}


@pytest.mark.parametrize("module", ["workbench.investigation.library",
                                    "workbench.investigation.versions",
                                    "workbench.investigation.memory",
                                    "workbench.investigation.artifact",
                                    "workbench.governance", "workbench.cli_investigations"])
def test_library_modules_are_light(module):
    code = (f"import sys, {module}\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not set(out.stdout.split()) & AVOID


def test_saving_does_not_load_the_notebook_stack(ios_passport, tmp_path):
    code = ("import sys, warnings\nimport workbench as wb\n"
            f"inv = wb.investigate({str(ios_passport)!r}, metric='sessions', "
            f"artifact_dir={str(tmp_path / 'lib')!r}, verify=False)\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not set(out.stdout.split()) & AVOID
