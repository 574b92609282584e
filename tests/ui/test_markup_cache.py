"""The workbench's Markdown panes render a text once for every session (served, each
session shows the same cards and headings): the HTML must be what Panel renders, and
a pane with other rendering options must not get another pane's HTML."""
from __future__ import annotations


def test_rendered_once_and_the_same_as_panels():
    import panel as pn

    from workbench.ui import _viewbase
    from workbench.ui._viewbase import _md

    text = "**#1 chg-0431** · flag <span class='wb-muted'>a & b</span>\n\n- one\n- two"
    first, second = _md(text), _md(text)
    assert first._transform_object(text) == pn.pane.Markdown(text)._transform_object(text)
    keys = [k for k in _viewbase._RENDERED.keys() if k[0] == text]
    assert len(keys) == 1  # both panes: one rendering
    assert second._transform_object(text) == first._transform_object(text)
    # other options: rendered on their own, as Panel renders them
    hard = _md(text, hard_line_break=True)
    assert hard._transform_object(text) == \
        pn.pane.Markdown(text, hard_line_break=True)._transform_object(text)
    assert len([k for k in _viewbase._RENDERED.keys() if k[0] == text]) == 2
