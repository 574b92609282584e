"""Who moved the baseline: a diff of two baseline versions by the changes behind it.

Two versions of a metric's baseline (:mod:`workbench.store.baselines`) expect
different values when their periods hold different behaviour: a flag switched
on for iOS between them lowers what "normal" is on iOS, and through iOS's
weight the expected total. This module names the changes and experiments of
the log whose slices moved the expectation, and by how much.

Method
------
A baseline's expectation is its hour-of-week profile summed over the week:
``N`` (numerator) and ``D`` (denominator; 1 per bucket for a sum). The total's
expected rate moves by ``R_b - R_a`` with ``R = N / D``. For a ratio that move
splits exactly over any partition of the population into slices ``v``
(a shift-share, or Kitagawa-style, decomposition: Kitagawa 1955, "Components
of a difference between two rates", JASA 50(272)):

    R_b - R_a = sum_v [(N_bv - N_av) - R_a (D_bv - D_av)] / D_b

so a slice ``S``'s *contribution* is ``[(N_bS - N_aS) - R_a (D_bS - D_aS)] / D_b``:
what its own numerator moved beyond what its volume change carries at the old
rate. For a sum the contribution is ``N_bS - N_aS``. Its *share* is the
contribution over the total's move. A change is a candidate when it took effect
between the start of the earlier period and the end of the later one (its
exposure differs between the periods); its slice is its scope, profiled with
the same statement shape as the stored cube (mean per hour of the week, summed
over the week), one query per scope, each kept in ``sql``. Scopes that overlap
share their rows, so their shares may add up to more than 1; each share is its
own slice's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ..store.sql import q

__all__ = ["BaselineMovers", "who_moved"]

#: The cube's total row (:data:`workbench.store.baselines.ALL`).
_ALL = "(all)"


@dataclass(frozen=True)
class BaselineMovers:
    """The changes whose slices moved a metric's expectation between two baselines.

    Attributes
    ----------
    a, b:
        The two versions' ids.
    metric, kind:
        The metric and how it aggregates (``ratio`` or ``sum``).
    total:
        ``{"a": R_a, "b": R_b, "move": R_b - R_a}`` of the whole population.
    movers:
        One dict per candidate change, largest ``|contribution|`` first:
        ``change_id, kind, target, ts, scope, experiment, a_value, b_value,
        relative_change, own_relative_change (its rows in no other candidate's
        scope), contribution (all its rows), attributed (shared rows split),
        share (attributed over the move), same_slice_as, sql``.
    """

    a: str
    b: str
    metric: str
    kind: str
    total: dict
    movers: tuple[dict, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "kind": self.kind,
                "total": self.total, "movers": list(self.movers)}

    def summary(self, top: int = 8) -> str:
        t = self.total
        lines = [f"expected {self.metric}: {t['a']:.5g} -> {t['b']:.5g} ({t['move']:+.5g}); "
                 "moved by:"]
        if not self.movers:
            lines.append("  no change or experiment of the log took effect between the periods")
        for m in self.movers[:top]:
            where = ", ".join(f"{k}={v}" for k, v in (m["scope"] or {}).items()) or "everywhere"
            what = "experiment" if m["experiment"] else m["kind"]
            share = "" if m["share"] is None else f", {m['share']:.0%} of the move"
            lines.append(f"  {m['change_id']} ({what} {m['target']}, {where}): "
                         f"{m['attributed']:+.5g}{share}; its slice expected "
                         f"{m['a_value']:.5g} -> {m['b_value']:.5g} "
                         f"({m['relative_change']:+.1%})")
        return "\n".join(lines)


def _week_sums(cells: pd.DataFrame) -> tuple[float, float]:
    """``(N, D)`` of a cube's total: its mean profile summed over the hours of the week."""
    tot = cells[(cells["dimension"] == _ALL) & (cells["value"] == _ALL)]
    return float(tot["num"].sum()), float(tot["den"].sum())


def scope_profile_sql(sp, spec, period, scope: dict) -> str:
    """One statement: ``num, den`` of a scope's hour-of-week profile summed over the week.

    The same shape as the stored cube (:func:`workbench.store.baselines.profile_sql`):
    sums per time bucket, then the mean per hour of the week, then summed.
    """
    from ..store.queries import _ts, filter_sql

    secs = int(sp.manifest.grain_td.total_seconds())
    den = f"SUM({q(spec.denominator)})" if spec.kind == "ratio" else "1.0"
    return (f"WITH g AS (SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b, "
            f"SUM({q(spec.numerator)}) AS num, {den} AS den FROM {q(sp.schema)}.events\n"
            f"  WHERE ts >= {_ts(period[0])} AND ts < {_ts(period[1])} AND "
            f"{filter_sql(sp, scope)} GROUP BY 1),\n"
            f"h AS (SELECT (isodow(b) - 1) * 24 + hour(b) AS how, avg(num) AS num, "
            f"avg(den) AS den FROM g GROUP BY 1)\n"
            f"SELECT coalesce(sum(num), 0) AS num, coalesce(sum(den), 0) AS den FROM h")


