# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: checkout conversion fell. Is it real, where, and which change?
#
# The bundled demo passport (`sample_data/demo`) holds three weeks of hourly
# sessions and conversions of a web and app shop, broken down by country,
# platform, app version, browser and plan, and its change log: deploys, flag
# flips, config changes. The cells run from any folder (`wb.sample_passport()` finds
# the demo).

# %% tags=["parameters"]
passport = None  # a passport directory; None: the bundled demo, from any working directory
metric = "conversion_rate"
db = None  # DuckDB store; None: PASSPORT/.workbench/store.duckdb
library = "investigations"  # where the investigation is saved; None: not saved

# %% [markdown]
# ## One call: load, check the data, find the divergence, localize it, rank the changes

# %%
import workbench as wb

passport = passport or wb.sample_passport("demo")
inv = wb.investigate(passport, metric=metric, db=db, artifact_dir=library)
inv

# %%
print(inv.summary())

# %% [markdown]
# ## Where: the slices that explain the divergence

# %%
import pandas as pd

slices = pd.DataFrame(inv.slices)
slices.head()

# %% [markdown]
# ## Which change: ranked hypotheses with their evidence

# %%
causes = inv.to_frame()
causes.head(5)

# %%
for cause in inv.causes[:3]:
    print(f"{cause['confidence']:.0%}  {cause['change_id']}  {cause['kind']} {cause['target']}")
    for line in cause["evidence"]:
        print("      -", line)

# %% [markdown]
# ## Show the query
#
# Every number comes from one SQL statement on the store. Run the one behind
# the metric's time series yourself and read the same numbers.

# %%
import duckdb

print(inv.queries["metric_series"])
con = duckdb.connect(inv.db, read_only=True)
con.execute("SET TimeZone='UTC'")
series = con.execute(inv.queries["metric_series"]).df()
con.close()
series.tail()

# %%
# The observed value over the divergence window, recomputed from the query's rows
start, end = (pd.Timestamp(t) for t in inv.divergence["window"])
in_window = series[(series["ts"] >= start) & (series["ts"] <= end)]
recomputed = in_window["num"].sum() / in_window["den"].sum()
print(f"observed {metric}: {recomputed:.6g} from the query, {inv.divergence['observed']:.6g} "
      "in the answer")

# %% [markdown]
# ## The saved artifact and similar past investigations
#
# With a `library`, the investigation was saved as version 1 of a notebook
# artifact in it. Past investigations that look like this one are suggested
# with how they were resolved.

# %%
print("artifact:", inv.artifact)
if library is not None:
    from workbench.investigation.memory import memory_path, similar_investigations

    for s in similar_investigations(memory_path(library), inv):
        print(s.line())

# %% [markdown]
# ## The workbench
#
# The same components `workbench serve` shows in a browser, inline over this
# investigation: the timeline with its baseline band, onset and change markers
# (hover a triangle), the replay (play or step through time), the slices (click
# one to drill down; heatmap, side-by-side comparison, rate vs mix), the
# hypotheses (confirm or refute: recorded on the investigation in the library),
# the evidence and the story for an engineer, an operator or a product manager.
# `ui.extension()` loads Panel with `inline=True`, so it renders offline. The
# keyboard shortcuts (j/k hypotheses, d/u drill, space play) work while the
# pointer is over it.

# %%
from workbench import ui

ui.extension()
state = ui.WorkbenchState.from_investigation(inv, library=library)
ui.Workbench(state=state, keyboard="focus")

# %% [markdown]
# ## Next
#
# Confirm or refute hypotheses and save a new version; each step is in the
# audit log (`workbench audit log`):
#
# ```python
# from workbench.investigation import versions
# versions.record_decision(library, inv.investigation_id, hypothesis="chg-0431",
#                          status="confirmed", note="payment step broken on iOS 5.2")
# versions.save_investigation(inv, message="flag new_checkout_flow broke iOS 5.2 checkout",
#                             root=library)
# ```
#
# From a terminal: `workbench investigations list`, `show`, `diff`, `reopen`, `stats`.
