"""Where a served session's server CPU goes: its build, its first document, a slice click.

    .venv/bin/python benchmarks/session_profile.py [--sessions 5] [--clicks 6] [--top 25]
                                                   [--profile build|click|none]

Builds ``--sessions`` sessions in this process the way ``workbench serve`` does
(``WorkbenchApp.session`` into a Bokeh ``Document`` marked as a served session
that has not rendered yet, then Panel's ``document_ready`` hook for what follows
the first paint) after one shared investigation of the demo, and times each
stage on the process CPU clock (``time.process_time``): building the views,
their Bokeh models (``get_root``), the document as JSON (what is sent), the
deferred part; then ``--clicks`` slice clicks per session (``drill_to``), the
way a click on the slice list reaches the state. With ``--profile`` the stage
named is run under cProfile and its ``--top`` functions by cumulative time are
printed. Method: deterministic profiling (Python's ``cProfile``), CPU clocks rather
than wall clocks so other work on the machine does not count.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEMO = REPO / "sample_data" / "demo"


def _served_doc():
    """A Bokeh document as a served session holds it before the page has rendered."""
    import panel as pn
    from bokeh.document import Document

    doc = Document()
    pn.state._loaded[doc] = False
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--clicks", type=int, default=6)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--profile", choices=["build", "click", "none"], default="none")
    ap.add_argument("--freeze", action="store_true",
                    help="hold a click frozen, as served sessions did before (a model graph walk)")
    a = ap.parse_args(argv)

    import holoviews as hv
    import panel as pn
    from panel.io.state import set_curdoc

    from workbench.ui.app import WorkbenchApp

    hv.extension("bokeh", logo=False)
    pn.extension(notifications=False)
    tmp = Path(tempfile.mkdtemp(prefix="wb-profile-"))
    app = WorkbenchApp(str(DEMO), db=str(tmp / "store.duckdb"), metric="conversion_rate",
                       library=str(tmp / "library"))
    live = app.live(app.metric)
    app.prepare(live)
    filters = [dict(s["filter"]) for s in live.slices][:4] or [{}]
    for f in filters:  # the clicked slices' series are cached, as prefetching does served
        live.timeline(f)
        live.ranked_slices(f)
    prof = cProfile.Profile() if a.profile != "none" else None
    rows = []
    for i in range(a.sessions):
        doc = _served_doc()
        r = {}
        with set_curdoc(doc):
            c0 = time.process_time()
            if prof is not None and a.profile == "build":
                prof.enable()
            view = app.session()
            c1 = time.process_time()
            root = pn.panel(view)
            root.server_doc(doc)
            c2 = time.process_time()
            doc.to_json()
            c3 = time.process_time()
            n_first = len(doc.models)  # the first paint's models (before document_ready)
            pn.state._on_load(doc)  # the browser's document_ready: the deferred views
            c4 = time.process_time()
            if prof is not None and a.profile == "build":
                prof.disable()
            r.update(views=c1 - c0, models=c2 - c1, json=c3 - c2, deferred=c4 - c3,
                     n_first=n_first, n_models=len(doc.models))
            state = _find_state(view)
            clicks = []
            for k in range(a.clicks):
                f = filters[k % len(filters)] if k % 2 == 0 else {}
                t = time.process_time()
                if prof is not None and a.profile == "click":
                    prof.enable()
                with pn.io.hold(doc, freeze=a.freeze):  # what a served click does (_held)
                    state.drill_to(f)
                if prof is not None and a.profile == "click":
                    prof.disable()
                clicks.append(time.process_time() - t)
            r["click"] = sum(clicks) / len(clicks) if clicks else 0.0
        rows.append(r)
        pn.state._loaded.pop(doc, None)
        pn.state._onload.pop(doc, None)
    print(f"{'session':>8} {'views':>7} {'models':>7} {'json':>7} {'deferred':>9} "
          f"{'total':>7} {'n_first':>8} {'n_models':>9} {'click':>7}")
    for i, r in enumerate(rows):
        tot = r["views"] + r["models"] + r["json"] + r["deferred"]
        print(f"{i:>8} {r['views']:7.3f} {r['models']:7.3f} {r['json']:7.3f} "
              f"{r['deferred']:9.3f} {tot:7.3f} {r['n_first']:8d} {r['n_models']:9d} "
              f"{r['click']:7.3f}")
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(a.top)
        print(out.getvalue())
    return 0


def _find_state(view):
    """The session's :class:`WorkbenchState` (unauthenticated: the page is the workbench)."""
    return view.state


if __name__ == "__main__":
    sys.exit(main())
