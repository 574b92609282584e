"""Masking: the manifest's ``pii`` columns never reach a role without the grant.

A served session whose role lacks ``view_unmasked`` reads a *pseudonymised
copy* of the passport (GDPR Art. 4(5) pseudonymisation; the keyed-hash
construction of NIST SP 800-188, "De-Identifying Government Datasets", 4.2):
every value of a ``pii`` column is replaced by ``pii-`` and the first 12 hex
digits of SHA-256(key, column, value), with a key drawn per server start and
never written anywhere. Equal values keep equal pseudonyms, so a slice on a
pseudonymised dimension still aggregates exactly; nothing downstream (store,
investigation, Bokeh documents, websocket frames, exports, saved notebooks,
logs, audit records) ever holds a real value, because none was read.

The rewrite is one DuckDB query per event file (no Python loop over rows); the
key and file paths are prepared parameters, column names go through the
passport's identifier quoting.
"""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path

__all__ = ["masked_passport", "pii_dimensions", "new_key"]

PREFIX = "pii-"


def new_key() -> str:
    """A fresh pseudonymisation key (256 bits, hex)."""
    return secrets.token_hex(32)


def pii_dimensions(manifest) -> list[str]:
    """The ``pii`` columns that are also dimensions (the only ones the store reads)."""
    dims = set(manifest.all_dimensions)
    return [c for c in manifest.pii if c in dims]


def _select(columns: list[str], reader: str) -> str:
    from ..store.sql import q as _q

    parts = [f"CASE WHEN {_q(c)} IS NULL THEN NULL ELSE '{PREFIX}' || "
             f"substr(sha256(? || chr(31) || ? || chr(31) || "
             f"CAST({_q(c)} AS VARCHAR)), 1, 12) END AS {_q(c)}" for c in columns]
    return f"SELECT * REPLACE ({', '.join(parts)}) FROM {reader}(?)"


def masked_passport(src: str | Path, out: str | Path, key: str) -> Path:
    """Write a copy of passport ``src`` to ``out`` with every ``pii`` value pseudonymised.

    Parameters
    ----------
    src:
        Passport directory.
    out:
        Destination directory (created; must not exist).
    key:
        Pseudonymisation key (:func:`new_key`); the same key gives the same pseudonyms.

    Returns
    -------
    Path
        ``out``.
    """
    import duckdb

    from ..passport import load_passport

    src, out = Path(src).resolve(), Path(out)
    passport = load_passport(src)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".workbench"))
    columns = [c for c in passport.manifest.pii]
    if not columns:
        return out
    con = duckdb.connect()
    try:
        con.execute("SET autoload_known_extensions = false")
        for f in passport.event_files:
            target = out / f.relative_to(src)
            parquet = f.suffix == ".parquet"
            sql = _select(columns, "read_parquet" if parquet else "read_csv_auto")
            if not parquet:
                sql = sql.replace("read_csv_auto(?)", "read_csv_auto(?, all_varchar = true)")
            params = [v for c in columns for v in (key, c)] + [str(f)]
            rel = con.sql(sql, params=params)
            (rel.write_parquet if parquet else rel.write_csv)(str(target))
    finally:
        con.close()
    return out
