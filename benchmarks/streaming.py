"""Streaming benchmark: batch-to-alert latency of ``workbench watch`` at 1k, 10k and 100k rows/s.

Run with the project's venv::

    .venv/bin/python benchmarks/streaming.py                 # 1k, 10k, 100k rows/s; folder and NATS
    .venv/bin/python benchmarks/streaming.py --batches 8 --rates 1000

For each source (the drop folder; NATS JetStream on a ``nats-server -js`` started on a
free loopback port) and each rate, a fresh copy of the seeded scenario
(:mod:`workbench.stream.sample`: 15 days of history, then a flag that cuts iOS
conversion 6 hours into the stream) is watched by ``workbench watch --json`` in a child
process while a producer delivers one Parquet batch per second, each holding one hour of
event time and ``rate`` rows (so ``rate`` rows/s). The batches are made before the clock
starts; delivery is a rename into the folder (mtime set at delivery) or a JetStream
publish (the server's time stamp). Measured from what the child prints:

* ``batch_to_alert_s`` p50/p95: delivery -> the batch stored, aggregates updated and
  detection done (one transaction; an alert is emitted right after it), over the
  batches handled before the alert's story began. This is the batch-to-alert latency:
  the alert of a divergence is emitted at the end of the batch that completes its run.
* ``batch_latency_all_s`` and ``queued_behind_story_s``: the story's investigation runs
  in the watcher's loop (DuckDB lets one process hold the store), so the batches that
  arrive meanwhile wait for it and are then caught up; their latency is reported apart.
* ``alert_latency_s``: delivery of the batch that completed the run -> the alert line.
* ``story_latency_s``: the same batch -> the story (the whole investigation, saved).
* ``kept_up``: whether the watcher processed batches as fast as they came before the
  story (no batch waited more than 2 s); at a rate it cannot keep up with, latency
  grows with the queue, and the figure says so.

Results are merged into ``benchmarks/results/scale.json`` under the ``streaming`` key
(other keys, such as ``batch`` from ``benchmarks/scale.py``, are kept). Measured on the
2-core machine shared with other work: figures are from a loaded machine.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.stream.process import WatchProcess  # noqa: E402
from workbench.stream.sample import make_scenario, rows_for  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "scale.json"
TIMEOUT = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """``nats-server -js`` on a free loopback port; payloads up to 16 MB (100k-row batches)."""

    def __init__(self, workdir: Path):
        exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(exe).exists():
            raise SystemExit("nats-server is not installed (make sysdeps installs it)")
        self.port = _free_port()
        conf = workdir / "nats.conf"
        conf.write_text(f"listen: 127.0.0.1:{self.port}\nmax_payload: 16777216\n"
                        f"jetstream {{ store_dir: {json.dumps(str(workdir / 'js'))} }}\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not ready.wait(60):
            raise SystemExit("nats-server did not start")

    def _read(self, ready: threading.Event) -> None:
        for line in self.proc.stderr:
            if "Server is ready" in line:
                ready.set()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _pct(xs, q):
    return None if not xs else round(float(np.percentile(xs, q)), 4)


def run_one(source: str, rate: int, n_batches: int, workdir: Path) -> dict:
    sc = make_scenario(workdir / "passport", seed=5)
    payloads = []
    for k in range(n_batches):  # made before the clock starts
        df = rows_for(sc.stream_start + pd.Timedelta(hours=k), 1.0, rate, onset=sc.onset,
                      effect=sc.effect, seed=sc.seed * 100_003 + k + 1)
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        payloads.append((f"b{k:05d}", buf.getvalue()))
    server = None
    if source == "nats":
        server = NatsServer(workdir)
        url = f"nats://127.0.0.1:{server.port}/wb.bench?stream=BENCH"
    else:
        url = str(workdir / "drop")
    w = WatchProcess(sc.passport, url, "--metric", "conversion_rate", "--out",
                     str(workdir / "inv"))
    try:
        w.wait_for(lambda evs: any(e["event"] == "started" for e in evs), TIMEOUT)
        if source == "nats":
            from workbench_nats import publish_batch
        t0 = time.perf_counter()
        for i, (bid, data) in enumerate(payloads):
            due = t0 + i  # one batch per second
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)  # the producer's pace, not a synchronization
            if source == "nats":
                publish_batch(url, bid, data, fmt="parquet")
            else:
                tmp = workdir / "drop" / f".{bid}.part"
                tmp.write_bytes(data)
                os.utime(tmp)
                tmp.replace(workdir / "drop" / f"{bid}.parquet")
        w.wait_for(lambda evs: sum(e["event"] == "batch" for e in evs) >= n_batches
                   and any(e["event"] == "story" for e in evs), TIMEOUT)
    finally:
        w.terminate()
        if server:
            server.stop()
    lat = [e["latency_s"] for e in w.of("batch")]
    alerts, stories = w.of("alert"), w.of("story")
    # batches handled before the story began: each could have raised the alert at its end
    evs = [e for e in w.events if e["event"] in ("batch", "alert", "story")]
    cut = next((i for i, e in enumerate(evs) if e["event"] == "alert"), len(evs))
    before = [e["latency_s"] for e in evs[:cut] if e["event"] == "batch"]
    after = [e["latency_s"] for e in evs[cut:] if e["event"] == "batch"]
    return {"source": source, "rows_per_s": rate, "batches": len(lat), "rows_per_batch": rate,
            "batch_to_alert_s": {"p50": _pct(before, 50), "p95": _pct(before, 95),
                                 "max": _pct(before, 100), "n": len(before)},
            "batch_latency_all_s": {"p50": _pct(lat, 50), "p95": _pct(lat, 95),
                                    "max": _pct(lat, 100)},
            "queued_behind_story_s": {"first": after[0] if after else None,
                                      "last": after[-1] if after else None,
                                      "n": len(after)},
            "alert_latency_s": alerts[0]["latency_s"] if alerts else None,
            "story_latency_s": stories[0]["latency_s"] if stories else None,
            "alert_onset": alerts[0]["onset"] if alerts else None,
            "expected_onset": sc.onset.isoformat(),
            "right_onset": bool(alerts and alerts[0]["onset"] == sc.onset.isoformat()),
            "story_top_cause": stories[0]["top_cause"] if stories else None,
            "kept_up": bool(before and max(before) <= 2.0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--sources", nargs="+", default=["folder", "nats"])
    ap.add_argument("--batches", type=int, default=16,
                    help="batches per run (>= 10: the run completes 3 h after the onset)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    runs = []
    for source in a.sources:
        for rate in a.rates:
            with tempfile.TemporaryDirectory(prefix="wb-stream-bench-") as d:
                t = time.perf_counter()
                r = run_one(source, rate, a.batches, Path(d))
                r["wall_s"] = round(time.perf_counter() - t, 1)
            print(json.dumps(r), flush=True)
            runs.append(r)
    doc = json.loads(a.out.read_text()) if a.out.exists() else {}
    doc["streaming"] = {
        "what": "batch-to-alert latency of `workbench watch` (delivery -> batch stored, "
                "aggregates updated, detection done); one batch per second of `rows_per_s` "
                "rows (Parquet), each one hour of event time; alert and story latency of "
                "the divergence the scenario holds",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other work "
                   "(a loaded machine)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out} (key: streaming)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
