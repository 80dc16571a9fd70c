"""A blocking client of the control socket, for the CLI."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

from agentsup.supervisor.events import JSON, Event


class ControlError(Exception):
    """The engine cannot be reached, or it refused the request; the message says which."""


class ControlClient:
    def __init__(self, path: Path, timeout: float | None = 10.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except OSError as exc:
            self._sock.close()
            raise ControlError(f"the engine is not reachable at {path}: {exc.strerror or exc}") from exc
        self._file = self._sock.makefile("rb")
        self._next_id = 0

    def interrupt(self) -> None:
        """Wake a thread blocked reading from this client (``close`` alone does not, on Linux)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # already closed or never connected: nothing is blocked on it

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, obj: Mapping[str, JSON]) -> None:
        try:
            self._sock.sendall(json.dumps(obj).encode() + b"\n")
        except OSError as exc:
            raise ControlError(f"the engine closed the connection: {exc.strerror or exc}") from exc

    def _read(self) -> dict[str, JSON] | None:
        try:
            line = self._file.readline()
        except OSError as exc:
            raise ControlError(f"the engine closed the connection: {exc.strerror or exc}") from exc
        if not line:
            return None
        if not line.endswith(b"\n"):  # the engine cuts off a subscriber that stopped reading
            raise ControlError("the engine closed the connection in the middle of a message")
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ControlError(f"unexpected reply: {line[:200]!r}") from exc
        if not isinstance(obj, dict):
            raise ControlError(f"unexpected reply: {line[:200]!r}")
        return obj

    def request(self, cmd: str, **args: JSON) -> dict[str, JSON]:
        self._next_id += 1
        self._send({"id": self._next_id, "cmd": cmd, **args})
        reply = self._read()
        if reply is None:
            raise ControlError("the engine closed the connection")
        if reply.get("ok") is not True:
            raise ControlError(str(reply.get("error", "request refused")))
        return reply

    def subscribe(
        self, after: int | None = None, *, usage: bool = False
    ) -> tuple[dict[str, JSON], Iterator[Event | str]]:
        """Snapshot, then events; the iterator ends with the outcome string (or "" if the engine vanished),
        or raises ControlError if the engine dropped this client for not reading. ``usage``: the client
        shows CPU and memory, which the engine then samples every sweep (2 s) instead of every 10 s."""
        self._sock.settimeout(None)
        args: dict[str, JSON] = {} if after is None else {"after": after}
        if usage:
            args["usage"] = True
        reply = self.request("subscribe", **args)
        snapshot = reply.get("snapshot")
        if not isinstance(snapshot, dict):
            raise ControlError("subscribe reply without a snapshot")

        def stream() -> Iterator[Event | str]:
            while (msg := self._read()) is not None:
                ev = msg.get("event")
                if isinstance(ev, dict):
                    yield Event.from_json(ev)
                elif msg.get("end"):
                    yield str(msg.get("outcome") or "")
                    return
                elif msg.get("ok") is False:  # the engine dropped this subscriber
                    raise ControlError(str(msg.get("error", "the engine ended the subscription")))
            yield ""

        return snapshot, stream()
