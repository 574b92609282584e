"""``kill -9`` during a save leaves the previous versions intact and the library valid.

Each round, a process saves a new version of an existing investigation and is
SIGKILLed after a seeded random delay. ``$WORKBENCH_TEST_SAVE_DELAY`` makes it
sleep between the write steps of the save (stage three files, link them, mark,
commit the index line, journal, audit, unmark), so the kills land between every
pair of steps and not only in the reads around them. Round 0 kills at once,
round 1 lets the save finish (and measures how long a save takes: later delays
are drawn over 1.1 times that).

After every kill: the versions that were there are byte-identical and verify
clean; ``versions.jsonl`` parses and lists the old versions plus at most one
new, complete one; no file under a version's final name is half-written; the
audit log verifies. Then a normal save works and leaves the library clean
(temporary files removed, a pending audit record written).

The saving processes are forked by one helper subprocess that imported
workbench and unpickled the investigation once (importing takes seconds; a
fork, milliseconds). The helper reaps a saving process only when told to, after
the kill, so the pid that gets the SIGKILL cannot have been reused.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

from workbench.governance import read_audit, verify_audit
from workbench.investigation import library as V
from workbench.investigation.library import store as S

ROUNDS = 24
STEP_DELAY = 0.04  # seconds between two write steps of the killed save

# stdin: "go" forks a process that saves (the helper answers "pid N"), "reap" waits for
# it (answers "exit C": 0 saved, -9 killed), "quit".
HELPER = """\
import os, pickle, sys, traceback
with open(sys.argv[1], "rb") as f:
    inv = pickle.load(f)
from workbench.investigation.library import save_investigation
print("ready", flush=True)
for cmd in sys.stdin:
    cmd = cmd.strip()
    if cmd == "go":
        pid = os.fork()
        if pid == 0:
            try:
                save_investigation(inv, root=sys.argv[2], message="the save that gets killed",
                                   author="crash")
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        print(f"pid {pid}", flush=True)
    elif cmd == "reap":
        print(f"exit {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}", flush=True)
    else:
        break
"""


class SaveHelper:
    """The helper subprocess (see the module docstring)."""

    def __init__(self, pickled: Path, lib: Path):
        # single-threaded BLAS: the helper forks, and must hold no threads but its own
        env = {**os.environ, V.TEST_SAVE_DELAY_ENV: str(STEP_DELAY), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", HELPER, str(pickled), str(lib)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.expect("ready")

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str) -> str:
        line = self.proc.stdout.readline()
        if not line.startswith(word):
            self.proc.kill()
            raise AssertionError(f"helper said {line!r}: {self.proc.communicate()[1]}")
        return line.split()[-1]

    def start_save(self) -> int:
        self.send("go")
        return int(self.expect("pid"))

    def reap(self) -> int:
        self.send("reap")
        return int(self.expect("exit"))

    def close(self) -> str:
        if self.proc.poll() is None:
            self.send("quit")
        _, err = self.proc.communicate(timeout=60)
        return err


def quietly(fn, *args, **kw):
    """Call ``fn``; the only warnings allowed are the library's traces of a crash."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    assert all(issubclass(w.category, V.LibraryWarning) for w in caught), \
        [str(w.message) for w in caught]
    return out


def version_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if S._VFILE_RE.match(p.name)}


