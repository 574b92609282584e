"""Search: ranking, filters, the demo passport, latency, the CLI."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.context import search
from workbench.errors import PassportError, UsageError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "sample_data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ctx") / "demo"
    shutil.copytree(DEMO, d, ignore=shutil.ignore_patterns(".workbench"))
    return d


def test_both_words_beat_one(tiny_passport):
    res = search(tiny_passport, "ios new_flow")
    assert res.hits[0].kind == "change" and res.hits[0].id == "chg-1"
    assert set(res.hits[0].matched) == {"ios", "new_flow"}
    assert any(h.kind == "slice" and h.id == "platform=ios" for h in res.hits)
    assert res.hits[0].score > max(h.score for h in res.hits[1:])


def test_past_investigations_are_found(tiny_passport, tmp_path):
    from workbench.investigation.library.memory import index_investigation

    index_investigation(tmp_path / "lib" / "memory.duckdb", {
        "investigation_id": "inv-3", "passport": "tiny-shop", "metric": "conversion_rate",
        "verdict": "change", "onset": "2026-11-02T10:00:00Z",
        "causes": [{"change_id": "chg-1", "kind": "flag", "target": "new_flow"}],
        "text": "checkout broke on iOS after new_flow; reverted"})
    res = search(tiny_passport, "reverted new_flow", investigations=tmp_path / "lib")
    assert res.hits[0].kind == "investigation" and res.hits[0].id == "inv-3"
    assert search(tiny_passport, "reverted").hits == ()  # without the library


def test_kinds_limit_prefixes_and_no_match(tiny_passport):
    res = search(tiny_passport, "ios", kinds=["slice"])
    assert [h.id for h in res.hits] == ["platform=ios"]
    assert len(search(tiny_passport, "ios", limit=1).hits) == 1
    assert search(tiny_passport, "platf").hits  # a prefix of "platform"
    assert search(tiny_passport, "zzzz").hits == ()
    assert search(tiny_passport, "   ").hits == ()
    with pytest.raises(UsageError, match="kinds are: change, slice, log, investigation"):
        search(tiny_passport, "ios", kinds="deploy")
    with pytest.raises(PassportError, match="not a passport"):
        search(tiny_passport / "nope", "ios")


def test_demo_checkout_ios_finds_changes_and_the_slice(demo):
    res = search(demo, "checkout ios", limit=50)
    top = res.hits[0]
    assert top.kind == "change" and set(top.matched) == {"checkout", "ios"}
    scope = top.fields["scope"]
    assert scope.get("platform") == "ios" or "ios" in scope.get("platform", [])
    assert any(h.kind == "slice" and h.id == "platform=ios" for h in res.hits)
    truth = json.loads((demo / "truth.json").read_text())
    ids = [h.id for h in res.hits]
    assert truth["culprit_ids"] and set(truth["culprit_ids"]) <= set(ids)  # the real culprit


def test_demo_search_is_fast_after_the_first_build(demo):
    from workbench.context import index as mod

    search(demo, "warm up")
    mod._MEMO.clear()  # from the cached files, as a new process
    t = time.perf_counter()
    res = search(demo, "checkout ios")
    cold = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    search(demo, "payments timeout")
    warm = (time.perf_counter() - t) * 1e3
    assert not res.built_index
    assert cold < 200 and warm < 50, (cold, warm)


def test_cli_search_json(demo):
    r = subprocess.run([sys.executable, "-m", "workbench.cli_plugins", "search", str(demo),
                        "checkout ios", "--limit", "3", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["hits"]) == 3 and out["hits"][0]["kind"] == "change"
    r = subprocess.run([sys.executable, "-m", "workbench.cli_plugins", "search", str(demo),
                        "ios", "--kind", "slice"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "platform = ios" in r.stdout
