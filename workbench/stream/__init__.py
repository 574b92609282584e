"""Streaming: micro-batches ingested exactly once, continuous detection, retraining.

``workbench watch`` (:class:`Watcher`) and ``workbench retrain`` (:func:`retrain`);
sources are the ``workbench.streams`` plug-in group (built-in: ``folder``).
"""
from .alerts import DetectConfig
from .ledger import BatchReceipt, ingest_batch, init_stream_tables
from .model import RetrainReport, StreamModel, latest_model, model_status, retrain
from .sources import Batch, FolderSource, open_source
from .watch import WatchConfig, Watcher

__all__ = ["Batch", "BatchReceipt", "DetectConfig", "FolderSource", "RetrainReport",
           "StreamModel", "WatchConfig", "Watcher", "ingest_batch", "init_stream_tables",
           "latest_model", "model_status", "open_source", "retrain"]
