"""Stream sources: the folder source's delivery rules and the plug-in lookup."""
from __future__ import annotations

import os

import pytest

from workbench.errors import UsageError
from workbench.registry import get_plugin
from workbench.stream.sources import FolderSource, open_source, validate_batch
from workbench.testing import check_stream_source


def test_folder_source_reads_complete_files_only_and_files_them(tmp_path):
    check_stream_source(FolderSource)
    assert get_plugin("workbench.streams", "folder") is FolderSource
    src = open_source(f"folder:{tmp_path / 'drop'}")
    assert isinstance(src, FolderSource) and open_source(str(tmp_path / "x")).folder.name == "x"
    src.open(tmp_path / "spool")
    drop = tmp_path / "drop"
    (drop / ".half.csv.part").write_text("ts\n")          # still being written
    (drop / "notes.txt").write_text("hello")              # not a batch format
    (drop / "b2.csv").write_text("ts\n")
    (drop / "b1.parquet").write_bytes(b"PAR1")
    os.utime(drop / "b1.parquet", (1, 1))                 # older: delivered first
    outside = tmp_path / "secret.csv"
    outside.write_text("ts\n")
    (drop / "link.csv").symlink_to(outside)
    got = src.poll(0.01)
    assert [b.batch_id for b in got][:2] == ["b1", "b2"] and len(got) == 3
    link = next(b for b in got if b.batch_id == "link")
    assert "symbolic link" in validate_batch(link)
    assert validate_batch(got[0]) is None
    src.ack(got[0])
    src.reject(link, validate_batch(link))
    assert (drop / "done" / "b1.parquet").exists() and not (drop / "b1.parquet").exists()
    assert "symbolic link" in (drop / "rejected" / "link.csv.error.txt").read_text()
    assert outside.read_text() == "ts\n"                  # the link's target untouched
    assert [b.batch_id for b in src.poll(0.01)] == ["b2"]


def test_an_unknown_scheme_lists_the_installed_sources():
    with pytest.raises(UsageError, match="no workbench.streams plug-in named 'kafka'.*folder"):
        open_source("kafka://broker:9092/topic")


def test_watch_settings_are_checked_before_anything_runs(tmp_path):
    from workbench.stream import DetectConfig

    with pytest.raises(UsageError, match="--run 0: expected a whole number"):
        DetectConfig(run=0)
    with pytest.raises(UsageError, match="--z -1: expected a threshold > 0"):
        DetectConfig(z=-1)
