"""The simulated world that answers a launch: the next hours of a passport's events.

A passport from the generator carries its ground truth (``truth.json``: which
changes are culprits, their scope and effect). The world continues the
passport's hourly events past its end:

- each hour copies the *template* hour, the same hour of the week before the
  onset (so daily and weekly seasonality carry on), draws sessions from a
  Poisson and conversions from a binomial around it;
- every culprit bends the metric's numerator by its effect in its scope,
  except for the units whose flag says the culprit is reverted;
- inside the scope of the action under test the world is a pool of **units**
  (users) with their own activity and propensity (gamma-distributed, mean 1;
  the heterogeneity that CUPED's pre-period covariate explains). Each unit's
  variant is read **once, at launch, through OpenFeature** from the flag the
  launch wrote (:mod:`workbench.experiments.flags`), as the product would on
  the unit's first request, and is sticky after that.

So rolling back the culprit restores the metric in the reverted share of its
scope, and rolling back an innocent change does not. Everything per hour is
vectorized over units and leaves with numpy; the events of an hour come out
as a DataFrame with the passport's columns, ready to be written as a batch
file and appended through :meth:`workbench.store.Store.ingest`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import WorkbenchError

WEEK = pd.Timedelta(days=7)


class WorldError(WorkbenchError):
    """The world cannot be simulated from this passport."""


@dataclass(frozen=True)
class Culprit:
    """A change that truly moves the metric (from the passport's ground truth)."""

    change_id: str
    scope: dict
    effect: float  # relative change of the metric's numerator in scope


def in_scope(frame: pd.DataFrame, scope: dict) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` inside ``scope`` (``{}``: all)."""
    mask = np.ones(len(frame), dtype=bool)
    for dim, val in scope.items():
        if dim not in frame.columns:
            raise WorldError(f"scope names '{dim}', which is not a dimension; "
                             f"columns are: {', '.join(map(str, frame.columns))}")
        vals = [str(v) for v in val] if isinstance(val, (list, tuple)) else [str(val)]
        mask &= frame[dim].astype(str).isin(vals).to_numpy()
    return mask


class SimulatedWorld:
    """The demo's shop after its passport ends, answering flags.

    Parameters
    ----------
    events:
        The passport's events (hourly, one row per leaf).
    dimensions:
        Leaf columns (dimension columns of the events, in order).
    numerator, denominator:
        Measures of the metric; ``denominator`` is the unit's activity (sessions).
    culprits:
        The true causes and their effects.
    onset:
        First hour the incident touched; templates are taken before it.
    seed:
        Seed of every draw.
    """

    def __init__(self, events: pd.DataFrame, *, dimensions: list[str], numerator: str,
                 denominator: str, culprits: list[Culprit], onset: pd.Timestamp,
                 seed: int = 0, time_column: str = "ts"):
        self.events = events
        self.dims = list(dimensions)
        self.num, self.den = numerator, denominator
        self.culprits = list(culprits)
        self.onset = pd.Timestamp(onset)
        self.tcol = time_column
        self.rng = np.random.default_rng(seed)
        self.end = pd.Timestamp(events[time_column].max()) + pd.Timedelta(hours=1)
        self.measures = [c for c in events.columns if c not in (*self.dims, time_column)]
        self._by_hour = dict(tuple(events.groupby(time_column, sort=True)))
        self.units: pd.DataFrame | None = None
        self.reverted_change: str | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_passport(cls, passport, *, metric: str, seed: int = 0) -> "SimulatedWorld":
        """The world of a loaded passport (``truth.json`` beside it names the culprits)."""
        m = passport.manifest
        spec = m.metrics.get(metric)
        if spec is None:
            raise WorldError(f"no metric '{metric}'; metrics are: {', '.join(m.metrics)}")
        num, den = _metric_measures(spec)
        events = pd.concat([pd.read_parquet(f) if str(f).endswith(".parquet")
                            else pd.read_csv(f, parse_dates=[m.time_column])
                            for f in passport.event_files], ignore_index=True)
        dims = [c for c in events.columns if c not in (*m.measures, m.time_column)]
        truth_file = Path(passport.directory) / "truth.json"
        culprits, onset = [], events[m.time_column].max()
        if truth_file.is_file():
            truth = json.loads(truth_file.read_text())
            onset = pd.Timestamp(truth.get("onset") or onset)
            ch = passport.changes.set_index("id") if len(passport.changes) else None
            for cid in truth.get("culprit_ids", []):
                scope = truth.get("slice") or {}
                if ch is not None and cid in ch.index:
                    scope = ch.loc[cid, "scope"] or scope
                culprits.append(Culprit(cid, dict(scope), float(truth.get("effect", 0.0))))
        return cls(events, dimensions=dims, numerator=num, denominator=den, culprits=culprits,
                   onset=onset, seed=seed, time_column=m.time_column)

    def template(self, ts: pd.Timestamp) -> pd.DataFrame:
        """The rows of the same hour of the week, before the onset."""
        t = pd.Timestamp(ts) - WEEK
        while t >= self.onset:
            t -= WEEK
        rows = self._by_hour.get(t)
        if rows is None:
            raise WorldError(f"no events at {t} to continue the world from; the passport "
                             "needs a full week of history before its onset")
        return rows.reset_index(drop=True)

    def recruit(self, scope: dict, *, hours: int = 3, max_units: int = 20000,
                prefix: str = "u") -> pd.DataFrame:
        """A pool of units inside ``scope``, spread over its leaves by their traffic."""
        recent = self.events[self.events[self.tcol] >= self.end - WEEK]
        recent = recent[(recent[self.tcol] < self.onset) | (self.onset >= self.end - WEEK)] \
            if (recent[self.tcol] < self.onset).any() else recent
        leaves = recent.groupby(self.dims, observed=True, sort=True)[self.den].mean()
        leaves = leaves[in_scope(leaves.index.to_frame(index=False), scope)]
        leaves = leaves[leaves > 0]
        if leaves.empty:
            raise WorldError(f"no traffic in scope {scope}")
        n = int(min(max_units, max(200, hours * leaves.sum())))
        idx = self.rng.choice(len(leaves), size=n, p=(leaves / leaves.sum()).to_numpy())
        units = leaves.index.to_frame(index=False).iloc[idx].reset_index(drop=True)
        units.insert(0, "targetingKey", [f"{prefix}-{i:06d}" for i in range(n)])
        units["activity"] = self.rng.gamma(2.0, 0.5, n)
        units["propensity"] = self.rng.gamma(2.0, 0.5, n)
        return units

    def assign(self, units: pd.DataFrame, variants: np.ndarray, change_id: str) -> None:
        """Fix each unit's variant (read through the flag provider) for the change under test.

        Assigning the same units again (the next step of a ramp) changes their
        variants only; their pre-period stays what it was.
        """
        same = (self.units is not None and change_id == self.reverted_change
                and self.units["targetingKey"].equals(units["targetingKey"]))
        if same:
            self.units = self.units.assign(variant=np.asarray(variants, dtype=object))
            return
        self.units = units.assign(variant=np.asarray(variants, dtype=object))
        self.reverted_change = change_id
        lam = self._leaf_rates(self.template(self.end), self.units)
        # a pre-period week with no incident: the covariate CUPED uses
        s0 = self.rng.poisson(lam["sessions"] * 168)
        self.units["pre_" + self.den] = s0
        self.units["pre_" + self.num] = self.rng.binomial(s0, lam["rate"])

    # ------------------------------------------------------------------ simulating
    def _leaf_rates(self, tpl: pd.DataFrame, units: pd.DataFrame) -> dict:
        key = tpl[self.dims].astype(str).agg("|".join, axis=1)
        ukey = units[self.dims].astype(str).agg("|".join, axis=1)
        sess = tpl[self.den].to_numpy(dtype=float)
        rate = np.divide(tpl[self.num].to_numpy(dtype=float), sess, out=np.zeros_like(sess),
                         where=sess > 0)
        pos = pd.Index(key).get_indexer(ukey)
        leaf_sess = np.where(pos >= 0, sess[pos], 0.0)
        leaf_rate = np.where(pos >= 0, rate[pos], 0.0)
        w = units["activity"].to_numpy()
        wsum = pd.Series(w).groupby(ukey.to_numpy()).transform("sum").to_numpy()
        return {"sessions": leaf_sess * w / wsum,
                "rate": np.clip(leaf_rate * units["propensity"].to_numpy(), 0, 0.95)}

    def _multiplier(self, frame: pd.DataFrame, reverted: np.ndarray | None) -> np.ndarray:
        mult = np.ones(len(frame))
        for c in self.culprits:
            hit = in_scope(frame, c.scope)
            if reverted is not None and c.change_id == self.reverted_change:
                hit &= ~reverted
            mult = np.where(hit, mult * (1 + c.effect), mult)
        return mult

    def step(self, ts: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Simulate hour ``ts``: (events rows of every leaf, per-unit sums of the tested scope)."""
        tpl = self.template(ts)
        rng = self.rng
        sess_t = tpl[self.den].to_numpy(dtype=float)
        per = {m: np.divide(tpl[m].to_numpy(dtype=float), sess_t, out=np.zeros_like(sess_t),
                            where=sess_t > 0) for m in self.measures}
        rate = per[self.num]
        key = tpl[self.dims].astype(str).agg("|".join, axis=1).to_numpy()
        units_out = pd.DataFrame()
        inside = np.zeros(len(tpl), dtype=bool)
        if self.units is not None:
            u = self.units
            lam = self._leaf_rates(tpl, u)
            rev = (u["variant"] == "reverted").to_numpy()
            s = rng.poisson(lam["sessions"])
            y = rng.binomial(s, np.clip(lam["rate"] * self._multiplier(u, rev), 0, 1))
            units_out = pd.DataFrame({"unit_id": u["targetingKey"], "variant": u["variant"],
                                      self.den: s, self.num: y})
            ukey = u[self.dims].astype(str).agg("|".join, axis=1).to_numpy()
            pos = pd.Index(key).get_indexer(ukey)
            for m in self.measures:  # guardrails: each unit at its leaf's level, with noise
                if m in (self.num, self.den):
                    continue
                level = np.where(pos >= 0, per[m][pos], 0.0)
                units_out[m] = s * level * rng.lognormal(0.0, 0.1, len(u))
            sums = pd.DataFrame({"k": ukey, "s": s, "y": y}).groupby("k").sum()
            inside = pd.Index(sums.index).get_indexer(key) >= 0
        sessions = rng.poisson(sess_t).astype(float)
        conv = rng.binomial(sessions.astype(int), np.clip(rate * self._multiplier(tpl, None), 0, 1))
        if inside.any():
            pos = pd.Index(sums.index).get_indexer(key[inside])
            sessions[inside] = sums["s"].to_numpy()[pos]
            conv[inside] = sums["y"].to_numpy()[pos]
        out = tpl[self.dims].copy()
        out.insert(0, self.tcol, pd.Timestamp(ts))
        for m in self.measures:
            if m == self.den:
                out[m] = sessions.astype(np.int64)
            elif m == self.num:
                out[m] = conv.astype(np.int64)
            else:  # other measures keep their per-session (or per-conversion) level
                base = conv if m == "revenue" else sessions
                ref = tpl[self.num if m == "revenue" else self.den].to_numpy(dtype=float)
                val = np.divide(tpl[m].to_numpy(dtype=float), ref, out=np.zeros_like(ref),
                                where=ref > 0) * base
                out[m] = val.astype(tpl[m].dtype) if tpl[m].dtype.kind == "f" \
                    else np.round(val).astype(np.int64)
        return out[list(self.events.columns)], units_out

    def expected_rate(self, ts: pd.Timestamp, scope: dict) -> tuple[float, float]:
        """The metric with no incident (template numerator and denominator sums) in scope."""
        tpl = self.template(ts)
        m = in_scope(tpl, scope)
        return float(tpl.loc[m, self.num].sum()), float(tpl.loc[m, self.den].sum())


def _metric_measures(spec) -> tuple[str, str]:
    if spec.denominator:
        return str(spec.numerator), str(spec.denominator)
    raise WorldError("the simulated world answers ratio metrics (numerator per session); "
                     f"{spec.name} is a sum of {spec.numerator}")
