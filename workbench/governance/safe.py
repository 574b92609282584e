"""Safe rendering of what people type (notes, decision reasons) into Markdown.

Text typed by one user is shown to others in the served workbench (Panel's
Markdown pane) and in shared notebooks (JupyterLab's Markdown renderer). Both
accept raw HTML and links inside Markdown, so a note such as
``<img src=x onerror=...>`` or ``[here](javascript:...)`` would run in the
reader's page. :func:`safe_markdown` makes such text inert, the output-encoding
rule of the OWASP XSS Prevention Cheat Sheet (rule 1, HTML entity encoding)
applied before Markdown sees it, plus backslash escapes for the brackets of
Markdown's links and images and for table cell bars: what was typed is shown
as typed, never interpreted as markup or a link.
"""
from __future__ import annotations

import html
import re

__all__ = ["safe_markdown"]

#: Markdown punctuation that could make a link or an image, or end a table cell
_MD = re.compile(r"([\\\[\]|])")


def safe_markdown(text) -> str:
    """``text`` as inert Markdown on one line: HTML encoded, Markdown syntax escaped.

    >>> safe_markdown('<script>x</script> [a](javascript:b)')
    '&lt;script&gt;x&lt;/script&gt; \\\\[a\\\\](javascript:b)'
    """
    s = _MD.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))
    return html.escape(s, quote=False)
