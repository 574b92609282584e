"""Regenerate the bundled demo passport in ``sample_data/demo/``.

Usage::

    python sample_data/make_demo.py            # writes sample_data/demo/
    python sample_data/make_demo.py OUT_DIR    # writes elsewhere

The output is deterministic: running it again gives byte-identical files
(for the same numpy and pyarrow versions), so a diff after regeneration means
the generator changed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from workbench.synth import generate_demo


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "demo"
    path = generate_demo(out)
    # only the generator's own files (a store may keep a cache directory beside them)
    files = [path / n for n in ("passport.yaml", "events.parquet", "changes.jsonl",
                                "experiments.csv", "truth.json")]
    total = sum(p.stat().st_size for p in files)
    for p in files:
        print(f"{p.stat().st_size / 1e6:8.2f} MB  {p}")
    print(f"{total / 1e6:8.2f} MB  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
