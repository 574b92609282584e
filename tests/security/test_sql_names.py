"""Every module's source, walked: no SQL is built from a name that is not quoted by the one helper.

The rules, checked on the syntax tree of each f-string that reads as SQL:

- an interpolation inside a quoted SQL literal (``'{x}'``, ``"{x}"``) is hand-quoting: values
  go as parameters, identifiers through ``q``, the odd literal through ``lit``;
- a name that holds a column (``d``, ``dim``, ``col``, ``time_column``, a metric's
  ``numerator``...) is interpolated only through ``q(...)`` (or ``lit(...)`` for a label);
- the quoting code itself (``.replace('"', '""')``, ``.replace("'", "''")``) lives in one
  module, ``workbench/store/sql.py``.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "workbench"
HELPER = ROOT / "store" / "sql.py"
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|COPY|ATTACH|DESCRIBE|PRAGMA"
                 r"|GROUP BY|ORDER BY|WHERE)\b")
#: names that hold a column, dimension or measure name in this code base
NAME_VARS = {"d", "dim", "dimension", "col", "column", "c", "tcol", "time_column", "numerator",
             "denominator", "coarse", "fine", "parent", "measure", "first", "dname"}
QUOTERS = {"q", "_q", "lit", "_lit"}
#: numbers formatted into SQL text (an INTERVAL's seconds, a LIMIT) are not names
NUMERIC_OK = {"secs", "k", "n", "limit", "int", "float", "len"}


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if ".venv" not in p.parts)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _terminal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT.parent)
    out = []
    for node in ast.walk(tree):
        if (path != HELPER and isinstance(node, ast.Call) and _call_name(node) == "replace"
                and len(node.args) == 2 and all(isinstance(a, ast.Constant) for a in node.args)
                and (node.args[0].value, node.args[1].value) in (('"', '""'), ("'", "''"))):
            out.append(f"{rel}:{node.lineno}: hand-written quoting; use workbench.store.sql")
        if not isinstance(node, ast.JoinedStr):
            continue
        text = "".join(v.value if isinstance(v, ast.Constant) else "\x00" for v in node.values)
        if not SQL.search(text.replace("\x00", " ")):
            continue
        quotes = 0
        for v in node.values:
            if isinstance(v, ast.Constant):
                quotes += str(v.value).count("'")
                continue
            expr = v.value
            called = _call_name(expr)
            if quotes % 2 == 1 and called not in ("int", "float") and _terminal(expr) not in \
                    NUMERIC_OK:
                out.append(f"{rel}:{node.lineno}: '{ast.unparse(expr)}' is pasted inside an "
                           "SQL string literal; pass it as a parameter")
            elif called not in QUOTERS and _terminal(expr) in NAME_VARS:
                out.append(f"{rel}:{node.lineno}: the name '{ast.unparse(expr)}' is pasted "
                           "into SQL unquoted; wrap it in q(...)")
    return out


def test_the_scanner_catches_the_patterns_it_exists_for(tmp_path, monkeypatch):
    bad = tmp_path / "workbench" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "def f(con, d, tcol, path):\n"
        "    con.execute(f\"SELECT '{d}' AS dim FROM ev\")\n"
        "    con.execute(f'SELECT * EXCLUDE (ts), ts AS {tcol} FROM ev')\n"
        "    con.execute(f\"COPY (SELECT 1) TO '{path}'\")\n"
        "    return '\"' + d.replace('\"', '\"\"') + '\"'\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "workbench")
    found = _violations(bad)
    assert len(found) == 4, found
    assert any("'d' is pasted inside" in f for f in found)
    assert any("'tcol' is pasted into SQL unquoted" in f for f in found)
    assert any("'path' is pasted inside" in f for f in found)
    assert any("hand-written quoting" in f for f in found)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_from_unquoted_names(path):
    found = _violations(path)
    assert not found, "\n".join(found)