def check_after_kill(lib: Path, iid: str, before: list, before_files: dict,
                     before_index: bytes) -> str:
    """Assert the library is valid after a kill; say what the kill left."""
    folder = lib / iid
    vs = quietly(V.list_versions, lib, iid)
    rep = quietly(V.verify_library, lib)
    assert rep.ok, rep.problems
    # the versions that were there: same lines, same bytes
    assert list(vs[:len(before)]) == before
    assert (folder / "versions.jsonl").read_bytes().startswith(before_index)
    for name, data in before_files.items():
        assert (folder / name).read_bytes() == data, name
    # the index: every complete line parses; at most one new version, complete
    lines = (folder / "versions.jsonl").read_bytes().split(b"\n")
    assert all(json.loads(x) for x in lines[:-1])
    assert len(vs) - len(before) in (0, 1)
    if len(vs) > len(before):
        new = vs[-1]
        assert new.parent == before[-1].version_id
        for name, h in ((f"v{new.version:04d}.ipynb", new.content_hash),
                        (f"v{new.version:04d}.py", new.text_hash),
                        (f"v{new.version:04d}.answer.json", new.answer_hash)):
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == h
    # a file under a version's final name is whole, indexed or not
    for name, data in version_files(folder).items():
        if name.endswith((".ipynb", ".answer.json")):
            json.loads(data)
        else:
            assert data.startswith(b"# ---") and data.endswith(b"\n"), name
    audit = verify_audit(lib / "audit.jsonl")
    assert audit.ok, audit.summary()
    if len(vs) > len(before):
        return "committed, audit pending" if (folder / V.PENDING_AUDIT).exists() else "committed"
    leftovers = set(version_files(folder)) - set(before_files)
    if leftovers or list(folder.glob(S._TMP_GLOB)):
        return "not committed, files left"
    return "not committed, nothing left"


def test_kill_9_during_save_leaves_the_library_valid(ios_inv, tmp_path, rng):
    lib = tmp_path / "lib"
    base = V.save_investigation(ios_inv, message="before the crashes", author="ana", root=lib)
    iid = base.investigation_id
    folder = lib / iid
    pickled = tmp_path / "inv.pkl"
    pickled.write_bytes(pickle.dumps(ios_inv))
    fractions = rng.uniform(0.0, 1.1, ROUNDS)
    outcomes: collections.Counter = collections.Counter()
    save_seconds = None
    helper = SaveHelper(pickled, lib)
    try:
        for r in range(ROUNDS):
            before = list(quietly(V.list_versions, lib, iid))
            before_files = {Path(x).name: Path(x).read_bytes()
                            for v in before for x in (v.path, v.text_path, v.answer_path)}
            before_index = (folder / "versions.jsonl").read_bytes()
            t0 = time.perf_counter()
            pid = helper.start_save()
            if r == 1:  # let this one finish: how long does a save take?
                code = helper.reap()
                save_seconds = time.perf_counter() - t0
                assert code == 0, helper.close()
            else:
                if r > 1:
                    time.sleep(fractions[r] * save_seconds)
                os.kill(pid, signal.SIGKILL)  # not reaped yet: still our process, or a zombie
                code = helper.reap()
                # finished before the signal came, or killed by it
                assert code in (0, -signal.SIGKILL), helper.close()
            outcomes[check_after_kill(lib, iid, before, before_files, before_index)] += 1

            # a normal save afterwards works and leaves the library clean
            highest = max(int(S._VFILE_RE.match(n).group(1)) for n in version_files(folder))
            info = quietly(V.save_investigation, ios_inv, message=f"after round {r}",
                           author="ana", root=lib)
            assert info.version == highest + 1
            rep = quietly(V.verify_library, lib)
            assert rep.ok, rep.problems
            assert all("not part of any saved version" in w for w in rep.warnings), rep.warnings
            assert not list(folder.glob(S._TMP_GLOB))
            assert not (folder / V.PENDING_AUDIT).exists()
            assert verify_audit(lib / "audit.jsonl").ok
    finally:
        err = helper.close()
    assert helper.proc.returncode == 0, err

    # every committed version was audited exactly once (the interrupted ones late)
    vs = V.list_versions(lib, iid)
    saved = [r.details["version"] for r in read_audit(lib / "audit.jsonl",
                                                       action="artifact.saved")]
    assert sorted(saved) == sorted(v.version_id for v in vs)
    # the kills did land at different steps: before anything, between the files and the
    # commit, and after the commit
    assert outcomes["not committed, nothing left"] >= 1, outcomes
    assert outcomes["committed"] + outcomes["committed, audit pending"] >= 1, outcomes
    assert outcomes["not committed, files left"] + outcomes["committed, audit pending"] >= 1, \
        outcomes
