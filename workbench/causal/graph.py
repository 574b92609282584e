"""The causal graph among a passport's measures: ``graph.yaml`` or a default.

A passport may carry ``graph.yaml`` next to ``passport.yaml``. Its format::

    # which measure's mechanism feeds which (a DAG over the manifest's measures)
    edges:
      - [sessions, conversions]        # parent, child
      - [sessions, latency_ms_sum]
      - [latency_ms_sum, conversions]  # slow pages convert less
      - [conversions, revenue]

Only ``edges`` is required; every node must be a measure of the manifest and
the graph must be acyclic. Measures left out of every edge are left out of
the analysis.

Without ``graph.yaml`` a default is built from the manifest
(:func:`default_graph`):

- every ratio metric ``[num, den]`` gives ``den -> num`` (sessions drive
  conversions, sessions drive the latency sum);
- a latency-like numerator (its name holds ``latency``, ``duration``,
  ``_ms``, ``error`` or ``timeout``) is a parent of the other numerators over
  the same denominator (latency -> conversions <- sessions);
- a revenue-like measure (``revenue``, ``gmv``, ``amount``, ``value``) is a
  child of the conversion-like numerators (``conversion``, ``order``,
  ``purchase``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import PassportError

_LATENCY = re.compile(r"latency|duration|_ms\b|_ms_|error|timeout", re.I)
_REVENUE = re.compile(r"revenue|gmv|amount|value", re.I)
_CONVERSION = re.compile(r"conversion|order|purchase", re.I)


@dataclass(frozen=True)
class MeasureGraph:
    """A DAG over measures; ``source`` says where it came from."""

    edges: tuple[tuple[str, str], ...]
    source: str  # "graph.yaml" | "default"

    @property
    def nodes(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for a, b in self.edges:
            seen.setdefault(a)
            seen.setdefault(b)
        return tuple(seen)

    def parents(self, node: str) -> tuple[str, ...]:
        return tuple(a for a, b in self.edges if b == node)

    def ancestors(self, node: str) -> set[str]:
        out, todo = set(), [node]
        while todo:
            n = todo.pop()
            for p in self.parents(n):
                if p not in out:
                    out.add(p)
                    todo.append(p)
        return out

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        g.add_edges_from(self.edges)
        return g

    def to_dict(self) -> dict:
        return {"edges": [list(e) for e in self.edges], "source": self.source}


def default_graph(manifest) -> MeasureGraph:
    """The default graph of a manifest's measures (rules in the module docstring)."""
    edges: list[tuple[str, str]] = []
    ratios = [m for m in manifest.metrics.values() if m.kind == "ratio"]

    def add(a, b):
        if a != b and (a, b) not in edges and (b, a) not in edges:
            edges.append((a, b))

    for m in ratios:
        add(m.denominator, m.numerator)
    for m in ratios:
        if _LATENCY.search(m.numerator):
            for o in ratios:
                if o.denominator == m.denominator and not _LATENCY.search(o.numerator):
                    add(m.numerator, o.numerator)
    measures = list(manifest.measures)
    conv = [m.numerator for m in ratios if _CONVERSION.search(m.numerator)]
    for meas in measures:
        if _REVENUE.search(meas):
            for c in conv:
                add(c, meas)
    return MeasureGraph(tuple(edges), "default")


def load_graph(graph: dict | MeasureGraph | None, manifest) -> MeasureGraph:
    """Validate a ``graph.yaml`` mapping (``Passport.graph``), or fall back to the default."""
    if graph is None:
        return default_graph(manifest)
    if isinstance(graph, MeasureGraph):
        return graph
    measures = list(manifest.measures)
    if not isinstance(graph, dict) or "edges" not in graph:
        raise PassportError("expected a mapping with 'edges: [[parent, child], ...]'",
                            file="graph.yaml")
    edges = []
    for i, e in enumerate(graph["edges"] or []):
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise PassportError(f"edge {i + 1} is {e!r}; expected [parent, child]",
                                file="graph.yaml")
        a, b = (str(x) for x in e)
        for n in (a, b):
            if n not in measures:
                raise PassportError(f"edge {i + 1} names '{n}', which is not a measure of "
                                    f"passport.yaml; measures are: {', '.join(measures)}",
                                    file="graph.yaml")
        edges.append((a, b))
    g = MeasureGraph(tuple(edges), "graph.yaml")
    import networkx as nx

    if not nx.is_directed_acyclic_graph(g.to_networkx()):
        cycle = " -> ".join(a for a, _ in nx.find_cycle(g.to_networkx()))
        raise PassportError(f"the edges form a cycle ({cycle}); a causal graph must be "
                            "acyclic", file="graph.yaml")
    return g
