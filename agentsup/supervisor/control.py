"""The control channel: a Unix socket in the run directory speaking newline-delimited JSON.

A request is one JSON object per line: ``{"id": ..., "cmd": ...}``; every reply echoes ``id`` and has
``ok``. ``subscribe`` (optionally ``"after": SEQ``) answers with a snapshot and the seq it reflects, then
the events after ``after`` up to that seq, then every live event, each as ``{"event": {...}}``: nothing is
lost between the snapshot and the stream, and the stream ends with the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, Event

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.control")
MAX_REQUEST = 1 << 20


def encode(obj: Mapping[str, JSON]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def parse_request(line: bytes) -> dict[str, JSON] | str:
    """The request on ``line``, or what is wrong with it."""
    try:
        req = json.loads(line)
    except ValueError as exc:
        return str(exc)
    if not isinstance(req, dict):
        return "a request is a JSON object"
    return req


class ControlServer:
    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)
        self.path.chmod(0o600)

    async def close(self, drain: float = 2.0) -> None:
        if self._server is not None:
            self._server.close()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=drain)
        for t in self._clients:
            t.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                writer.write(encode({"ok": False, "error": f"request over {MAX_REQUEST} bytes; closing"}))
                await writer.drain()
                return
            if not line:
                return
            if not line.endswith(b"\n"):
                return  # half-sent request: the client went away
            req = parse_request(line)
            if isinstance(req, str):
                writer.write(encode({"ok": False, "error": f"malformed request: {req}"}))
                await writer.drain()
                continue
            rid = req.get("id")
            if req.get("cmd") == "subscribe":
                await self._subscribe(req, writer)
                return
            fut: asyncio.Future[dict[str, JSON]] = asyncio.get_running_loop().create_future()
            self.engine.post(m.Command(req, fut))
            reply = await fut
            writer.write(encode({"id": rid, **reply}))
            await writer.drain()

    async def _subscribe(self, req: Mapping[str, JSON], writer: asyncio.StreamWriter) -> None:
        engine = self.engine
        queue, snapshot, seq = engine.subscribe()
        try:
            writer.write(encode({"id": req.get("id"), "ok": True, "snapshot": snapshot, "seq": seq}))
            after = req.get("after")
            if isinstance(after, int) and after < seq:
                history = await engine.read_events(after, seq)
                for ev in history:
                    writer.write(encode({"event": ev.to_json()}))
                    await writer.drain()
            while True:
                item: Event | None = await queue.get()
                if item is None:
                    break
                writer.write(encode({"event": item.to_json()}))
                await writer.drain()
            writer.write(encode({"end": True, "outcome": engine.outcome.value if engine.outcome else None}))
            await writer.drain()
        finally:
            engine.unsubscribe(queue)
