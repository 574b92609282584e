"""DoWhy is loaded only when a causal verb runs (it costs ~5 s and 300 MB)."""
from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_importing_workbench_causal_does_not_import_dowhy():
    code = ("import sys\n"
            "import workbench.causal as c\n"
            "from workbench.causal import (verify_top_causes, verify_cause, "
            "attribute_mechanisms, VerificationReport, default_graph)\n"
            "import workbench.causal.verify, workbench.causal.attribution, "
            "workbench.causal.report, workbench.causal.graph\n"
            "print(c.available(), 'dowhy' in sys.modules)")
    assert _run(code) == "True False"


def test_dowhy_loads_when_a_verb_runs():
    code = ("import sys\n"
            "from workbench.causal._dowhy import gcm_settings\n"
            "with gcm_settings():\n"
            "    pass\n"
            "print('dowhy' in sys.modules)")
    assert _run(code) == "True"
