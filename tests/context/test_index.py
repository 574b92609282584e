"""The context index: documents, tokens, cache and invalidation."""
from __future__ import annotations

import json
import os

from workbench.context import build_index, load_index
from workbench.textsearch import query_groups, tokenize
from workbench.context.index import cache_dir, fingerprint


def test_tokens_keep_compounds_parts_and_camel_case():
    assert tokenize("Deploy checkout-api v3.13.5") == [
        "deploy", "checkout-api", "checkout", "api", "v3.13.5", "v3", "13", "5"]
    assert tokenize("PromoCodeValidator.apply") == [
        "promocodevalidator.apply", "promocodevalidator", "promo", "code", "validator", "apply"]
    assert query_groups("iOS 5.2  ios") == [["ios"], ["5.2", "5", "2"]]


def test_index_holds_changes_slices_logs_and_investigations(tiny_passport):
    (tiny_passport / "logs.jsonl").write_text(
        json.dumps({"ts": "2026-11-02T10:05:00Z", "severity_text": "ERROR", "service": "api",
                    "body": "timeout calling payments", "attributes": {"region": "EU"}}) + "\n")
    from workbench.investigation.library.memory import index_investigation

    rec = {"investigation_id": "inv-7", "passport": "tiny-shop", "metric": "conversion_rate",
           "verdict": "change", "onset": "2026-11-02T10:00:00Z", "status": "resolved",
           "causes": [{"change_id": "chg-1", "kind": "flag", "target": "new_flow"}],
           "slices": [{"filter": {"platform": "ios"}}],
           "text": "iOS conversion fell after new_flow", "resolution": "reverted"}
    index_investigation(tiny_passport / "investigations" / "memory.duckdb", rec)
    # another passport's investigation in the same library is not this passport's context
    index_investigation(tiny_passport / "investigations" / "memory.duckdb",
                        dict(rec, investigation_id="inv-8", passport="other-shop"))
    idx = build_index(tiny_passport)
    kinds = [d["kind"] for d in idx.docs]
    assert kinds.count("change") == 2 and kinds.count("log") == 1
    assert kinds.count("investigation") == 1
    inv = next(d for d in idx.docs if d["kind"] == "investigation")
    assert inv["id"] == "inv-7" and inv["fields"]["top_cause"] == "chg-1"
    assert inv["fields"]["resolution"] == "reverted"
    slices = {d["id"] for d in idx.docs if d["kind"] == "slice"}
    assert {"platform=ios", "country=DE", "region=EU"} <= slices
    de = next(d for d in idx.docs if d["id"] == "country=DE")
    assert de["fields"]["parent"] == {"region": "EU"} and 0 < de["fields"]["share"] < 1
    assert idx.meta["documents"]["slice"] == len(slices)
    assert (cache_dir(tiny_passport) / "index.npz").is_file()


def test_cached_index_is_reused_and_rebuilt_when_the_passport_changes(tiny_passport):
    _, built = load_index(tiny_passport)
    assert built
    from workbench.context import index as mod

    mod._MEMO.clear()  # as a new process would: from the files
    _, built = load_index(tiny_passport)
    assert not built
    ch = tiny_passport / "changes.jsonl"
    os.utime(ch, ns=(ch.stat().st_atime_ns, ch.stat().st_mtime_ns + 10**9))
    _, built = load_index(tiny_passport)
    assert not built  # same bytes, new time: still current
    with open(ch, "a") as f:
        f.write(json.dumps({"id": "chg-3", "ts": "2026-11-02T14:00:00Z", "kind": "config",
                            "target": "cdn.ttl", "description": "raise", "scope": {}}) + "\n")
    idx, built = load_index(tiny_passport)
    assert built and "chg-3" in {d["id"] for d in idx.docs}


def test_a_passport_that_cannot_hold_the_cache_caches_elsewhere(tiny_passport):
    from workbench.context import index as mod

    (tiny_passport / ".workbench").write_text("")  # a file: no folder can be made there
    idx, built = load_index(tiny_passport)
    assert built and idx.n_docs > 0
    d = cache_dir(tiny_passport)
    assert tiny_passport not in d.parents and (d / "index.npz").is_file()
    mod._MEMO.clear()
    _, built = load_index(tiny_passport)
    assert not built


def test_fingerprint_ignores_the_workbench_store(tiny_passport):
    before = fingerprint(tiny_passport)
    (tiny_passport / ".workbench").mkdir(exist_ok=True)
    (tiny_passport / ".workbench" / "store.duckdb").write_bytes(b"x")
    assert fingerprint(tiny_passport) == before


def test_an_outside_library_is_part_of_the_fingerprint(tiny_passport, tmp_path):
    from workbench.investigation.library.memory import index_investigation

    lib = tmp_path / "library"
    _, built = load_index(tiny_passport, investigations=lib)  # no memory yet: fine
    index_investigation(lib / "memory.duckdb", {
        "investigation_id": "inv-1", "passport": "tiny-shop", "metric": "sessions",
        "verdict": "external", "text": "a TV campaign in Brazil"})
    idx, built = load_index(tiny_passport, investigations=lib)
    assert built and any(d["kind"] == "investigation" for d in idx.docs)
    _, built = load_index(tiny_passport, investigations=lib)
    assert not built
