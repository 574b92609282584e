"""Slice shares above 100% or below 0% come with a sentence (issue 17 item 7)."""
from __future__ import annotations

import dataclasses

from workbench._format import share_meaning
from workbench.investigation.render import answer_markdown


def test_share_meaning_sentences():
    assert share_meaning(0.0) is None and share_meaning(1.0) is None and share_meaning(None) is None
    over = share_meaning(1.01, "platform=ios")
    assert over.startswith("platform=ios explains 101% of the divergence: more than all of it")
    assert "opposite way" in over
    under = share_meaning(-0.03)
    assert "-3%" in under and "moved against the divergence" in under


def test_summary_and_markdown_explain_odd_shares(ios_inv):
    slices = [dict(ios_inv.slices[0], explained_share=1.01),
              {"filter": {"country": "DE"}, "explained_share": -0.03, "baseline": 1.0,
               "observed": 1.1}]
    inv = dataclasses.replace(ios_inv, slices=slices)
    text = inv.summary()
    assert "Platform=ios explains 101% of the divergence: more than all of it" in text
    assert "Country=DE explains -3% of the divergence: it moved against" in text
    md = answer_markdown(inv.to_dict())
    assert "explains -3% of the divergence" in md
    plain = dataclasses.replace(ios_inv, slices=[dict(ios_inv.slices[0], explained_share=0.9)])
    assert "of the divergence:" not in plain.summary()


def test_ui_row_carries_the_note():
    from workbench.ui.views import _share_note_html

    assert _share_note_html(0.5) == ""
    assert "more than all of it" in _share_note_html(1.2)
