"""Typed text rendered through the real Markdown renderers stays inert."""
import re

import pytest

from workbench.governance.safe import safe_markdown

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "[click](javascript:alert(3))",
    "![x](javascript:alert(4))",
    "<a href='javascript:alert(5)'>x</a>",
    "<javascript:alert(6)>",
    "<svg onload=alert(7)>",
    "a | b\n<iframe src=//evil>",
]


def _panel_html(text: str) -> str:
    """What Panel's Markdown pane sends to the page (markdown-it, the served viewer)."""
    import html

    import panel as pn

    pane = pn.pane.Markdown(text)
    return html.unescape(pane._transform_object(pane.object)["object"])


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_notes_render_as_text(text):
    out = _panel_html(f"note: {safe_markdown(text)}")
    assert not re.search(r"<(script|img|a|svg|iframe)\b", out, re.I), out
    assert "onerror=" not in out.replace("onerror=&quot;", "") or "<img" not in out
    assert 'href="javascript' not in out.lower()
    # unescaped, the same note does become markup: the renderer is the one at risk
    raw = _panel_html(f"note: {text}")
    assert re.search(r"<(script|img|a|svg|iframe)\b|javascript", raw, re.I)


def test_plain_text_survives():
    assert safe_markdown("rolled back new_flow (ios 5.2) at 10:00") == \
        "rolled back new_flow (ios 5.2) at 10:00"
    assert safe_markdown("a|b\nc") == "a\\|b c"


def test_notebook_decisions_cell_is_escaped():
    from workbench.investigation.artifact import decisions_markdown

    md = decisions_markdown({"decisions": [{"ts": "2026-11-20T10:00:00Z", "author": "<b>x</b>",
                                            "hypothesis": "chg-1", "status": "confirmed",
                                            "note": "<script>alert(1)</script>"}],
                             "notes": [{"ts": "2026-11-20T11:00:00Z", "author": "ana",
                                        "text": "[x](javascript:alert(1))"}]})
    assert "<script>" not in md and "<b>" not in md
    assert not re.search(r"(?<!\\)\]\(javascript", md) and "\\](javascript" in md
    assert "**confirmed**" in md and "&lt;script&gt;" in md
    out = _panel_html(md)  # rendered: a table of text, no element from the notes
    body = out[out.index("<table>"):]
    assert not re.search(r"<(script|b|a)\b", body) and "<td>[x](javascript:alert(1))</td>" in body
