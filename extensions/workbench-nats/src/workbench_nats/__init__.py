"""Micro-batches on NATS JetStream for ``workbench watch`` (the ``nats`` stream source).

``workbench watch PASSPORT --source "nats://127.0.0.1:4222/SUBJECT?stream=NAME"``

Each message is one batch: its payload a CSV (default) or Parquet file with the
columns of the passport's ``events``; its headers ``Workbench-Batch-Id`` (the
batch id; else ``Nats-Msg-Id``; else ``STREAM-SEQUENCE``) and
``Workbench-Format`` (``csv`` or ``parquet``). The source reads through a durable
pull consumer with explicit acknowledgement (JetStream's at-least-once delivery),
acknowledges a message only after ``watch`` committed it, and terminates
(no redelivery) a message ``watch`` refused. Exactly-once storage comes from the
workbench's ledger of batch ids, so a redelivery after a crash, or the same
batch published twice, is stored once.

URL query options: ``stream`` (created over the subject if missing; default
``WORKBENCH``), ``durable`` (consumer name; default ``workbench``), ``ack_wait``
(seconds before an unacknowledged message is redelivered; default 30),
``batch`` (messages fetched at once; default 16).

:func:`publish_batch` is the producer side (tests, benchmarks, scripts).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from workbench.errors import UsageError
from workbench.stream.sources import Batch

BATCH_HEADER = "Workbench-Batch-Id"
FORMAT_HEADER = "Workbench-Format"
FORMATS = {"csv": ".csv", "parquet": ".parquet"}


def parse_url(url: str) -> dict:
    """``nats://HOST:PORT/SUBJECT?stream=..&durable=..&ack_wait=..&batch=..`` as options."""
    u = urlparse(url)
    subject = u.path.lstrip("/")
    if u.scheme != "nats" or not u.hostname or not subject:
        raise UsageError(f"--source {url!r}: expected nats://HOST:PORT/SUBJECT[?stream=NAME]")
    qs = {k: v[-1] for k, v in parse_qs(u.query).items()}
    unknown = set(qs) - {"stream", "durable", "ack_wait", "batch"}
    if unknown:
        raise UsageError(f"--source {url!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                         "options are stream, durable, ack_wait, batch")
    try:
        ack_wait, batch = float(qs.get("ack_wait", 30)), int(qs.get("batch", 16))
    except ValueError:
        raise UsageError(f"--source {url!r}: ack_wait must be seconds and batch a whole "
                         "number") from None
    return {"server": f"nats://{u.hostname}:{u.port or 4222}", "subject": subject,
            "stream": qs.get("stream", "WORKBENCH"), "durable": qs.get("durable", "workbench"),
            "ack_wait": ack_wait, "batch": batch}


async def _ensure_stream(js, stream: str, subject: str) -> None:
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[subject])


async def _connect(server: str):
    import nats

    errors: list[str] = []

    async def on_error(exc):  # nats-py's default prints a traceback; say it once, below
        errors.append(f"{type(exc).__name__} {exc}")

    try:
        return await nats.connect(servers=[server], connect_timeout=3, error_cb=on_error,
                                  allow_reconnect=True, max_reconnect_attempts=5)
    except Exception as exc:  # NoServersError, OSError, timeouts: one clear line
        raise UsageError(f"cannot reach NATS at {server}: {type(exc).__name__} {exc}; is "
                         "`nats-server -js` running there?") from None


