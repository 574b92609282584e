"""Small-cell suppression: no small count released, none recomputable from margins."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.governance.suppression import suppress, suppress_mask

counts = st.integers(min_value=0, max_value=40)


def _check_groups(table, hidden, groups, k):
    """Each group: no cell withheld, or >= 2 withheld adding up to >= k, or a total < k
    (a small count itself, withheld where it is released)."""
    table = table.assign(_h=hidden)
    for cols in groups:
        parts = [table] if not cols else [g for _, g in table.groupby(cols, sort=False)]
        for g in parts:
            h = g[g["_h"]]
            ok = (len(h) == 0 or (len(h) >= 2 and h["n"].sum() >= k)
                  or g["n"].sum() < k)
            assert ok, (cols, g.to_dict("records"))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(counts, min_size=1, max_size=12), st.integers(min_value=2, max_value=15))
def test_one_way_table_with_its_total(cells, k):
    table = pd.DataFrame({"value": [f"v{i}" for i in range(len(cells))], "n": cells})
    hidden = suppress_mask(table, "n", [[]], k)
    released = table["n"][~hidden]
    assert not ((released >= 1) & (released < k)).any()
    _check_groups(table, hidden, [[]], k)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(min_value=2, max_value=5), st.integers(min_value=2, max_value=5),
       st.data(), st.integers(min_value=2, max_value=15))
def test_two_way_table_with_both_margins(n_rows, n_cols, data, k):
    cells = data.draw(st.lists(counts, min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    table = pd.DataFrame({"r": np.repeat(np.arange(n_rows), n_cols),
                          "c": np.tile(np.arange(n_cols), n_rows), "n": cells})
    groups = [["r"], ["c"], []]
    hidden = suppress_mask(table, "n", groups, k)
    released = table["n"][~hidden]
    assert not ((released >= 1) & (released < k)).any()
    _check_groups(table, hidden, groups, k)


def test_a_lone_small_cell_takes_the_next_smallest_with_it():
    table = pd.DataFrame({"country": ["DE", "FR", "IT", "ES"], "n": [3, 50, 20, 400],
                          "rate": [0.1, 0.2, 0.3, 0.4]})
    out = suppress(table, "n", [[]], ["rate"], k=11)
    # DE is small; alone, total - released = DE: IT (the smallest other) goes too
    assert out["n"].isna().tolist() == [True, False, True, False]
    assert out["rate"].isna().tolist() == [True, False, True, False]
    assert out.loc[1, "rate"] == 0.2 and len(out) == 4


def test_two_small_cells_adding_up_below_k_take_a_third():
    table = pd.DataFrame({"v": list("abcd"), "n": [2, 3, 30, 60]})
    hidden = suppress_mask(table, "n", [[]], k=11)
    assert hidden.tolist() == [True, True, True, False]


def test_zero_is_released_and_k_is_checked():
    table = pd.DataFrame({"v": list("ab"), "n": [0, 40]})
    assert not suppress_mask(table, "n", [[]], k=11).any()
    with pytest.raises(ValueError, match="positive"):
        suppress_mask(table, "n", [[]], k=0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=4),
       st.data(), st.integers(min_value=2, max_value=15))
def test_linked_tables_margins_are_cells_too(n_rows, n_cols, data, k):
    """A two-way table released beside its row and column tables (as a heatmap beside
    the ranked values of both its dimensions): no small cell released, and in every
    equation no withheld cell is the difference of released ones."""
    from workbench.governance.suppression import suppress_linked

    cells = np.array(data.draw(st.lists(counts, min_size=n_rows * n_cols,
                                        max_size=n_rows * n_cols)), float).reshape(n_rows, n_cols)
    rows, cols = cells.sum(axis=1), cells.sum(axis=0)
    allc = np.concatenate([cells.ravel(), rows, cols])
    r0, c0 = cells.size, cells.size + n_rows
    eqs = [(r0 + i, [i * n_cols + j for j in range(n_cols)]) for i in range(n_rows)]
    eqs += [(c0 + j, [i * n_cols + j for i in range(n_rows)]) for j in range(n_cols)]
    eqs += [(None, list(range(r0, r0 + n_rows))), (None, list(range(c0, c0 + n_cols)))]
    h = suppress_linked(allc, eqs, k)
    assert not ((allc[~h] >= 1) & (allc[~h] < k)).any()
    for margin, idx in eqs:
        idx = np.array(idx)
        n = int(h[idx].sum())
        if margin is not None and h[margin]:
            assert n >= 1 or not (allc[idx] > 0).any()
        else:
            assert n == 0 or (n >= 2 and allc[idx][h[idx]].sum() >= k) or allc[idx].sum() < k