def atoms_sql(sp, spec, period, scopes: list[dict]) -> str:
    """One statement: ``atom, num, den`` of each membership pattern of ``scopes``.

    ``atom`` is ``sum(2**k for scope k holding the row)`` (as in
    :func:`workbench.store.queries.metric_panel`); each atom's hour-of-week
    profile is summed over the week, as the cube does for a slice.
    """
    from ..store.queries import _ts, filter_sql

    secs = int(sp.manifest.grain_td.total_seconds())
    den = f"SUM({q(spec.denominator)})" if spec.kind == "ratio" else "1.0"
    bits = " + ".join(f"(CASE WHEN {filter_sql(sp, f)} THEN {2 ** k} ELSE 0 END)"
                      for k, f in enumerate(scopes)) or "0"
    return (f"WITH g AS (SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b, {bits} AS atom, "
            f"SUM({q(spec.numerator)}) AS num, {den} AS den FROM {q(sp.schema)}.events\n"
            f"  WHERE ts >= {_ts(period[0])} AND ts < {_ts(period[1])} GROUP BY 1, 2),\n"
            f"h AS (SELECT atom, (isodow(b) - 1) * 24 + hour(b) AS how, avg(num) AS num, "
            f"avg(den) AS den FROM g GROUP BY 1, 2)\n"
            f"SELECT atom, sum(num) AS num, sum(den) AS den FROM h GROUP BY 1 ORDER BY 1")


def _rate(n: float, d: float, ratio: bool) -> float:
    if ratio:
        return n / d if d else np.nan
    return n


def who_moved(con, sp, a, b) -> BaselineMovers:
    """Name the changes of the log whose slices moved the expectation from ``a`` to ``b``.

    Each change's slice gets its whole contribution (every row of its scope)
    and an *attributed* one: the rows its scope shares with other candidates'
    scopes are split among them in proportion to how much each scope moved on
    the rows it holds alone (a DE config change whose iOS rows fell with an iOS
    flag, while its other rows held, takes little of them). ``share`` is the
    attributed contribution over the total's move.

    Parameters
    ----------
    con:
        A connection to the store holding both versions.
    sp:
        The passport as the store knows it (:meth:`workbench.store.Store.passport`).
    a, b:
        :class:`~workbench.store.baselines.BaselineSnapshot` of the same metric,
        with their cells.

    Returns
    -------
    BaselineMovers
    """
    import json

    from ..errors import UsageError

    if a.metric != b.metric or a.passport != b.passport:
        raise UsageError(f"baselines {a.id} and {b.id} are of different metrics or passports "
                         f"({a.passport}/{a.metric} vs {b.passport}/{b.metric}); diff two "
                         "versions of one metric")
    spec = sp.manifest.metric(a.metric)
    ratio = spec.kind == "ratio"
    na, da = _week_sums(a.cells)
    nb, db = _week_sums(b.cells)
    ra, rb = _rate(na, da, ratio), _rate(nb, db, ratio)
    move = rb - ra
    lo, hi = min(a.period[0], b.period[0]), max(a.period[1], b.period[1])
    changes = con.execute(f"SELECT id, ts, kind, target, scope FROM {q(sp.schema)}.changes "
                          "WHERE ts > ? AND ts < ? ORDER BY ts, id", [lo, hi]).df()
    if changes.empty:
        return BaselineMovers(a.id, b.id, a.metric, spec.kind,
                              {"a": _num(ra), "b": _num(rb), "move": _num(move)})
    scopes_of = [json.loads(x) if isinstance(x, str) and x else {} for x in changes["scope"]]
    keys = list(dict.fromkeys(json.dumps(x, sort_keys=True) for x in scopes_of))[:16]
    scopes = [json.loads(k) for k in keys]
    sqls = {p: atoms_sql(sp, spec, s.period, scopes) for p, s in (("a", a), ("b", b))}
    at = {p: con.execute(q_).df().set_index("atom") for p, q_ in sqls.items()}
    atoms = at["a"].add_suffix("_a").join(at["b"].add_suffix("_b"), how="outer").fillna(0.0)
    atoms.index = atoms.index.astype(int)
    n_a, d_a, n_b, d_b = (atoms[c].to_numpy(float) for c in ("num_a", "den_a", "num_b", "den_b"))
    contrib = ((n_b - n_a) - ra * (d_b - d_a)) / db if ratio else (n_b - n_a)
    member = np.array([[(int(i) >> k) & 1 for k in range(len(scopes))] for i in atoms.index],
                      dtype=bool).reshape(len(atoms), len(scopes))
    per = []
    for k in range(len(scopes)):
        m = member[:, k]
        own = m & (member.sum(axis=1) == 1)
        use = own if own.any() and d_a[own].sum() > 0 else m
        whole = (_rate(n_a[m].sum(), d_a[m].sum(), ratio), _rate(n_b[m].sum(), d_b[m].sum(),
                                                                   ratio))
        alone = (_rate(n_a[use].sum(), d_a[use].sum(), ratio),
                 _rate(n_b[use].sum(), d_b[use].sum(), ratio))
        per.append({"whole": whole, "own_rel": alone[1] / alone[0] - 1 if alone[0] else 0.0,
                    "contribution": float(contrib[m].sum())})
    w = np.abs(np.nan_to_num(np.array([p["own_rel"] for p in per], dtype=float)))
    attributed = np.zeros(len(scopes))
    for i in range(len(atoms)):
        ks = np.flatnonzero(member[i])
        if len(ks) == 0:
            continue
        wk = w[ks] if w[ks].sum() > 0 else np.ones(len(ks))
        attributed[ks] += contrib[i] * wk / wk.sum()
    exps = set(a.active_experiments) | set(b.active_experiments)
    movers = []
    for ch, sc in zip(changes.itertuples(index=False), scopes_of):
        key = json.dumps(sc, sort_keys=True)
        if key not in keys:
            continue  # beyond 16 distinct scopes: not attributed
        k = keys.index(key)
        (va, vb), p = per[k]["whole"], per[k]
        same = [str(o.id) for o, s2 in zip(changes.itertuples(index=False), scopes_of)
                if json.dumps(s2, sort_keys=True) == key and str(o.id) != str(ch.id)]
        movers.append({
            "change_id": str(ch.id), "kind": str(ch.kind), "target": str(ch.target),
            "ts": pd.Timestamp(ch.ts).isoformat(), "scope": sc,
            "experiment": ch.kind == "experiment" or str(ch.target) in exps,
            "a_value": _num(va), "b_value": _num(vb),
            "relative_change": _num(vb / va - 1 if va else np.nan),
            "own_relative_change": _num(p["own_rel"]),
            "contribution": _num(p["contribution"]), "attributed": _num(attributed[k]),
            "share": _num(attributed[k] / move) if move else None,
            "same_slice_as": same,
            "sql": {"a": scope_profile_sql(sp, spec, a.period, sc),
                    "b": scope_profile_sql(sp, spec, b.period, sc),
                    "atoms_a": sqls["a"], "atoms_b": sqls["b"], "atom_bit": 2 ** k}})
    movers.sort(key=lambda m: -abs(m["attributed"] or 0.0))
    return BaselineMovers(a.id, b.id, a.metric, spec.kind,
                          {"a": _num(ra), "b": _num(rb), "move": _num(move)}, tuple(movers))


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 8)


