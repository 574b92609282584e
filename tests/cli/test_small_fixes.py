"""Small things a new user met (issue 17 item 7): `generate --list`, `generate --help`,
and the extensions README naming a command that exists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from workbench.synth import FAMILIES, HELDOUT_FAMILIES

WB = [sys.executable, "-m", "workbench.cli"]
REPO = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run(WB + list(args), capture_output=True, text=True)


def test_generate_list_alone_works():
    r = run("generate", "--list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == list(FAMILIES + HELDOUT_FAMILIES) + ["demo"]


def test_generate_help_lists_the_families():
    text = " ".join(run("generate", "--help").stdout.split())
    assert all(f in text for f in FAMILIES + HELDOUT_FAMILIES) and "'demo'" in text


def test_generate_without_a_family_says_how():
    r = run("generate", "--out", "x")
    assert r.returncode == 2 and "give a FAMILY" in r.stderr and "--list" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_extensions_readme_commands_exist():
    text = (REPO / "extensions" / "README.md").read_text()
    assert "python -m workbench.cli_plugins" not in text
    verbs = set(re.findall(r"^workbench (\w+)", text, flags=re.M))
    assert {"plugins", "convert", "search"} <= verbs
    for verb in verbs:  # every verb the README shows is one the CLI knows
        assert run(verb, "--help").returncode == 0, verb
