"""``workbench watch --json`` as a child process whose events can be waited on.

For the tests (kill it, restart it) and the streaming benchmark (latency per
batch): a reader thread collects the JSON lines the child prints, and
:meth:`WatchProcess.wait_for` blocks until a predicate over them holds, or
fails with the child's last output after a timeout. Nothing here sleeps to
synchronize: it waits on what the child says it did.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable


class WatchProcess:
    """Start ``workbench watch PASSPORT --source SOURCE --json [args]``.

    Examples
    --------
    >>> w = WatchProcess(passport, "/tmp/drop", "--no-artifact")      # doctest: +SKIP
    >>> w.wait_for(lambda evs: any(e["event"] == "started" for e in evs), 60)  # doctest: +SKIP
    """

    def __init__(self, passport: str | Path, source: str, *args: str, env: dict | None = None):
        cmd = [sys.executable, "-m", "workbench.cli", "watch", str(passport), "--source", source,
               "--json", *args]
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "text", "line": line.rstrip()}
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())
        with self._cond:
            self._cond.notify_all()

    def of(self, kind: str) -> list[dict]:
        """Events of one kind so far."""
        with self._cond:
            return [e for e in self.events if e.get("event") == kind]

    def wait_for(self, pred: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
        """Block until ``pred(events)`` holds; ``TimeoutError`` with the child's output if not."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if pred(self.events):
                    return list(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                # woken by each line; the short slice also notices the child's exit, which
                # may come after its pipes closed (the readers' last wake-up)
                self._cond.wait(min(left, 0.5))
            if pred(self.events):
                return list(self.events)
        raise TimeoutError(f"watch did not get there in {timeout:g} s (exit code "
                           f"{self.proc.poll()}); last events {self.events[-3:]}; stderr: "
                           + " | ".join(self.stderr[-8:]))

    def kill(self) -> None:
        """SIGKILL, no chance to clean up (a crash)."""
        self.proc.kill()
        self.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait for a graceful exit; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.wait(timeout)

    def wait(self, timeout: float = 120) -> int:
        """Wait for the child to end, read the rest of its output, close the pipes."""
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc
