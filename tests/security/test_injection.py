"""Names from a manifest never become SQL: crafted names are refused at load, before any query.

The attack of issue 19: a dimension name that closes the string literal it was pasted into
and appends ``COPY ... TO`` made ``workbench search`` write a file. Each case below runs the
real CLI and checks the file the payload would write does not exist.
"""
from __future__ import annotations

import pytest

from .conftest import one_located_line, run


def _payload(target) -> str:
    return f"x' AS dim, 1 AS v; COPY (SELECT 42) TO '{target}'; SELECT '"


@pytest.mark.parametrize("field", ["dimensions", "time_column", "measures", "hierarchies"])
@pytest.mark.parametrize("command", ["validate", "search", "ingest"])
def test_a_crafted_name_runs_no_sql_and_is_a_located_error(good, tmp_path, field, command):
    pwned = tmp_path / "pwned.csv"
    text = (good / "passport.yaml").read_text()
    evil = _payload(pwned).replace('"', '\\"')
    if field == "dimensions":
        text = text.replace("dimensions: [country, platform]",
                            f'dimensions: [country, platform, "{evil}"]')
    elif field == "time_column":
        text = text.replace("time_column: ts", f'time_column: "{evil}"')
    elif field == "measures":
        text = text.replace("  conversions: {}\n", f'  conversions: {{}}\n  "{evil}": {{}}\n')
    else:
        text = text.replace("  region: country", f'  "{evil}": country')
    (good / "passport.yaml").write_text(text)
    args = {"validate": ["validate", good], "search": ["search", good, "checkout"],
            "ingest": ["ingest", good, "--db", tmp_path / "s.duckdb"]}[command]
    r = run(*args, cwd=tmp_path)
    one_located_line(r, "passport.yaml", f"key '{field}'", "is not a valid column name",
                     "expected a letter or '_'")
    assert not pwned.exists()
    assert not (tmp_path / "s.duckdb").exists()


def test_a_name_with_a_double_quote_is_refused_too(good, tmp_path):
    text = (good / "passport.yaml").read_text().replace(
        "dimensions: [country, platform]", "dimensions: [country, 'plat\"form']")
    (good / "passport.yaml").write_text(text)
    one_located_line(run("validate", good), "passport.yaml", "key 'dimensions'",
                     "'plat\"form'")


def test_an_ordinary_name_still_loads(good):
    r = run("validate", good)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
