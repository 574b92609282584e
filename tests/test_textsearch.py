"""The one text search (workbench.textsearch): tokens, BM25 ranking, as-you-type matching,
and the three searches of the workbench (context, memory, UI box) built on it."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.textsearch import bm25, contains_all, query_groups, query_words, tokenize

ROOT = Path(__file__).resolve().parents[1] / "workbench"


def test_tokens_compounds_parts_camel_case_and_stop_words():
    assert tokenize("Deploy checkout-api v3.13.5") == [
        "deploy", "checkout-api", "checkout", "api", "v3.13.5", "v3", "13", "5"]
    assert tokenize("iOS PromoCodeValidator") == ["ios", "promocodevalidator", "promo", "code",
                                                  "validator"]
    assert tokenize("the drop on platform=ios", stop=True) == [
        "drop", "platform=ios", "platform", "ios"]
    assert tokenize(None) == [] and query_groups("  ,, ") == []
    assert query_words("New_Checkout_Flow, ios  ios country=DE") == [
        "new_checkout_flow", "ios", "country=de"]


def _postings(docs: list[str], query: str):
    toks = [tokenize(d) for d in docs]
    groups = [[(np.array([i for i, t in enumerate(toks) if tok in t]),
                np.array([t.count(tok) for t in toks if tok in t], dtype=float), 1.0)
               for tok in g] for g in query_groups(query)]
    return groups, np.array([len(t) for t in toks])


def test_bm25_prefers_documents_matching_every_word():
    docs = ["checkout checkout checkout flow", "checkout on ios", "android search ranking",
            "ios release notes"]
    score, hit = bm25(*_postings(docs, "checkout ios"))
    assert list(np.argsort(-score, kind="stable")[:3]) == [1, 0, 3]
    assert score[2] == 0.0 and hit[:, 1].all() and not hit[1, 0]
    # the share of words matched multiplies the score: one word of two halves it
    s_one, _ = bm25(*_postings(docs, "checkout"))
    assert score[0] == pytest.approx(s_one[0] / 2)


def test_bm25_idf_rewards_rare_terms_and_counts_repeated_postings_once_per_doc():
    docs = ["ios", "ios", "ios", "ios rare"]
    score, _ = bm25(*_postings(docs, "rare"))
    common, _ = bm25(*_postings(docs, "ios"))
    assert score[3] > common[3] > 0
    # one document listed twice for a term (two fields) adds both, counts once for df
    twice, _ = bm25([[(np.array([0, 0]), np.array([1.0, 1.0]), 1.0)]], np.array([2, 2]))
    once, _ = bm25([[(np.array([0]), np.array([2.0]), 1.0)]], np.array([2, 2]))
    assert twice[0] > 0 and once[0] > 0 and twice[1] == once[1] == 0
    assert bm25([], np.array([1, 2]))[0].tolist() == [0.0, 0.0]


def test_contains_all_is_substring_matching_for_the_search_box():
    texts = pd.Series(["country = de country=de", "country = dk country=dk", "platform = ios"])
    assert contains_all(texts, ["country", "d"]).tolist() == [True, True, False]
    assert contains_all(texts, ["country=de"]).tolist() == [True, False, False]
    assert contains_all(texts, []).tolist() == [True, True, True]


def test_no_other_tokenizer_or_ranking_in_the_package():
    """The context index, the memory and the UI import their tokens and ranking from
    workbench.textsearch; nobody else defines a tokenizer or a BM25/TF-IDF scorer."""
    own = ROOT / "textsearch.py"
    for p in ROOT.rglob("*.py"):
        if p == own:
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not names & {"tokenize", "word_tokens", "query_groups", "bm25"}, p
        src = p.read_text(encoding="utf-8")
        assert "ln(1 + n.n / df.df)" not in src and "(K1 + 1.0)" not in src, p
    users = {"context/index.py", "context/search.py", "investigation/library/memory.py",
             "ui/data.py"}
    for rel in users:
        assert "from ..textsearch import" in (ROOT / rel).read_text() or \
            "from ...textsearch import" in (ROOT / rel).read_text(), rel