def resolve_pair(con, *, a: str | None = None, b: str | None = None, metric: str | None = None,
                 v_from: int | None = None, v_to: int | None = None,
                 passport: str | None = None) -> tuple[str, str]:
    """The two baseline ids to diff: given as ids, or as versions of ``metric``.

    Raises
    ------
    UsageError
        When neither form is complete, or a version is not stored (listing those
        that are).
    """
    from ..errors import UsageError
    from ..store.baselines import list_baselines

    if a and b:
        return a, b
    if not (metric and v_from is not None and v_to is not None):
        raise UsageError("baselines diff: give two ids (A B), or --metric M --from V1 --to V2")
    df = list_baselines(con, passport=passport, metric=metric)
    if df["passport"].nunique() > 1:
        raise UsageError(f"baselines of {metric} are stored for several passports "
                         f"({', '.join(sorted(df['passport'].unique()))}); give --passport")
    ids = dict(zip(df["version"].astype(int), df["id"]))
    missing = [v for v in (v_from, v_to) if v not in ids]
    if missing:
        raise UsageError(f"no version {missing[0]} of the baseline of {metric}; stored versions: "
                         + (", ".join(str(v) for v in sorted(ids)) or "none"))
    return ids[v_from], ids[v_to]


def baseline_movers(db, *, metric: str | None = None, v_from: int | None = None,
                    v_to: int | None = None, a: str | None = None, b: str | None = None,
                    passport: str | None = None) -> BaselineMovers:
    """Who moved a metric's baseline between two stored versions (the Python API).

    Parameters
    ----------
    db:
        The store file.
    metric, v_from, v_to:
        The metric and its two versions; or ``a`` and ``b``, two baseline ids.
    passport:
        The passport's name, when the store holds baselines of several.

    Examples
    --------
    >>> mv = baseline_movers("shop/.workbench/store.duckdb", metric="conversion_rate",
    ...                      v_from=1, v_to=2)                      # doctest: +SKIP
    >>> mv.movers[0]["change_id"], mv.movers[0]["share"]            # doctest: +SKIP
    ('chg-1', 0.93)
    """
    from ..store import Store
    from ..store.baselines import load_baseline

    with Store(db, read_only=True) as st:
        ia, ib = resolve_pair(st.con, a=a, b=b, metric=metric, v_from=v_from, v_to=v_to,
                              passport=passport)
        ba, bb = load_baseline(st.con, ia), load_baseline(st.con, ib)
        return who_moved(st.con, st.passport(ba.passport), ba, bb)
