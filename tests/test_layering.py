"""The layering of architecture.md, proved in a fresh interpreter, not hoped."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("panel", "bokeh", "holoviews", "param", "dowhy")
CORE = ["workbench", "workbench.passport", "workbench.store", "workbench.quality",
        "workbench.events", "workbench.detect", "workbench.localize",
        "workbench.investigation", "workbench.cli", "workbench.synth",
        "workbench.registry", "workbench.context", "workbench.cli_plugins", "workbench.testing",
        "workbench.experiments", "workbench.store.baselines"]


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in imports)
            + "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_workbench_is_light():
    loaded = _loaded_after(["workbench"])
    assert not loaded & set(HEAVY)
    assert "pandas" not in loaded and "duckdb" not in loaded  # lazy verbs


@pytest.mark.parametrize("module", CORE)
def test_core_packages_load_no_ui_or_dowhy(module):
    loaded = _loaded_after([module])
    assert not loaded & set(HEAVY), f"{module} pulled in {loaded & set(HEAVY)}"


def test_lazy_attributes_resolve():
    import workbench as wb

    assert callable(wb.investigate) and callable(wb.load_passport)
    with pytest.raises(AttributeError):
        wb.no_such_thing  # noqa: B018
