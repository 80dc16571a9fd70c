"""The control channel: a Unix socket in the run directory speaking newline-delimited JSON.

A request is one JSON object per line: ``{"id": ..., "cmd": ...}``; every reply echoes ``id`` and has
``ok``. ``subscribe`` (optionally ``"after": SEQ``) answers with a snapshot and the seq it reflects, then
the events after ``after`` up to that seq, then every live event, each as ``{"event": {...}}``: nothing is
lost between the snapshot and the stream, and the stream ends with the run.

Only the engine's own user may connect: the socket is 0600 in a 0700 directory, and where the OS tells the
peer's uid (Linux, ``SO_PEERCRED``) any other uid is refused with one error line, root included. A
subscriber that stops reading is dropped once ``SUBSCRIBER_BACKLOG`` bytes wait for it and it has not taken
any for ``SUBSCRIBER_STALL`` seconds, so it can hold neither the engine nor its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.supervisor import messages as m
from agentsup.supervisor.commands import COMMANDS
from agentsup.supervisor.events import JSON

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.control")
MAX_REQUEST = 1 << 20
SUBSCRIBER_BACKLOG = 1 << 20  # bytes a subscriber may leave unread before it must catch up
SUBSCRIBER_STALL = 5.0  # seconds it then has to take some, or it is dropped
PUSH_BATCH = 500  # events queued for a subscriber that go out in one write at most
BACKLOG = 512  # connections the kernel queues before the engine accepts them
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def encode(obj: Mapping[str, JSON]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def parse_request(line: bytes) -> dict[str, JSON] | str:
    """The request on ``line``, or what is wrong with it."""
    try:
        req = json.loads(line)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    if not isinstance(req, dict):
        return "a request is a JSON object"
    return req


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process that connected ``sock``, where the OS says (Linux); else None."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    _pid, uid, _gid = _CREDENTIALS.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _CREDENTIALS.size))
    return int(uid)


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
                self._client, path=str(self.path), limit=MAX_REQUEST, backlog=BACKLOG
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
            if await self._admitted(writer):
                await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _admitted(self, writer: asyncio.StreamWriter) -> bool:
        """Whether the peer runs as the engine's user; if not, it is told so and nothing it sends is read."""
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        own = os.geteuid()
        if uid is None or uid == own:
            return True
        log.warning("refused a control client of uid %d", uid)
        message = f"permission denied: this engine answers only its own user (uid {own}), not uid {uid}"
        writer.write(encode({"ok": False, "error": message}))
        await writer.drain()
        return False

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
            rid, cmd = req.get("id"), req.get("cmd")
            if not isinstance(cmd, str):  # the engine looks commands up by name: only a string may reach it
                known = ", ".join(("subscribe", *COMMANDS))
                writer.write(
                    encode({"id": rid, "ok": False, "error": f"unknown command {cmd!r}; known: {known}"})
                )
                await writer.drain()
                continue
            if cmd == "subscribe":
                await self._subscribe(req, writer)
                return
            fut: asyncio.Future[dict[str, JSON]] = asyncio.get_running_loop().create_future()
            self.engine.post(m.Command(req, fut))
            reply = await fut
            writer.write(encode({"id": rid, **reply}))
            await writer.drain()

    async def _subscribe(self, req: Mapping[str, JSON], writer: asyncio.StreamWriter) -> None:
        engine = self.engine
        queue, snapshot, seq = engine.subscribe(usage=req.get("usage") is True)
        try:
            if not await _push(writer, {"id": req.get("id"), "ok": True, "snapshot": snapshot, "seq": seq}):
                return
            after = req.get("after")
            if isinstance(after, int) and not isinstance(after, bool) and after < seq:
                for ev in await engine.read_events(after, seq):
                    if not await _push(writer, {"event": ev.to_json()}):
                        return
            while (item := await queue.get()) is not None:
                # What else is queued goes out in the same write: one system call per burst, not per event.
                events, ended = [item], False
                while not queue.empty() and len(events) < PUSH_BATCH:
                    if (more := queue.get_nowait()) is None:
                        ended = True
                        break
                    events.append(more)
                if not await _push_many(writer, [{"event": ev.to_json()} for ev in events]):
                    return
                if ended:
                    break
            if engine.outcome is None:  # the engine gave up on this subscriber's queue
                await _push(writer, {"ok": False, "error": "dropped: too many events left unread"})
                return
            await _push(writer, {"end": True, "outcome": engine.outcome.value})
        finally:
            engine.unsubscribe(queue)


async def _push(writer: asyncio.StreamWriter, message: Mapping[str, JSON]) -> bool:
    """Send ``message`` to a subscriber; False once it has been dropped for not reading."""
    return await _push_many(writer, [message])


async def _push_many(writer: asyncio.StreamWriter, messages: list[Mapping[str, JSON]]) -> bool:
    """Send ``messages`` to a subscriber in one write; False once it has been dropped for not reading."""
    writer.write(b"".join(encode(message) for message in messages))
    if writer.transport.get_write_buffer_size() <= SUBSCRIBER_BACKLOG:
        return True
    try:
        await asyncio.wait_for(writer.drain(), SUBSCRIBER_STALL)
    except TimeoutError:
        log.warning("dropped a subscriber that stopped reading (%d bytes unread)", SUBSCRIBER_BACKLOG)
        writer.transport.abort()
        return False
    return True
