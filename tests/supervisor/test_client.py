"""The control client turns a vanished engine into ControlError, never a raw socket error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsup.supervisor.client import ControlClient, ControlError


@pytest.fixture
def resetting_server(tmp_path: Path) -> Iterator[Path]:
    """A Unix socket that accepts and closes with the client's request unread, which resets it: what a
    client meets when it connects as the engine shuts down."""
    path = tmp_path / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(1024, socket.MSG_PEEK)  # wait for the request, leave it unread
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    thread.join(timeout=5)
    server.close()


def test_a_reset_connection_is_a_control_error(resetting_server: Path) -> None:
    with (
        ControlClient(resetting_server) as client,
        pytest.raises(ControlError, match="closed the connection"),
    ):
        client.subscribe(after=0)


def test_no_engine_is_a_control_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="not reachable"):
        ControlClient(tmp_path / "nothing.sock")
