"""Did a speed-up change any answer? Run fixed incidents on two versions of the code, compare.

A speed path must not move the verdict, the onset, the slices, the causes or
their confidences. This runs 17 fixed incidents (the slowest families of the
held-out set and one of each other kind) with the ``workbench`` the running
Python imports (printed as ``code:``) and writes what each answered, with the
wall and CPU seconds of ``investigate`` (imports are warmed first);
``--compare`` then lists what differs between two such files. Run the two
versions side by side so they see the same load, each with its own
environment::

    git worktree add /tmp/base COMMIT && make -C /tmp/base venv
    /tmp/base/.venv/bin/python benchmarks/answers_unchanged.py /tmp/a.json &
    .venv/bin/python benchmarks/answers_unchanged.py /tmp/b.json; wait
    .venv/bin/python benchmarks/answers_unchanged.py --compare /tmp/a.json /tmp/b.json

``PYTHONPATH`` cannot select the other version: the editable install's import
finder is consulted before ``sys.path``, so ``PYTHONPATH=/tmp/base`` still runs
this checkout's code (check the ``code:`` line). Without a second environment,
run the baseline in this checkout before the change.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CASES = [("small_effect", 11435857), ("small_effect", 11435858), ("scoped_change", 11423858),
         ("scoped_change", 11423857), ("delayed_effect", 11434859), ("delayed_effect", 11434860),
         ("nested_decoy", 11431861), ("nested_decoy", 11431857), ("mix_with_deploy", 11432857),
         ("two_changes", 11433859), ("two_changes", 11433860), ("late_tail", 11436857),
         ("external_isolated", 11437861), ("staged_rollout", 11424859), ("quiet", 11430859),
         ("external", 11426858), ("ingestion_gap", 11427858)]
#: What must not change
KEYS = ("verdict", "onset", "onset_source", "top_slice", "slices", "causes", "evidence",
        "verification")


def _strip(x):
    """The answer without its timings (``seconds`` fields), numbers to 12 digits.

    Twelve: the gcm attribution's contributions differed in their 16th digit
    between two versions that share its code (seen on 2 of 17 incidents; DuckDB
    adds a float measure's rows in no fixed order).
    """
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    if isinstance(x, float):
        return float(f"{x:.12g}")
    return x


def _answer(family: str, seed: int, tmp: Path) -> tuple[object, float, float]:
    from workbench.investigation import investigate
    from workbench.synth import generate_incident

    path = generate_incident(family, seed, tmp / "p")
    metric = json.loads((path / "truth.json").read_text())["metric"]
    t0, c0 = time.perf_counter(), time.process_time()
    inv = investigate(path, metric=metric, db=tmp / "s.duckdb", artifact_dir=None)
    return inv, time.perf_counter() - t0, time.process_time() - c0


def run(out: str) -> None:
    import workbench

    print(f"code: {workbench.__file__}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:  # imports (DoWhy: ~5 s) before the clock
        _answer("scoped_change", 1, Path(tmp))
    res = {}
    for family, seed in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            inv, secs, cpu = _answer(family, seed, Path(tmp))
        d = json.loads(inv.to_json())
        res[f"{family}/{seed}"] = _strip({
            "verdict": inv.verdict, "onset": inv.divergence.get("onset"),
            "onset_source": inv.divergence.get("onset_source"),
            "top_slice": inv.slices[0]["filter"] if inv.slices else None,
            "slices": [s["filter"] for s in inv.slices],
            "causes": [[c["change_id"], c["confidence"], c.get("verification")]
                       for c in inv.causes],
            "evidence": [c.get("evidence") for c in inv.causes[:2]],
            "verification": d.get("verification")})
        res[f"{family}/{seed}"].update(secs=secs, cpu=cpu, timings=d.get("timings"),
                                       load1=os.getloadavg()[0])
        print(f"{family}/{seed} {secs:.1f}s (CPU {cpu:.1f}s) {inv.verdict}", file=sys.stderr)
    Path(out).write_text(json.dumps(res, indent=1, default=str))


def compare(a: str, b: str) -> int:
    A, B = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    bad = 0
    for k in A:
        diff = [f for f in KEYS if _strip(A[k].get(f)) != _strip(B[k].get(f))]
        print(f"{k:28s} {A[k]['secs']:5.1f}s -> {B[k]['secs']:5.1f}s (CPU {A[k]['cpu']:4.1f} -> "
              f"{B[k]['cpu']:4.1f})  " + ("identical" if not diff else "DIFFERS: "
                                           + ", ".join(diff)))
        bad += bool(diff)
    med = statistics.median
    print(f"median wall {med(v['secs'] for v in A.values()):.2f}s -> "
          f"{med(v['secs'] for v in B.values()):.2f}s, CPU {med(v['cpu'] for v in A.values()):.2f}s"
          f" -> {med(v['cpu'] for v in B.values()):.2f}s; {bad} of {len(A)} answers differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run(sys.argv[1])
