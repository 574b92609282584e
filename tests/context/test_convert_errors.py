"""``workbench convert`` (workbench/cli_plugins.py): a source's user error is one line.

The adapters' own malformed-input cases, in process and through the real command, are in
``extensions/*/tests`` (``test_malformed_*``, ``test_cli_reports_malformed_input_on_one_line``);
here is the guard ``cmd_convert`` keeps for any plug-in: a multi-line message (a parser's caret
diagram) is folded into the one line the CLI prints, with the error's exit code.
"""
from __future__ import annotations

import argparse

import pytest

from workbench import registry
from workbench.cli_plugins import cmd_convert, main, register
from workbench.errors import PassportError


class _MultiLineSource:
    """A source whose bad input error spans several lines."""

    name = "multiline"

    def describe(self) -> str:
        return "raises a multi-line error"

    def sample_input(self):
        raise NotImplementedError

    def to_passport(self, inputs, out_dir, **options):
        raise PassportError("is not valid YAML: while parsing a flow sequence\n"
                            '  in "<unicode string>", line 16, column 28:\n'
                            "      conversion_rate: {ratio: [ord\n"
                            "                               ^", file="warehouse.yaml")


@pytest.fixture
def multiline_source():
    registry.register("workbench.sources", "multiline", _MultiLineSource)
    yield
    registry.unregister("workbench.sources", "multiline")


def test_a_multi_line_plugin_error_is_printed_on_one_line(multiline_source, tmp_path, capsys):
    assert main(["convert", "multiline", "in.yaml", "--out", str(tmp_path / "pp")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        'workbench: error: warehouse.yaml: is not valid YAML: while parsing a flow sequence in '
        '"<unicode string>", line 16, column 28: conversion_rate: {ratio: [ord ^']
    assert not (tmp_path / "pp").exists()


def test_a_one_line_error_keeps_its_type(tmp_path):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    a = parser.parse_args(["convert", "warehouse", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "pp")])
    with pytest.raises(PassportError, match="does not exist"):
        cmd_convert(a)
