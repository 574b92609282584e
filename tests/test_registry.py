"""Plug-ins: discovery, built-ins, broken and shadowed plug-ins, contracts, the CLI.

The contract test runs ``workbench.testing.check_plugin`` over every plug-in
found, the way scikit-learn's estimator checks run over third-party
estimators. The installation tests run the CLI in subprocesses with the
project's interpreter: the adapters must be installed (``make venv`` does
``pip install -e extensions/...``).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from workbench import registry, testing
from workbench.errors import PassportError, UsageError
from workbench.registry import PluginWarning
from workbench.sources import PassportWriter, Source

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = {"otel": "workbench-otel", "changes": "workbench-changes",
            "warehouse": "workbench-warehouse"}
INSTALL_HINT = ("install the adapters into the venv: "
                + " ".join(f"pip install -e extensions/{p}" for p in ADAPTERS.values())
                + " (make venv does it)")


@pytest.fixture(autouse=True)
def _fresh_registry():
    registry.refresh()
    yield
    registry.refresh()


def _write_dist(site: Path, name: str, version: str, entry_points: str, module: str) -> None:
    """A real installed distribution: a module and its .dist-info with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(module)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    (info / "top_level.txt").write_text(name + "\n")


BROKEN = ("[workbench.sources]\nbroken = brokenplug:Source\n", 
          "raise RuntimeError('boom: the native library libfoo.so is missing')\n")


# --------------------------------------------------------------------------- discovery
def test_groups_and_builtins_registered_like_plugins():
    assert list(registry.GROUPS)[0] == "workbench.sources"
    assert set(registry.GROUPS) == {"workbench.sources", "workbench.detectors",
                                    "workbench.localizers", "workbench.flag_providers",
                                    "workbench.views", "workbench.streams"}
    found = {(p.group, p.name): p for p in registry.list_plugins()}
    seasonal = found[("workbench.detectors", "seasonal")]
    assert seasonal.builtin and seasonal.ok and seasonal.package == "workbench"
    from workbench.detect import SeasonalDetector

    assert registry.get_plugin("workbench.detectors", "seasonal") is SeasonalDetector
    assert found[("workbench.localizers", "search")].ok


def test_unknown_names_list_the_valid_choices():
    with pytest.raises(UsageError, match="groups are: workbench.sources"):
        registry.list_plugins("workbench.nope")
    with pytest.raises(UsageError, match="installed: .*seasonal"):
        registry.get_plugin("workbench.detectors", "prophet")


def test_runtime_registration_and_name_clash():
    class Mine(Source):
        name = "mine"

    registry.register("workbench.sources", "mine", Mine)
    try:
        assert registry.get_plugin("workbench.sources", "mine") is Mine
        with pytest.raises(UsageError, match="already registered"):
            registry.register("workbench.sources", "mine", Mine)
        with pytest.raises(UsageError, match="already registered"):
            registry.register("workbench.detectors", "seasonal", Mine)
    finally:
        registry.unregister("workbench.sources", "mine")
    assert "mine" not in registry.load_plugins("workbench.sources")


