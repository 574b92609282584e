"""Small JavaScript components: keyboard shortcuts, and a clickable list.

Keyboard shortcuts: a tiny component that forwards key presses to Python.

Panel has no built-in shortcut widget, so :class:`KeyboardShortcuts` is a
``panel.custom.JSComponent`` whose ES module listens for ``keydown`` and sends
``{key}`` to Python with ``model.send_msg``; Python maps the key to a state
action. The module is inlined (no CDN), so it works offline, served and in
JupyterLab.

Keys typed into a text field are ignored (the search box keeps its letters).
``scope="page"`` listens on the whole page (the served app); ``scope="focus"``
only while the pointer or focus is inside the workbench (in JupyterLab, so
``j``/``k``/``d`` keep their notebook meaning elsewhere).
"""
from __future__ import annotations

from typing import Callable

import param
from panel.custom import JSComponent

__all__ = ["ClickList", "KeyboardShortcuts", "SHORTCUTS"]

#: key -> what it does (shown in the help line and in tooltips).
SHORTCUTS = {
    "j": "next hypothesis",
    "k": "previous hypothesis",
    "d": "drill down into the top slice",
    "u": "drill up",
    " ": "play / pause the replay",
    "/": "search",
}


class KeyboardShortcuts(JSComponent):
    """Forward single-key shortcuts to a Python callback.

    Parameters
    ----------
    keys:
        The keys to forward (``" "`` is space).
    scope:
        ``page`` or ``focus`` (see the module docstring).
    on_key:
        Called with the key on the server (or kernel) side.
    """

    keys = param.List(default=list(SHORTCUTS), doc="Keys forwarded to Python.")
    scope = param.Selector(default="page", objects=["page", "focus"],
                           doc="Listen on the whole page, or only while inside the workbench.")
    pressed = param.Integer(default=0, doc="Count of forwarded key presses (for tests).")
    last_key = param.String(default="", doc="The last key forwarded.")

    _esm = """
    export function render({ model, el }) {
      const hint = document.createElement("span");
      hint.className = "wb-keys-hint";
      hint.textContent = "⌨ j/k hypotheses · d/u drill · space play · / search";
      hint.title = "Keyboard shortcuts (ignored while typing in a field)";
      let inside = false;
      const isInside = (e) => e.composedPath().some(
        (n) => n.classList && n.classList.contains("wb-root"));
      const onMove = (e) => { inside = isInside(e); };
      const typing = (e) => {
        const t = (e.composedPath && e.composedPath()[0]) || e.target;
        if (!t || !t.tagName) return false;
        const tag = t.tagName.toUpperCase();
        return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable;
      };
      const deepFind = (root, sel) => {
        const hit = root.querySelector(sel);
        if (hit) return hit;
        for (const n of root.querySelectorAll("*")) {
          if (n.shadowRoot) {
            const h = deepFind(n.shadowRoot, sel);
            if (h) return h;
          }
        }
        return null;
      };
      const onKey = (e) => {
        if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
        if (model.scope === "focus" && !inside && !isInside(e)) return;
        if (!model.keys.includes(e.key)) return;
        e.preventDefault();
        e.stopPropagation();
        if (e.key === "/") {
          const box = deepFind(document, "input[placeholder^='Search']");
          if (box) box.focus();
        }
        model.send_msg({ key: e.key });
      };
      document.addEventListener("keydown", onKey, true);
      document.addEventListener("pointermove", onMove, true);
      model.on("remove", () => {
        document.removeEventListener("keydown", onKey, true);
        document.removeEventListener("pointermove", onMove, true);
      });
      return hint;
    }
    """

    _stylesheets = ["""
    .wb-keys-hint { color: #6b7280; font-size: 12px; white-space: nowrap; }
    """]

    def __init__(self, on_key: Callable[[str], None] | None = None, **params):
        super().__init__(**params)
        self._on_key = on_key

    def _handle_msg(self, data) -> None:
        key = (data or {}).get("key", "")
        if key not in self.keys:
            return
        self.last_key = key
        self.pressed += 1
        if self._on_key is not None:
            self._on_key(key)


class ClickList(JSComponent):
    """A list of rows, one model: click a row (or press Enter on it) to act on it.

    ``rows`` is a list of ``{"label", "html", "title"}``; a click sends the row's index
    to Python (``on_click``). One Bokeh model however many rows, so updating the list
    re-lays out the page once (a button and a text pane per row cost a layout each),
    and it renders offline (the ES module is inline).
    """

    rows = param.List(default=[], doc="Rows: dicts with label, html (the rest) and title.")
    header = param.String(default="", doc="HTML above the rows.")
    clicks = param.Integer(default=0, doc="Count of rows clicked (for tests).")

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement("div");
      box.className = "wb-list";
      const draw = () => {
        box.innerHTML = "";
        if (model.header) {
          const h = document.createElement("div");
          h.className = "wb-list-head";
          h.innerHTML = model.header;
          box.appendChild(h);
        }
        model.rows.forEach((r, i) => {
          const row = document.createElement("div");
          row.className = "wb-list-row";
          row.tabIndex = 0;
          row.title = r.title || "";
          const b = document.createElement("button");
          b.className = "wb-list-label";
          b.textContent = r.label;
          b.title = r.title || "";
          const t = document.createElement("span");
          t.className = "wb-list-text";
          t.innerHTML = r.html || "";
          row.appendChild(b);
          row.appendChild(t);
          const go = () => model.send_msg({ index: i });
          b.addEventListener("click", go);
          row.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
          box.appendChild(row);
        });
      };
      draw();
      model.on(["rows", "header"], draw);
      return box;
    }
    """

    _stylesheets = ["""
    .wb-list { font-size: 13px; width: 100%; }
    .wb-list-head { color: #6b7280; font-size: 12px; padding: 2px 4px 6px 4px; }
    .wb-list-row { display: flex; align-items: center; gap: 10px; padding: 1px 0; }
    .wb-list-row:hover { background: #f3f4f6; }
    .wb-list-label { min-width: 320px; max-width: 320px; text-align: left; cursor: pointer;
      border: 1px solid #e5e7eb; border-radius: 4px; background: #fff; padding: 4px 8px;
      font: inherit; color: #1f2937; overflow: hidden; text-overflow: ellipsis;
      white-space: nowrap; }
    .wb-list-label:hover { border-color: #2563eb; color: #1d4ed8; }
    .wb-list-text { color: #374151; }
    .wb-list-text .m { color: #6b7280; }
    .wb-list-text .b { display: inline-block; padding: 0 6px; border-radius: 8px;
      background: #eef2ff; color: #3730a3; font-size: 11px; }
    """]

    def __init__(self, on_click: Callable[[int], None] | None = None, **params):
        super().__init__(**params)
        self._on_click = on_click

    def _handle_msg(self, data) -> None:
        i = (data or {}).get("index")
        if not isinstance(i, int) or not 0 <= i < len(self.rows):
            return
        self.clicks += 1
        if self._on_click is not None:
            self._on_click(i)
