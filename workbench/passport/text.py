"""Input files as UTF-8 JSON text, with located errors (file, line, column, what was expected).

For source plug-ins: ``workbench-otel`` uses it on its error path (DuckDB reads
the exports; when it refuses a file, the file is decoded and parsed here to say
where and why, in one line); ``workbench-changes`` reads every input with
:func:`load_json` and ``workbench-warehouse`` its manifest with
:func:`decode_utf8`.
"""
from __future__ import annotations

import codecs
import gzip
import json
import re
from pathlib import Path
from typing import Iterator

from ..errors import PassportError

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_WS = re.compile(r"\s*")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PassportError(f"is not a readable gzip file ({exc}); expected a complete "
                                ".gz of JSON text", file=str(path)) from None
    return data


def decode_utf8(data: bytes, path: Path, expected: str) -> str:
    """``data`` as text; bytes that are not UTF-8 raise naming the line, column and byte."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise PassportError(f"is {name} text (it starts with a {name} byte-order mark); "
                                f"expected {expected} encoded as UTF-8: re-save it as UTF-8",
                                file=str(path))
    if b"\x00" in data[:64]:
        raise PassportError("holds NUL bytes, as UTF-16 or UTF-32 text does; expected "
                            f"{expected} encoded as UTF-8: re-save it as UTF-8", file=str(path))
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[start:exc.start].decode("utf-8", errors="replace")) + 1
        raise PassportError(f"is not UTF-8 text: byte 0x{data[exc.start]:02X} at line {line}, "
                            f"column {col} is not valid UTF-8; expected {expected} encoded as "
                            "UTF-8 (Latin-1 or Windows-1252? re-save it as UTF-8)",
                            file=str(path)) from None


def json_error(exc: json.JSONDecodeError, path: Path, expected: str) -> PassportError:
    """A located, one-line error for a JSON syntax error."""
    if not exc.doc.strip():
        return PassportError(f"is empty; expected {expected}", file=str(path))
    if not exc.doc[exc.pos:].strip() or exc.msg.startswith("Unterminated string"):
        what = "the file ends in the middle of a JSON value (truncated?)"
    else:
        what = exc.msg
    return PassportError(f"is not valid JSON at line {exc.lineno}, column {exc.colno}: {what}; "
                         f"expected {expected}", file=str(path))


def json_values(text: str) -> Iterator[tuple[int, object]]:
    """``(line, value)`` of each top-level JSON value of ``text`` (one per file, one per line,
    or concatenated); raises :class:`json.JSONDecodeError`."""
    dec = json.JSONDecoder()
    pos, line, n = 0, 1, len(text)
    while True:
        end = _WS.match(text, pos).end()
        line += text.count("\n", pos, end)
        if end >= n:
            return
        value, pos = dec.raw_decode(text, end)
        yield line, value
        line += text.count("\n", end, pos)


def load_json(path: Path, expected: str) -> object:
    """One JSON document from a UTF-8 file; bad bytes or syntax raise a located error."""
    text = decode_utf8(read_bytes(path), path, expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json_error(exc, path, expected) from None


def missing_keys(missing: list[str], what: dict[str, str]) -> str:
    """``missing required key 'a'; expected WHAT`` for one key, or every key with what it holds
    (``missing required keys 'a', 'b'; expected a: ...; b: ...``) for several."""
    names = ", ".join(repr(k) for k in missing)
    if len(missing) == 1:
        return f"missing required key {names}; expected {what[missing[0]]}"
    return (f"missing required keys {names}; expected "
            + "; ".join(f"{k}: {what[k]}" for k in missing))
