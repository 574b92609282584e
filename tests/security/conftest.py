"""Helpers of the hostile-input tests: the real CLI in a subprocess, a one-line error check."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import make_events, write_passport

WB = [sys.executable, "-m", "workbench.cli"]


def run(*args, cwd=None, env=None, timeout=600):
    return subprocess.run(WB + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def one_located_line(r, *needles):
    """Exit 2, one ``workbench: error:`` line on stderr holding every needle, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith("workbench: error: "), err[0]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


@pytest.fixture
def good(tmp_path, rng) -> Path:
    return write_passport(tmp_path / "good", make_events(rng, hours=48))
