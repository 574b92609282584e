# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["title"]
# # Investigation
#
# The template of every saved investigation. Run it as it is to investigate
# the bundled demo passport; `save_investigation` fills it in for one
# investigation: it keeps the defaults below, adds a cell tagged
# `injected-parameters` after them (the papermill convention, so
# `papermill -p metric ...` works too) and writes the answer as it was saved.
# Re-running all cells rebuilds the investigation from the data and checks
# that it reproduces the saved ranked causes.

# %% tags=["parameters"]
passport = "sample_data/demo"  # passport directory
metric = "conversion_rate"  # a metric of passport.yaml
window = None  # "START/END" (ISO UTC) or None: the most significant divergence
db = None  # DuckDB store; None: PASSPORT/.workbench/store.duckdb
investigation_id = None  # set when saved in an investigations library
version = None  # the saved version this notebook is
memory = None  # memory index of past investigations (prior evidence); None: none
memory_asof = None  # only decisions made before this time count (reproducible priors)
hypotheses = None  # your own: ["LABEL;DIM=VAL;START;END", ...], ranked with the change log
verify = None  # re-run the DoWhy verification; a saved version sets it as it was saved

# %% [markdown] tags=["saved-answer"]
# ## The answer as saved
#
# Nothing saved yet: this is the template.

# %% tags=["saved"]
saved = None  # the saved verdict, ranked causes and input hashes

# %% [markdown]
# ## Re-run the investigation from the data

# %%
from workbench.investigation import rerun_investigation

# wb.investigate(...) without saving a new version, with the memory as it was
inv = rerun_investigation(passport, metric=metric, window=window, db=db, memory=memory,
                          memory_asof=memory_asof, hypotheses=hypotheses, verify=verify)
print(inv.summary())

# %% [markdown]
# ## Hypotheses and their evidence
#
# Every change near the onset is a hypothesis; the confidence is a posterior
# shared with "outside the log".

# %%
inv.to_frame().head(10)

# %%
for cause in inv.causes[:3]:
    print(f"{cause['change_id']}  {cause['confidence']:.0%}  {cause['kind']} {cause['target']}")
    for line in cause["evidence"]:
        print("   -", line)

# %% [markdown]
# ## Causal verification and the counterfactual
#
# The top causes are verified with DoWhy unless `workbench.set_options(verify=False)`:
# a backdoor estimate attacked by refuters, then the metric without the change in the
# scope the divergence was found in (observed, without the change, its 95% band).

# %%
rep = inv.verification
if rep is None:
    print("not verified: set_options(verify=False), or DoWhy is not installed")
else:
    for v in rep.causes:
        print(f"{v.change_id}: {v.verdict.upper()} - {v.reason}")
        for r in v.refuters:
            print(f"   {'passed' if r.passed else 'FAILED'}  {r.detail}")
    if rep.counterfactual is not None:
        print(rep.counterfactual[1].evidence())

# %%
if rep is not None and rep.counterfactual is not None:
    import matplotlib.pyplot as plt

    cf = rep.counterfactual[1].series
    ts = cf["ts"].dt.tz_localize(None)  # UTC
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.fill_between(ts, cf["lo"], cf["hi"], alpha=0.3, label="95% band")
    ax.plot(ts, cf["observed"], label="observed")
    ax.plot(ts, cf["counterfactual"], "--", label=f"without {rep.counterfactual[0]}")
    ax.set(title=f"{metric} in {rep.counterfactual[1].region}", xlabel="time (UTC)")
    ax.legend()
    plt.show()

# %% [markdown]
# ## The story for each reader

# %%
from IPython.display import Markdown, display

from workbench.investigation import ROLES, narrate

for role in ROLES:
    display(Markdown(narrate(inv, role)))

# %% [markdown]
# ## Show the query
#
# Each number above comes from one SQL statement on the store; paste one into
# any DuckDB session on `inv.db` to get the same number.

# %%
for name, sql in inv.queries.items():
    print(f"-- {name}\n{sql}\n")

# %% [markdown] tags=["decisions"]
# ## Decisions
#
# None recorded.

# %% [markdown]
# ## Reproduction check
#
# Compares the re-run with the saved answer: verdict, ranked causes and the
# hashes of the input files.

# %%
from workbench.investigation import reproduction_check

reproduction_check(inv, saved)
