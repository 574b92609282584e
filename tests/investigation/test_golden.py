"""The shape of the JSON answer on the demo passport is frozen: keys and value types.

``golden_answer_shape.json`` was written from the code before the investigation
package was split into rooms (result, render, hypothesis, stages, library); a
refactor that drops, renames or retypes a key of the answer fails here. Numbers
are one type (``number``): JSON does not tell 1 from 1.0. Regenerate only on an
intended change of the spec: ``python -m tests.investigation.test_golden``.
Extensions are added, never breaks: issue 14 added ``causes[].own_effect`` and
``causes[].siblings`` (regenerated in) and ``divergence.late_data`` (absent on the
demo, frozen in ``LATE_DATA_SHAPE``); issue 17 added ``causes[].origin`` (``change_log``
or ``person``, a hypothesis from a person: tests/events/test_people.py) and the ``sql``
of slices, cause effects and data-quality findings, then of the verification's causes,
counterfactual and attribution (tests/investigation/test_show_query.py).
A value kind that is narrower on today's answer than in the golden one (``null|number``
became ``number`` because no cause was untestable) is not a break; another kind is.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "sample_data" / "demo"
GOLDEN = Path(__file__).with_name("fixtures") / "golden_answer_shape.json"
#: any string that starts like a timestamp
_TIME_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
#: the one time format of the answer (ISO 8601, UTC, "Z")
_ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def shape(x):
    """The keys and value types of a JSON value; list elements are merged."""
    if isinstance(x, dict):
        return {"{}": {k: shape(v) for k, v in x.items()}}
    if isinstance(x, list):
        merged = None
        for e in x:
            merged = _merge(merged, shape(e))
        return {"[]": merged}
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, (int, float)):
        return "number"
    if x is None:
        return "null"
    return type(x).__name__


def _merge(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        (ka,), (kb,) = a.keys(), b.keys()
        if ka == "{}":
            keys = list(a["{}"]) + [k for k in b["{}"] if k not in a["{}"]]
            return {"{}": {k: _merge(a["{}"].get(k), b["{}"].get(k)) for k in keys}}
        return {"[]": _merge(a["[]"], b["[]"])}
    kinds = set()
    for s in (a, b):
        kinds |= set(s.split("|")) if isinstance(s, str) else {json.dumps(s, sort_keys=True)}
    return "|".join(sorted(kinds))


def demo_answer(tmp: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "investigate", str(DEMO),
                        "--metric", "conversion_rate", "--json", "--db", str(tmp / "s.duckdb"),
                        "--out", str(tmp / "investigations")],
                       capture_output=True, text=True, cwd=tmp)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    return demo_answer(tmp_path_factory.mktemp("golden"))


def _diff(want, got, path="$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict) and want.keys() == got.keys():
        (k,) = want.keys()
        if k == "[]":
            return _diff(want[k], got[k], path + "[]")
        out = [f"{path}.{n}: missing" for n in want[k] if n not in got[k]]
        out += [f"{path}.{n}: not in the golden answer" for n in got[k] if n not in want[k]]
        for n in want[k]:
            if n in got[k]:
                out += _diff(want[k][n], got[k][n], f"{path}.{n}")
        return out
    if isinstance(want, str) and isinstance(got, str) and _kinds(got) <= _kinds(want):
        return []  # narrower on this answer (a null that did not occur): not a break
    return [] if want == got else [f"{path}: {want!r} became {got!r}"]


def _kinds(s: str) -> set[str]:
    """The alternatives of a merged kind (``"null|number"``; a dict's alternative is JSON,
    which may hold ``|`` of its own, so split only outside brackets and quotes)."""
    out, depth, quoted, start = set(), 0, False, 0
    for i, ch in enumerate(s):
        if ch == '"' and (i == 0 or s[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "{[":
            depth += 1
        elif not quoted and ch in "}]":
            depth -= 1
        elif ch == "|" and depth == 0 and not quoted:
            out.add(s[start:i])
            start = i + 1
    out.add(s[start:])
    return out


def test_answer_keeps_its_shape(answer):
    want = json.loads(GOLDEN.read_text())
    assert _diff(want, shape(answer)) == []


def _strings(x, path="$"):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(x, str):
        yield path, x


def test_one_time_format(answer):
    times = [(p, s) for p, s in _strings(answer) if _TIME_LIKE.match(s)]
    assert len(times) > 10  # onset, window, causes' times, baseline period...
    assert [(p, s) for p, s in times if not _ISO_Z.match(s)] == []


def test_shape_diff_takes_a_narrower_kind_but_not_another():
    want = "null|number|" + json.dumps({"{}": {"a": "null|str"}})
    assert _kinds(want) == {"null", "number", json.dumps({"{}": {"a": "null|str"}})}
    assert _diff(want, "number") == []  # no null on this answer: not a break
    assert _diff(want, json.dumps({"{}": {"a": "null|str"}})) == []
    assert _diff(want, "str") == [f"$: {want!r} became 'str'"]
    assert _diff("null|number", "null|str") == ["$: 'null|number' became 'null|str'"]


def test_shape_diff_sees_a_renamed_key():
    a = shape({"causes": [{"ts": "x", "confidence": 0.5}]})
    b = shape({"causes": [{"time": "x", "confidence": 1}]})
    assert _diff(a, b) == ["$.causes[].ts: missing",
                           "$.causes[].time: not in the golden answer"]


#: ``divergence.late_data`` (issue 14), which the demo passport does not carry: its
#: feed is complete. Frozen here instead: an answer cut short by late data says this.
LATE_DATA_SHAPE = {"{}": {"start": "str", "end": "str", "buckets": "number", "hours": "number",
                          "expected_rows": "number", "observed_rows": "number",
                          "missing_share": "number", "message": "str"}}


def test_answer_extensions_of_issue_14(answer):
    """``causes[].own_effect``, ``causes[].siblings`` and ``divergence.late_data``: typed."""
    import pandas as pd

    from workbench.investigation.result import Cause, Divergence
    from workbench.quality.late import LateTail

    assert answer["causes"] and all("own_effect" in c and "siblings" in c
                                    for c in answer["causes"])
    assert "late_data" not in answer["divergence"]  # the demo's feed is complete
    c = Cause(answer["causes"][0])
    assert c.own_effect is answer["causes"][0]["own_effect"]
    assert c.siblings == answer["causes"][0]["siblings"]
    tail = LateTail(start=pd.Timestamp("2026-03-01 20:00"), end=pd.Timestamp("2026-03-02"),
                    buckets=4, expected_rows=400.0, observed_rows=100.0, hours=4.0)
    late = json.loads(json.dumps(tail.to_dict()))
    assert _diff(LATE_DATA_SHAPE, shape(late)) == []
    assert Divergence({"late_data": late}).late_data["missing_share"] == 0.75
    assert Divergence({}).late_data is None


if __name__ == "__main__":  # regenerate the golden shape (an intended change of the spec)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(shape(demo_answer(Path(d))), indent=1, sort_keys=True)
                          + "\n")
    print(f"wrote {GOLDEN}")