def test_broken_plugin_is_warned_about_and_skipped(tmp_path, monkeypatch):
    _write_dist(tmp_path / "site", "brokenplug", "0.3.1", *BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.refresh()
    with pytest.warns(PluginWarning, match=r"'broken' in group workbench.sources .*brokenplug "
                                           r"0.3.1.* failed to load and is skipped: "
                                           r"RuntimeError: boom"):
        plugins = registry.list_plugins("workbench.sources")
    broken = [p for p in plugins if p.name == "broken"]
    assert broken and broken[0].status == "broken" and "libfoo" in broken[0].error
    assert broken[0].package == "brokenplug" and broken[0].version == "0.3.1"
    assert "broken" not in registry.load_plugins("workbench.sources")  # cached: no new warning
    with pytest.raises(UsageError, match="failed to load"):
        registry.get_plugin("workbench.sources", "broken")
    # the rest still works
    assert registry.get_plugin("workbench.detectors", "seasonal").__name__ == "SeasonalDetector"


def test_two_packages_claiming_one_name_warn_and_the_builtin_wins(tmp_path, monkeypatch):
    _write_dist(tmp_path / "site", "otherdet", "1.0", "[workbench.detectors]\n"
                "seasonal = otherdet:Detector\n", "class Detector:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.refresh()
    with pytest.warns(PluginWarning, match="claimed by workbench .* and by otherdet"):
        plugins = registry.list_plugins("workbench.detectors")
    by_pkg = {p.package: p for p in plugins if p.name == "seasonal"}
    assert by_pkg["workbench"].ok and by_pkg["otherdet"].status == "shadowed"
    assert registry.get_plugin("workbench.detectors", "seasonal").__module__.startswith("workbench")


# --------------------------------------------------------------------------- contracts
def _installed():
    import warnings

    # collected at import: a broken plug-in must not break collection; the test below names it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        plugins = registry.list_plugins()
    registry.refresh()
    return [p for p in plugins if p.ok]


def test_no_installed_plugin_is_broken():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        bad = [f"{p.group}:{p.name} ({p.package}): {p.error}" for p in registry.list_plugins()
               if not p.ok]
    assert not bad, "installed plug-ins that do not load: " + "; ".join(bad)


@pytest.mark.parametrize("plugin", _installed(), ids=lambda p: f"{p.group}:{p.name}")
def test_every_plugin_found_meets_its_contract(plugin):
    report = testing.check_plugin(plugin)
    assert report.checks


def test_adapters_are_installed():
    names = {p.name for p in registry.list_plugins("workbench.sources") if p.ok}
    missing = set(ADAPTERS) - names
    assert not missing, f"source plug-ins {sorted(missing)} not found; {INSTALL_HINT}"


class _NoProvenance(Source):
    """Writes a passport but records no provenance."""

    name = "noprov"

    def sample_input(self) -> Path:
        return ROOT / "sample_data" / "demo"

    def to_passport(self, inputs, out_dir, **options) -> Path:
        import shutil

        if not Path(inputs).exists():
            raise PassportError("does not exist", file=str(inputs))
        shutil.copytree(inputs, out_dir, ignore=shutil.ignore_patterns(".workbench"))
        return Path(out_dir)


def test_check_source_rejects_a_source_without_provenance():
    with pytest.raises(testing.ContractError, match="no contribution by this plug-in"):
        testing.check_source(_NoProvenance)


def test_check_source_rejects_bad_names():
    class Bad(_NoProvenance):
        name = "Bad Name"

    with pytest.raises(testing.ContractError, match="lowercase identifier"):
        testing.check_source(Bad)


# --------------------------------------------------------------------------- PassportWriter
class _Tiny(Source):
    """Writes two hours of events and one change (a test source)."""

    name = "tinysrc"

    def to_passport(self, inputs, out_dir, *, change_id="t-1", overwrite=False):
        import pandas as pd

        w = self.writer(out_dir, overwrite=overwrite)
        rec = w.add_input(inputs)
        w.set_manifest(name="tiny", dimensions=["platform"], measures={"n": {}},
                       metrics={"n": {"sum": "n", "better": "higher"}})
        ev = pd.DataFrame({"ts": pd.date_range("2026-11-01", periods=2, freq="1h", tz="UTC"),
                           "platform": ["ios", "web"], "n": [1.0, 2.0]})
        w.write_events(ev, transform=["copy"], origin="test")
        w.add_changes([{"id": change_id, "ts": pd.Timestamp("2026-11-01T01:00Z"),
                        "kind": "deploy", "target": "api", "description": "v2",
                        "scope": {"platform": "ios"}, "rollout": float("nan"), "author": None,
                        "source": w.row_source(rec, "line 1")}],
                      transform=["one row"], origin="test")
        return w.finish()


def test_writer_merges_changes_and_keeps_other_sources_rows(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "pp"
    _Tiny().to_passport(inp, out)
    with open(out / "changes.jsonl", "a") as f:  # a row from elsewhere, without provenance
        f.write(json.dumps({"id": "other-1", "ts": "2026-11-01T00:00:00Z", "kind": "flag",
                            "target": "f", "description": "", "scope": {}}) + "\n")
    _Tiny().to_passport(inp, out)  # re-run: replaces its own row, keeps the other
    rows = [json.loads(x) for x in (out / "changes.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["other-1", "t-1"]
    assert rows[0]["source"]["plugin"] == "passport" and rows[0]["source"]["record"] == "line 2"
    assert rows[1]["rollout"] is None and rows[1]["source"]["input"] == str(inp.resolve())
    from workbench.passport import load_passport

    pp = load_passport(out)
    contrib = pp.manifest.raw["sources"]["changes"]["contributions"]
    assert [c["plugin"]["name"] for c in contrib] == ["tinysrc"]  # the re-run replaced itself


def test_writer_leaves_the_folder_untouched_when_the_result_is_invalid(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "pp"
    _Tiny().to_passport(inp, out)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    with pytest.raises(PassportError, match="does not validate"):
        # an empty id is not a valid change row
        _Tiny().to_passport(inp, out, change_id="")
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


def test_writer_staging_folder_is_removed_when_the_adapter_fails_before_finish(tmp_path):
    import gc

    import pandas as pd

    class Failing(_Tiny):
        def to_passport(self, inputs, out_dir, **_):
            w = self.writer(out_dir)
            self.staged = w._tmp
            w.set_manifest(name="tiny", dimensions=["platform"], measures={"n": {}},
                           metrics={"n": {"sum": "n", "better": "higher"}})
            w.write_events(pd.DataFrame({"ts": pd.date_range("2026-11-01", periods=2,
                                                             freq="1h", tz="UTC"),
                                         "platform": ["ios", "web"], "n": [1.0, 2.0]}),
                           transform=["copy"], origin="test")
            raise PassportError("row 2: broken input", file=str(inputs))

    src = Failing()
    with pytest.raises(PassportError, match="broken input"):
        src.to_passport(tmp_path / "in.txt", tmp_path / "pp")
    gc.collect()
    assert not src.staged.exists() and not (tmp_path / "pp").exists()
    with src.writer(tmp_path / "pp2") as w:  # a context manager cleans up on exit too
        staged = w._tmp
        assert staged.is_dir()
    assert not staged.exists()


def test_writer_refuses_to_replace_another_sources_events(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    out = tmp_path / "pp"
    _Tiny().to_passport(inp, out)

    class Other(_Tiny):
        name = "othersrc"

    with pytest.raises(PassportError, match="already holds events from tinysrc"):
        Other().to_passport(inp, out, change_id="o-1")
    Other().to_passport(inp, out, change_id="o-1", overwrite=True)


# --------------------------------------------------------------------------- CLI, subprocesses
def _run(args: list[str], env: dict | None = None, python_args=()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *python_args, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


def test_plugins_command_lists_each_installed_adapter():
    r = _run(["-m", "workbench.cli_plugins", "plugins", "--json"])
    assert r.returncode == 0, r.stderr
    rows = {(x["group"], x["name"]): x for x in json.loads(r.stdout)}
    for name, package in ADAPTERS.items():
        row = rows.get(("workbench.sources", name))
        assert row, f"{name} not listed; {INSTALL_HINT}"
        assert row["package"] == package and row["version"] == "0.1.0" and row["status"] == "ok"
    assert rows[("workbench.flag_providers", "flagd")]["package"] == "workbench-changes"


def test_plugins_table(capsys):
    from workbench.cli_plugins import main

    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GROUP", "NAME", "PACKAGE", "VERSION", "STATUS"]
    assert any(line.split() == ["workbench.sources", "otel", "workbench-otel", "0.1.0", "ok"]
               for line in lines)


def test_workbench_plugins_via_the_main_cli():
    r = _run(["-m", "workbench.cli", "plugins", "--json"])
    assert r.returncode == 0, r.stderr
    assert {x["name"] for x in json.loads(r.stdout)} >= set(ADAPTERS)


def test_broken_plugin_in_a_real_process_is_skipped_with_a_warning(tmp_path):
    _write_dist(tmp_path / "site", "brokenplug", "0.3.1", *BROKEN)
    r = _run(["-m", "workbench.cli_plugins", "plugins"],
             env={"PYTHONPATH": str(tmp_path / "site")})
    assert r.returncode == 0, r.stderr
    assert "warning: workbench plug-in 'broken'" in r.stderr and "boom" in r.stderr
    lines = r.stdout.splitlines()
    assert any(line.split()[:2] == ["workbench.sources", "broken"] and "broken" in line.split()[4:]
               for line in lines if line.strip())
    ok = [line.split()[1] for line in lines if line.strip().endswith(" ok")]
    assert set(ADAPTERS) <= set(ok), r.stdout


def test_uninstalling_one_adapter_leaves_the_rest_working(tmp_path):
    """pip uninstall removes the files of the dist's RECORD; do that on a copy of site-packages."""
    try:
        dist = importlib.metadata.distribution("workbench-changes")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"workbench-changes is not installed; {INSTALL_HINT}")
    site = Path(sysconfig.get_paths()["purelib"])
    gone = {line.split(",")[0].split("/")[0] for line in dist.read_text("RECORD").splitlines()
            if line.strip()}
    assert any(g.endswith(".dist-info") for g in gone)
    view = tmp_path / "site-packages"
    view.mkdir()
    for entry in site.iterdir():
        if entry.name not in gone:
            (view / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    code = ("import site, sys; site.addsitedir(sys.argv[1]); "
            "from workbench.cli_plugins import main; "
            "sys.exit(main(['plugins', '--json']))")
    r = _run(["-c", code, str(view)], python_args=["-S"])
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    rows = {(x["group"], x["name"]): x["status"] for x in json.loads(r.stdout)}
    assert ("workbench.sources", "changes") not in rows
    assert ("workbench.flag_providers", "flagd") not in rows
    assert rows[("workbench.sources", "otel")] == "ok"
    assert rows[("workbench.sources", "warehouse")] == "ok"
    # and a remaining adapter still converts
    code = ("import site, sys; site.addsitedir(sys.argv[1]); "
            "from workbench.cli_plugins import main; "
            "sys.exit(main(['convert', 'warehouse', '--sample', '--out', sys.argv[2]]))")
    r = _run(["-c", code, str(view), str(tmp_path / "wh")], python_args=["-S"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "wh" / "passport.yaml").is_file()


def test_convert_reports_unknown_sources_and_options(tmp_path, capsys):
    from workbench.cli_plugins import main

    assert main(["convert", "nosuch", "x", "--out", str(tmp_path)]) == 2
    assert "no workbench.sources plug-in named 'nosuch'" in capsys.readouterr().err
    assert main(["convert", "warehouse", "--sample", "--out", str(tmp_path / "o"),
                 "--option", "colour=blue"]) == 2
    assert "does not take that option" in capsys.readouterr().err
    assert main(["convert", "warehouse", "--out", str(tmp_path / "o")]) == 2
    assert "give input files or folders, or --sample" in capsys.readouterr().err


def test_register_fits_the_main_parser():
    """The hook cli.py applies: register(sub) on its own sub-parsers, no name clash."""
    import argparse

    from workbench import cli
    from workbench.cli_plugins import cmd_convert, cmd_plugins, cmd_search, register

    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "plugins" not in sub.choices:
        register(sub)
    assert parser.parse_args(["plugins", "--json"]).func is cmd_plugins
    assert parser.parse_args(["search", "pp", "checkout ios"]).func is cmd_search
    a = parser.parse_args(["convert", "otel", "x", "--out", "o", "--option", "grain=15min"])
    assert a.func is cmd_convert and a.option == ["grain=15min"]
    assert parser.parse_args(["investigate", "pp", "--metric", "m"]).command == "investigate"
