"""The control socket against hostile clients: another user, silence, half lines, a crowd, a subscriber
that never reads, binary garbage. After each the engine still answers ``status`` and the run completes
normally (a real engine, started by ``agentsup start --detach`` on an isolated tmux server)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.control import SUBSCRIBER_BACKLOG, SUBSCRIBER_STALL
from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, isolated_agentsup
from tests.supervisor.test_control import Conn
from tests.tmuxenv import wait_until

pytestmark = [pytest.mark.tmux, pytest.mark.e2e]

PLAN = """
[run]
name = "hostile"

[agents.holder]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'

[agents.later]
after = ["holder"]
cmd = "echo later ran"
"""
TIMEOUT = 30.0
NOBODY = 65534


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    with isolated_agentsup(tmp_path, state_name="s") as tool:  # short: socket paths stay under 108 bytes
        yield tool


@pytest.fixture
def sock(agentsup: Agentsup, tmp_path: Path) -> Path:
    """Run ``h1`` with holder running (it waits for its ``go`` file); its control socket."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", "h1")
    path = agentsup.run_dir("h1") / "control.sock"
    wait_until(lambda: _status(path)["agents"][0]["state"] == "running", timeout=TIMEOUT, message="holder")
    return path


def _status(path: Path) -> dict[str, Any]:
    with ControlClient(path) as client:
        status = client.request("status")["status"]
    assert isinstance(status, dict)
    return status


def _still_serves_and_completes(agentsup: Agentsup, path: Path) -> None:
    """The engine answers status; once holder is released the run ends well, nothing else was done."""
    assert _status(path)["state"] == "running"
    (agentsup.run_dir("h1") / "agents" / "holder" / "out" / "go").touch()
    wait_until(lambda: not path.exists(), timeout=TIMEOUT, message="the engine to finish and go")
    status = agentsup.status_json("h1")
    assert status["state"] == "succeeded"
    assert {a["name"]: a["state"] for a in status["agents"]} == {"holder": "succeeded", "later": "succeeded"}
    commands = [e for e in agentsup.events("h1") if e.kind is EventKind.COMMAND]
    assert not commands, f"a hostile client's request was carried out: {commands}"


# ---- another user ---------------------------------------------------------------------------------

# Runs as nobody: connects, reads what the engine says, then tries to stop the run.
PEER = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": e.strerror}))
    sys.exit()
f = s.makefile("rb")
first = f.readline().decode()
try:
    s.sendall(b'{"cmd": "stop"}\\n')
    rest = f.read().decode()
except OSError as e:
    rest = e.strerror
