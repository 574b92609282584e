"""Reading what the page shows, for the browser tests: the live BokehJS models.

Every read is a null-safe JavaScript predicate over ``window.Bokeh.documents``
(a predicate that throws fails at once instead of retrying, stack-notes.md), and
every wait is Playwright's ``wait_for_function`` on a condition, never a sleep.

The timeline is the figure whose title starts with ``"<metric> ·"`` (the
comparison plots are titled ``A: ...``/``B: ...`` and the counterfactual
``Observed vs expected ...``); its data is read from the renderer holding the
``observed`` column.
"""
from __future__ import annotations

from playwright.sync_api import Page

METRIC = "conversion_rate"
#: ms: a loaded 2-core machine (other jobs, a replay step in the background) is slow.
WAIT = 90_000

# {title, data}: the timeline's title and the last 48 observed values (a string), or null.
_TIMELINE = """
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  let found = null;
  for (const d of docs) {
    for (const m of (d.all_models || [])) {
      const t = m && m.title;
      if (found || !t || typeof t.text !== "string" || !t.text.startsWith(prefix)) continue;
      for (const r of (m.renderers || [])) {
        const s = r && r.data_source && r.data_source.data;
        const obs = s && (s.get ? s.get("observed") : s.observed);
        const exp = s && (s.get ? s.get("expected") : s.expected);
        if (obs && exp && obs.length) {
          found = {title: t.text, data: Array.from(obs).slice(-48).join(",")};
          break;
        }
      }
      if (!found) found = {title: t.text, data: null};
    }
  }
"""
TIMELINE_JS = "(prefix) => {" + _TIMELINE + " return found; }"
# True once the timeline's title contains `frag` (is `prefix frag` when `exact`) and,
# when `before` is given, its data differs from `before`.
TIMELINE_WAIT_JS = """([prefix, frag, before, exact]) => {""" + _TIMELINE + """
  if (!found) return false;
  if (exact ? found.title !== prefix + " " + frag : !found.title.includes(frag)) return false;
  if (before === null) return true;
  return found.data !== null && found.data !== before;
}"""


def timeline(page: Page, metric: str = METRIC) -> dict:
    """``{"title": ..., "data": ...}`` of the timeline shown (``{}`` if none yet)."""
    return page.evaluate(TIMELINE_JS, f"{metric} ·") or {}


def wait_timeline(page: Page, frag: str, *, changed_from: str | None = None,
                  exact: bool = False, metric: str = METRIC, timeout: int = WAIT) -> dict:
    """Wait until the timeline's title contains ``frag`` (is ``"<metric> · frag"`` with
    ``exact``) and its data is not ``changed_from``; return what it shows then."""
    page.wait_for_function(TIMELINE_WAIT_JS, arg=[f"{metric} ·", frag, changed_from, exact],
                           timeout=timeout)
    return timeline(page, metric)


from workbench.ui.harness import LAST_TS_FN as _LAST_TS  # noqa: E402
from workbench.ui.harness import LAST_TS_JS  # noqa: E402,F401


#: Samples what the page shows on every animation frame (between two messages from the
#: server, never half-way through one) and records each frame where the timeline shows
#: the live investigation (titled exactly ``<metric> · everything``, no "as of") while
#: the evidence's observed-vs-expected plot ends at another time than the timeline.
WATCH_EVIDENCE_JS = """(metric) => {""" + _LAST_TS + """
  window.__wbMismatch = [];
  window.__wbFrames = 0;
  const live = metric + " · everything";
  const liveTitle = () => {
    const docs = (window.Bokeh && window.Bokeh.documents) || [];
    for (const d of docs) for (const m of (d.all_models || []))
      if (m && m.title && m.title.text === live) return true;
    return false;
  };
  const tick = () => {
    window.__wbFrames += 1;
    if (liveTitle()) {
      const tl = lastTs(live), cf = lastTs("Observed vs expected");
      if (tl !== null && cf !== null && tl !== cf)
        window.__wbMismatch.push([new Date(tl).toISOString(), new Date(cf).toISOString()]);
    }
    window.__wbRaf = requestAnimationFrame(tick);
  };
  window.__wbRaf = requestAnimationFrame(tick);
  return true;
}"""
