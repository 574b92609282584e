"""workbench-changes: flagd histories and GitHub deployments -> change rows with scopes."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from workbench.errors import PassportError, WorkbenchError
from workbench.investigation import investigate
from workbench.passport import load_passport
from workbench.testing import check_flag_provider, check_source
from workbench_changes import ChangesSource, FlagdProvider
from workbench_changes.deployments import read_deployments
from workbench_changes.flagd import read_history, segments

SAMPLE = ChangesSource().sample_input()
BOOL = {"on": True, "off": False}


def _flag(targeting=None, **kw):
    return {"state": "ENABLED", "variants": BOOL, "defaultVariant": "off",
            "targeting": targeting or {}, **kw}


@pytest.mark.parametrize("targeting, expected", [
    (None, [({}, 0.0)]),
    ({"if": [{"==": [{"var": "platform"}, "ios"]}, "on", "off"]},
     [({"platform": "ios"}, 100.0), ({}, 0.0)]),
    ({"if": [{"in": [{"var": "country"}, ["DE", "FR"]]},
             {"fractional": [{"var": "targetingKey"}, ["on", 25], ["off", 75]]}, "off"]},
     [({"country": ["DE", "FR"]}, 25.0), ({}, 0.0)]),
    ({"if": [{"and": [{"==": ["ios", {"var": "platform"}]},
                      {"or": [{"==": [{"var": "country"}, "DE"]},
                              {"==": [{"var": "country"}, "AT"]}]}]},
             {"fractional": [["on", 1], ["off", 3]]}]},
     [({"platform": "ios", "country": ["AT", "DE"]}, 25.0), ({}, 0.0)]),
    ({"if": [{"ends_with": [{"var": "email"}, "@shop.example"]}, "on",
             {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]}]},
     [({"plan": "pro"}, 100.0), ({}, 0.0)]),
])
def test_targeting_becomes_scopes_and_percentages(targeting, expected):
    segs, skipped = segments(_flag(targeting), {"on"},
                             {"platform": "platform", "country": "country", "plan": "plan"})
    assert segs == expected
    assert bool(skipped) == ("ends_with" in json.dumps(targeting or {}))


def test_disabled_flag_serves_nobody():
    assert segments(_flag(state="DISABLED", defaultVariant="on"), {"on"}, {}) == ([({}, 0.0)], [])


def test_history_rows_follow_the_ramp():
    files = sorted((SAMPLE / "flagd-history").glob("*.json"))
    df, notes = read_history(files, dimensions=["country", "platform"])
    ramp = df[df["target"] == "new-checkout-flow"]
    assert list(ramp["rollout"]) == [10.0, 50.0, 100.0]
    assert all(s == {"platform": "ios"} for s in ramp["scope"])
    assert list(ramp["author"]) == ["m.chen", "m.chen", "j.alvarez"]
    dark = df[df["target"] == "dark-mode"]
    assert list(dark["rollout"]) == [100.0, 0.0] and dark["scope"].iloc[0] == {
        "country": ["DE", "FR"]}
    assert df[df["target"] == "promo-banner"]["rollout"].tolist() == [100.0]
    ranking = df[df["target"] == "search-ranking-v2"]
    assert ranking["rollout"].tolist() == [25.0, 50.0]  # treatment: not the default variant
    assert notes and all("ends_with" in n for n in notes)
    assert df["id"].is_unique


def test_revision_time_from_file_name_or_a_clear_error(tmp_path):
    doc = {"flags": {"f": _flag()}}
    (tmp_path / "flags.2026-11-10T09-30-00Z.json").write_text(json.dumps(doc))
    df, _ = read_history(sorted(tmp_path.glob("*.json")), dimensions=["platform"])
    assert df.empty  # a flag serving nobody from the start is not a change
    (tmp_path / "flags.json").write_text(json.dumps(doc))
    with pytest.raises(PassportError, match="no revision time"):
        read_history([tmp_path / "flags.json"], dimensions=["platform"])


def test_deployments_take_effect_at_their_first_success():
    df, skipped = read_deployments([SAMPLE / "github-deployments.json"],
                                   dimensions=["country", "platform"])
    assert skipped == {"never succeeded": 1, "non-production environment": 2}
    assert list(df["id"]) == ["gh-deployment-1820077", "gh-deployment-1821530",
                              "gh-deployment-1823310", "gh-deployment-1823398",
                              "gh-deployment-1824555"]
    canary = df.set_index("id").loc["gh-deployment-1823310"]
    assert canary["scope"] == {"country": "US"} and canary["rollout"] == 10.0
    assert str(canary["ts"]) == "2026-11-11 15:37:00+00:00"  # the success, not the request
    assert df.set_index("id").loc["gh-deployment-1824555", "target"] == "payments-gateway"
    assert df.set_index("id").loc["gh-deployment-1820077", "target"] == "checkout-api"


def test_environment_scopes_and_scope_checks():
    df, skipped = read_deployments([SAMPLE / "github-deployments.json"],
                                   environments={"staging": {"country": "DE"}},
                                   dimensions=["country"])
    # production is not listed: only the canary, whose payload names its own scope, stays
    assert list(df["scope"]) == [{"country": "DE"}, {"country": "US"}]
    with pytest.raises(PassportError, match="not dimensions"):
        read_deployments([SAMPLE / "github-deployments.json"], dimensions=["platform"])


def test_sample_merges_into_a_copy_of_the_base(tmp_path):
    base = SAMPLE / "base-passport"
    before = {f.name: f.read_bytes() for f in base.iterdir()}
    out = ChangesSource().to_passport(SAMPLE, tmp_path / "pp")
    assert {f.name: f.read_bytes() for f in base.iterdir()} == before  # never changed
    pp = load_passport(out)
    assert len(pp.changes) == 13 and set(pp.changes["kind"]) == {"flag", "deploy"}
    contrib = pp.manifest.raw["sources"]["changes"]["contributions"][0]
    assert contrib["plugin"]["name"] == "changes" and len(contrib["inputs"]) == 5
    rows = [json.loads(x) for x in (out / "changes.jsonl").read_text().splitlines()]
    r = next(r for r in rows if r["id"] == "flagd-new-checkout-flow-r2-0")
    assert r["source"]["record"] == "flags.new-checkout-flow @ revision r2"
    assert r["source"]["input"].endswith("flags.2026-11-12T10-00-00Z.json")


def test_other_sources_rows_are_kept_and_reruns_replace_their_own(tmp_path):
    out = ChangesSource().to_passport(SAMPLE, tmp_path / "pp")
    with open(out / "changes.jsonl", "a") as f:
        f.write(json.dumps({"id": "inc-1", "ts": "2026-11-15T00:00:00Z", "kind": "external",
                            "target": "marketing", "description": "TV campaign",
                            "scope": {"country": "DE"}}) + "\n")
    ChangesSource().to_passport([SAMPLE / "flagd-history", SAMPLE / "github-deployments.json"],
                                out)
    pp = load_passport(out)
    assert len(pp.changes) == 14 and "inc-1" in set(pp.changes["id"])


def test_without_a_passport_to_merge_into_the_error_says_what_to_do(tmp_path):
    with pytest.raises(PassportError, match="pass base=PASSPORT"):
        ChangesSource().to_passport(SAMPLE / "github-deployments.json", tmp_path / "pp")
    assert not (tmp_path / "pp").exists()


def test_unknown_json_is_named(tmp_path):
    f = tmp_path / "audit.json"
    f.write_text(json.dumps([{"action": "update"}]))
    with pytest.raises(PassportError, match="neither a flagd") as exc:
        ChangesSource().to_passport([SAMPLE / "base-passport", f], tmp_path / "pp")
    assert str(f) in str(exc.value)


# statsmodels' HAC covariance warns (invalid value in sqrt) on a degenerate decoy group inside
# workbench.events.rank; that is the ranker's to fix, not this adapter's.
@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_investigate_blames_the_flag_ramp(tmp_path):
    out = ChangesSource().to_passport(SAMPLE, tmp_path / "pp")
    ans = investigate(out, metric="conversion_rate", artifact_dir=None).to_dict()
    assert ans["verdict"] == "change"
    assert ans["causes"][0]["target"] == "new-checkout-flow"
    assert ans["slices"][0]["filter"] == {"platform": "ios"}


def test_contracts():
    check_source(ChangesSource)
    check_flag_provider(FlagdProvider)


def test_flag_provider_reads_without_a_passport(tmp_path):
    shutil.copytree(SAMPLE / "flagd-history", tmp_path / "h")
    df = FlagdProvider().read_changes(tmp_path / "h")
    assert set(df["kind"]) == {"flag"} and df["source"].map(lambda s: s["plugin"]).eq("flagd").all()
    # with no passport, any context variable is a dimension: nothing is left out but email
    assert {json.dumps(s, sort_keys=True) for s in df["scope"]} >= {'{"platform": "ios"}'}


# ------------------------------------------------------------------ malformed input
# Each malformed flagd revision or deployments list gives one WorkbenchError: one line naming
# the file, where in it (line and column, the flag's or the deployment's JSON path) and what
# was expected; the output folder and the writer's staging area are left as they were.
BASE = SAMPLE / "base-passport"
FLAGS = sorted((SAMPLE / "flagd-history").glob("*.json"))[0]
FLAGS_TEXT = FLAGS.read_text()
DEPLOYS_TEXT = (SAMPLE / "github-deployments.json").read_text()


def _snapshot(folder: Path) -> dict | None:
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails_cleanly(bad: Path, out: Path, monkeypatch, tmp_path: Path, *needles: str) -> str:
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where PassportWriter stages
    before = _snapshot(out)
    with pytest.raises(WorkbenchError) as exc:
        ChangesSource().to_passport([BASE, bad], out)
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1, msg
    assert msg.startswith(f"{bad}: "), msg
    for n in needles:
        assert n in msg, msg
    assert "expected" in msg, msg
    assert _snapshot(out) == before
    assert list(staging.iterdir()) == []
    return msg


def _flag_without(key: str) -> str:
    doc = json.loads(FLAGS_TEXT)
    del doc["flags"]["dark-mode"][key]
    return json.dumps(doc, indent=2)


def _deployment_without(key: str) -> str:
    doc = json.loads(DEPLOYS_TEXT)
    del doc[3][key]
    return json.dumps(doc, indent=2)


def _success_without_time() -> str:
    doc = json.loads(DEPLOYS_TEXT)
    del doc[3]["statuses"][0]["created_at"]
    return json.dumps(doc)


MALFORMED = {
    # name: (file name, content, what the message must say)
    "flagd_truncated": (FLAGS.name, FLAGS_TEXT[:len(FLAGS_TEXT) // 2],
                        ["is not valid JSON at line 50, column ",
                         "ends in the middle of a JSON value (truncated?)",
                         "expected a flagd flag-definition file or a GitHub deployments list"]),
    "flagd_utf16": (FLAGS.name, FLAGS_TEXT.encode("utf-16"), ["is UTF-16 text", "as UTF-8"]),
    "flagd_latin1": (FLAGS.name, FLAGS_TEXT.replace("m.chen", "m.ch\u00e9n").encode("latin-1"),
                     ["is not UTF-8 text: byte 0xE9 at line 7, column 20", "as UTF-8"]),
    "flag_no_state": (FLAGS.name, _flag_without("state"),
                      ['flags["dark-mode"]: missing required key \'state\'; expected ENABLED or '
                       "DISABLED"]),
    "flag_no_variants": (FLAGS.name, _flag_without("variants"),
                         ['flags["dark-mode"]: missing required key \'variants\'; expected a '
                          "mapping of variant name -> value"]),
    "flag_no_default": (FLAGS.name, _flag_without("defaultVariant"),
                        ['flags["dark-mode"]: missing required key \'defaultVariant\'; expected '
                         "the name of the variant served when no rule applies"]),
    "deployments_truncated": ("deployments.json", DEPLOYS_TEXT[:len(DEPLOYS_TEXT) // 2],
                              ["is not valid JSON at line 192, column ", "truncated"]),
    "deployments_utf16": ("deployments.json", DEPLOYS_TEXT.encode("utf-16-be"),
                          ["holds NUL bytes, as UTF-16 or UTF-32 text does"]),
    "deployment_no_created_at": ("deployments.json", _deployment_without("created_at"),
                                 ["deployments[3] (id=1821530): missing required key "
                                  "'created_at'; expected the time it was created, ISO 8601"]),
    "deployment_no_environment": ("deployments.json", _deployment_without("environment"),
                                  ["deployments[3] (id=1821530): missing required key "
                                   "'environment'; expected the environment it went to"]),
    "deployment_no_sha": ("deployments.json", _deployment_without("sha"),
                          ["deployments[3] (id=1821530): missing required key 'sha'; expected "
                           "the commit SHA"]),
    "success_without_time": ("deployments.json", _success_without_time(),
                             ["deployments[3].statuses[0] (id=1821530): missing required key "
                              "'created_at'"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_gives_one_located_error(case, tmp_path, monkeypatch):
    name, content, needles = MALFORMED[case]
    bad = tmp_path / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    _fails_cleanly(bad, tmp_path / "pp", monkeypatch, tmp_path, *needles)


def test_malformed_input_leaves_an_existing_passport_as_it_was(tmp_path, monkeypatch):
    out = ChangesSource().to_passport(SAMPLE, tmp_path / "pp")
    bad = tmp_path / FLAGS.name
    bad.write_text(_flag_without("state"))
    _fails_cleanly(bad, out, monkeypatch, tmp_path, "missing required key 'state'")
    assert len(load_passport(out).changes) == 13


def test_flag_provider_names_a_malformed_revision(tmp_path):
    (tmp_path / FLAGS.name).write_text(_flag_without("variants"))
    with pytest.raises(PassportError, match=r'flags\["dark-mode"\]: missing required key '
                                            r"'variants'"):
        FlagdProvider().read_changes(tmp_path)


def test_cli_reports_malformed_input_on_one_line(tmp_path):
    bad = tmp_path / "deployments.json"
    bad.write_text(_deployment_without("sha"))
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "convert", "changes", str(BASE),
                        str(bad), "--out", str(tmp_path / "pp")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [f"workbench: error: {bad}: deployments[3] (id=1821530): missing required "
                     "key 'sha'; expected the commit SHA that was deployed"], r.stderr
    assert r.stdout == "" and not (tmp_path / "pp").exists()