class NatsSource:
    """A durable JetStream pull consumer delivering batches to ``watch``."""

    name = "nats"

    def __init__(self, server: str, subject: str, *, stream: str = "WORKBENCH",
                 durable: str = "workbench", ack_wait: float = 30.0, batch: int = 16):
        self.server, self.subject, self.stream = server, subject, stream
        self.durable, self.ack_wait, self.batch = durable, ack_wait, batch
        self._loop = None

    @classmethod
    def from_url(cls, url: str) -> "NatsSource":
        o = parse_url(url)
        return cls(o.pop("server"), o.pop("subject"), **o)

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def open(self, spool: Path) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        self.spool = Path(spool)
        self.spool.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.new_event_loop()
        try:
            self._nc = self._run(_connect(self.server))
        except BaseException:
            self._loop.close()
            self._loop = None
            raise
        js = self._nc.jetstream()
        self._run(_ensure_stream(js, self.stream, self.subject))
        cfg = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait)
        self._sub = self._run(js.pull_subscribe(self.subject, durable=self.durable,
                                                stream=self.stream, config=cfg))

    def poll(self, timeout: float) -> list[Batch]:
        import nats.errors

        try:
            msgs = self._run(self._sub.fetch(self.batch, timeout=max(timeout, 0.05)))
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            # nats-py also raises a bare asyncio.TimeoutError when the fetch's deadline
            # has passed before its second request (a busy thread: a story being
            # investigated on the watcher's worker); either way, nothing arrived
            return []
        return [self._to_batch(m) for m in msgs]

    def _to_batch(self, msg) -> Batch:
        h = msg.headers or {}
        meta = msg.metadata
        bid = h.get(BATCH_HEADER) or h.get("Nats-Msg-Id") or \
            f"{meta.stream}-{meta.sequence.stream}"
        fmt = (h.get(FORMAT_HEADER) or "csv").lower()
        arrived = meta.timestamp.timestamp() if meta.timestamp else time.time()
        origin = f"{self.server}/{self.subject}#{meta.sequence.stream}"
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in bid)[:120]
        if fmt not in FORMATS:
            return Batch(bid, self.spool / f"{safe}.{meta.sequence.stream}", arrived, origin, msg,
                         problem=f"{FORMAT_HEADER} {fmt!r} is not one of "
                                 f"{', '.join(FORMATS)}")
        path = self.spool / f"{safe}.{meta.sequence.stream}{FORMATS[fmt]}"
        path.write_bytes(msg.data)
        return Batch(bid, path, arrived, origin, msg)

    #: Seconds to wait for the server to confirm an acknowledgement.
    ACK_WAIT = 10.0

    def ack(self, batch: Batch) -> None:
        """Acknowledge a stored batch, waiting for the server's confirmation.

        The batch is already in the ledger (committed with its rows) when this runs, so a
        confirmation that does not come in time is not an error: the acknowledgement is
        sent once more without waiting, and should the server still redeliver the batch,
        the ledger refuses it as a repeat and it is acknowledged then. (The wait was 1 s,
        nats-py's default; with a story being investigated on the watcher's worker
        thread, the reply could wait longer than that for this thread's event loop.)
        """
        import nats.errors

        try:
            self._run(batch.token.ack_sync(timeout=self.ACK_WAIT))
        except nats.errors.TimeoutError:
            self._run(batch.token.ack())
        batch.path.unlink(missing_ok=True)

    def reject(self, batch: Batch, reason: str) -> None:
        self._run(batch.token.term())
        batch.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._run(self._nc.drain())
        finally:
            self._loop.close()
            self._loop = None


async def _publish(server, subject, stream, items):
    nc = await _connect(server)
    try:
        js = nc.jetstream()
        await _ensure_stream(js, stream, subject)
        acks = []
        for batch_id, data, fmt in items:
            acks.append(await js.publish(subject, data, stream=stream,
                                         headers={BATCH_HEADER: batch_id, FORMAT_HEADER: fmt}))
        return [a.seq for a in acks]
    finally:
        await nc.drain()


def publish_batch(url: str, batch_id: str, data: bytes, *, fmt: str = "csv") -> int:
    """Publish one batch (file bytes) to the stream of ``url``; its stream sequence.

    Examples
    --------
    >>> publish_batch("nats://127.0.0.1:4222/wb.shop", "2026-11-18T14",
    ...               Path("b.csv").read_bytes())                      # doctest: +SKIP
    """
    return publish_batches(url, [(batch_id, data, fmt)])[0]


def publish_batches(url: str, items) -> list[int]:
    """Publish ``(batch_id, bytes, fmt)`` items over one connection; their sequences."""
    o = parse_url(url)
    return _run(_publish(o["server"], o["subject"], o["stream"], list(items)))


def _run(coro):
    """Run ``coro`` to completion from synchronous code, also where this thread already
    runs an event loop (a notebook kernel, Playwright's sync API): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-nats") as pool:
        return pool.submit(asyncio.run, coro).result()