print(json.dumps({"first": first, "rest": rest}))
"""


def _as_nobody(path: Path) -> dict[str, str]:
    """What PEER reports when run as nobody against ``path``, by an interpreter nobody may run."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 that another user can run")
    r = subprocess.run(
        [python, "-c", PEER, str(path)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
        cwd="/",
    )
    out = json.loads(r.stdout)
    assert isinstance(out, dict)
    return out


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")


@root_only
def test_the_socket_file_alone_keeps_another_user_out(agentsup: Agentsup, sock: Path) -> None:
    assert _as_nobody(sock) == {"connect": "Permission denied"}
    _still_serves_and_completes(agentsup, sock)


@root_only
def test_another_user_who_reaches_the_socket_is_refused_by_its_uid(agentsup: Agentsup, sock: Path) -> None:
    # The uid check itself: give nobody a way to the socket (a hard link in a directory it may enter, the
    # socket's mode loosened), so only SO_PEERCRED stands between it and the engine.
    door = Path(tempfile.mkdtemp(prefix="agentsup-peer-"))
    try:
        door.chmod(0o755)
        os.link(sock, door / "control.sock")
        sock.chmod(0o666)
        seen = _as_nobody(door / "control.sock")
    finally:
        if sock.exists():
            sock.chmod(0o600)
        shutil.rmtree(door)
    refusal = json.loads(seen["first"])
    assert refusal["ok"] is False
    assert f"answers only its own user (uid {os.geteuid()}), not uid {NOBODY}" in refusal["error"]
    assert seen["rest"] in ("", "Connection reset by peer", "Broken pipe")  # nothing more, and no reply
    log = (agentsup.run_dir("h1") / "engine.log").read_text()
    assert f"refused a control client of uid {NOBODY}" in log
    _still_serves_and_completes(agentsup, sock)


# ---- clients that misbehave -------------------------------------------------------------------------


def test_a_client_that_connects_and_sends_nothing(agentsup: Agentsup, sock: Path) -> None:
    idle = Conn(sock, timeout=TIMEOUT)
    try:
        _still_serves_and_completes(agentsup, sock)
        assert idle.read() is None  # the engine hung up when it went
    finally:
        idle.close()


def test_a_client_that_sends_half_a_line_and_goes(agentsup: Agentsup, sock: Path) -> None:
    for half in (b'{"id": 1, "cmd": "stop"}', b'{"id": 1, "cmd": "kill", "ag', b"\xff\xfe{"):
        conn = Conn(sock, timeout=TIMEOUT)
        conn.send(half)
        conn.close()
    _still_serves_and_completes(agentsup, sock)


def test_two_hundred_clients_at_once(agentsup: Agentsup, sock: Path) -> None:
    conns = [Conn(sock, timeout=TIMEOUT) for _ in range(200)]
    try:
        for i, conn in enumerate(conns):
            conn.request({"id": i, "cmd": "status"})
        replies = [conn.reply() for conn in conns]
    finally:
        for conn in conns:
            conn.close()
    assert [r["id"] for r in replies] == list(range(200))
    assert all(r["ok"] is True and r["status"]["run"] == "h1" for r in replies)
    _still_serves_and_completes(agentsup, sock)


def test_a_subscriber_that_never_reads_is_dropped(agentsup: Agentsup, sock: Path) -> None:
    stuck = Conn(sock, timeout=TIMEOUT)  # speaks raw JSON lines
    lazy = ControlClient(sock)  # the CLI's own client, whose stream is not iterated yet
    left = b""
    try:
        stuck.request({"id": "s", "cmd": "subscribe"})
        _, stream = lazy.subscribe()
        # Far more than a subscriber may leave unread, and than the kernel buffers.
        blob = "x" * (SUBSCRIBER_BACKLOG // 2)
        with ControlClient(sock) as client:
            for i in range(8):
                client.request("emit", name=f"flood-{i}", data=blob)
        log = agentsup.run_dir("h1") / "engine.log"
        wait_until(
            lambda: log.read_text().count("dropped a subscriber that stopped reading") == 2,
            timeout=SUBSCRIBER_STALL + TIMEOUT,
            message="the engine to drop both subscribers",
        )
        _still_serves_and_completes(agentsup, sock)
        # What reached them before the drop is still there to read; then the stream stops, mid-line maybe.
        with contextlib.suppress(ConnectionResetError):
            left = stuck.file.read()
        items: list[Event | str] = []
        with contextlib.suppress(ControlError):
            items.extend(stream)
    finally:
        stuck.close()
        lazy.close()
    whole = [json.loads(line) for line in left.split(b"\n")[:-1]]
    assert whole[0]["ok"] is True  # the subscription's head
    assert not any(m.get("end") for m in whole), "a dropped subscriber was told the run ended"
    assert len(left) < 8 * len(blob), "everything reached a client that never read"
    assert all(isinstance(i, Event) or i == "" for i in items), "a dropped subscriber was told the outcome"


def test_binary_garbage_is_refused_line_by_line(agentsup: Agentsup, sock: Path) -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible garbage, not secrets
    lines = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))).replace(b"\n", b"") for _ in range(50)
    ]
    lines += [
        b"[" * 100_000,  # json recursion: once no reply at all, a traceback in engine.log
        b'{"cmd": ["stop"]}',  # once an engine crash: a list is no command name
        b'{"cmd": {"stop": 1}}',
        b'{"cmd": 7, "agent": "holder"}',
        b"\x00" * 1000,
        b'{"cmd": "\\ud800"}',
    ]
    conn = Conn(sock, timeout=TIMEOUT)
    try:
        conn.send(b"\n".join(lines) + b"\n")
        replies = [conn.reply() for _ in lines]
        conn.request({"id": "after", "cmd": "status"})
        last = conn.reply()
    finally:
        conn.close()
    assert all(r["ok"] is False for r in replies)
    assert replies[50]["error"] == "malformed request: nested too deeply"
    assert replies[51]["error"].startswith("unknown command ['stop']; known: subscribe, status")
    assert (last["id"], last["ok"]) == ("after", True)
    _still_serves_and_completes(agentsup, sock)
