"""Passport files resolve inside the passport folder, unless WORKBENCH_DATA_ROOTS lists another."""
from __future__ import annotations

import os
import shutil

import pytest

from .conftest import one_located_line, run


@pytest.fixture
def outside(good, tmp_path):
    """A secret events file next to (not inside) the passport."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    shutil.copy(good / "events.csv", d / "secret.csv")
    return d / "secret.csv"


def _files_entry(good, value):
    text = (good / "passport.yaml").read_text() + f"files:\n  events: {value}\n"
    (good / "passport.yaml").write_text(text)
    (good / "events.csv").unlink()


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink_file", "symlink_dir",
                                 "symlink_in_folder"])
def test_a_file_outside_the_passport_is_refused(good, outside, how):
    if how == "dotdot":
        _files_entry(good, "../elsewhere/secret.csv")
    elif how == "absolute":
        _files_entry(good, str(outside))
    elif how == "symlink_file":
        (good / "events.csv").unlink()
        os.symlink(outside, good / "events.csv")
    elif how == "symlink_dir":
        _files_entry(good, "data")
        os.symlink(outside.parent, good / "data")
    else:
        (good / "events.csv").unlink()
        (good / "events").mkdir()
        os.symlink(outside, good / "events" / "part-1.csv")
    r = run("validate", good)
    line = one_located_line(r, "points outside the passport folder", "WORKBENCH_DATA_ROOTS")
    assert "elsewhere" in line  # names what it refused...
    assert "rows" not in r.stdout and "sha256" not in r.stdout  # ...and shows none of it


def test_a_listed_data_root_is_allowed(good, outside):
    _files_entry(good, str(outside))
    env = dict(os.environ, WORKBENCH_DATA_ROOTS=str(outside.parent))
    r = run("validate", good, env=env)
    assert r.returncode == 0, r.stderr
    assert "secret.csv" in r.stdout and "576 rows" in r.stdout


def test_dotdot_that_stays_inside_is_fine(good):
    (good / "sub").mkdir()
    (good / "events.csv").rename(good / "facts.csv")
    text = (good / "passport.yaml").read_text() + "files:\n  events: sub/../facts.csv\n"
    (good / "passport.yaml").write_text(text)
    r = run("validate", good)
    assert r.returncode == 0, r.stderr
    assert "facts.csv: 576 rows" in r.stdout
