"""``agentsup tui --web``: the dashboard served to browsers by textual-serve, driven as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import psutil
import pytest

from agentsup.supervisor.rundir import RunDir
from tests.e2e.harness import AGENTSUP, Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PLAN = """
[run]
name = "web"

[agents.sleeper]
cmd = "echo sleeping; sleep 600"
"""


def start_run(agentsup: Agentsup, tmp_path: Path, run_id: str) -> RunDir:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", run_id)
    return RunDir(agentsup.run_dir(run_id))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str] | None:
    """Status and body of a GET, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- a http:// URL we built
            return response.status, response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def open_session(url: str, server: int, wanted: bytes, timeout: float = 20) -> list[psutil.Process]:
    """Open a browser session's websocket and read until ``wanted`` is on its screen; returns the
    processes the server ran for the session, seen while it was open."""
    received = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as client, client.ws_connect(url) as ws:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    received += message.data
                    if wanted in received:
                        return psutil.Process(server).children(recursive=True)
    raise AssertionError(
        f"the session did not show {wanted!r} (see the server's output): {received[-500:]!r}"
    )


def test_web_serves_the_runs_dashboard_to_a_browser(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-web")
    port = free_port()
    # The state dir on the command line only: the sessions must be given it, not inherit it.
    env = {k: v for k, v in agentsup.env.items() if k != "AGENTSUP_STATE_DIR"}
    server = subprocess.Popen(
        [AGENTSUP, "--state-dir", str(agentsup.state_dir), "tui", run.run_id, "--web", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page: list[tuple[int, str] | None] = [None]

        def answered() -> bool:
            page[0] = get(f"http://127.0.0.1:{port}/")
            return page[0] is not None or server.poll() is not None

        wait_until(answered, message="the web server answering")
        assert page[0] is not None, f"the server exited {server.returncode}"
        status, body = page[0]
        assert status == 200
        assert "agentsup dash-web" in body
        assert f"ws://127.0.0.1:{port}/ws" in body

        # A session runs the dashboard of this run (its header names it); closing the page ends it.
        url = f"ws://127.0.0.1:{port}/ws?width=100&height=30"
        session = asyncio.run(open_session(url, server.pid, b" dash-web "))
        assert session
        wait_until(lambda: not any(alive(p) for p in session), message="a dashboard outlived its page")
        assert agentsup.status_json(run.run_id)["state"] == "running"  # serving leaves the run alone
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
        print(output)  # shown when the test fails: textual-serve relays a session's errors there
    assert server.returncode == 0
    assert agentsup.engine_pids()


def test_web_options_go_with_web_only(agentsup: Agentsup) -> None:
    result = agentsup.run("tui", "--port", "8123", check=False)
    assert result.returncode == 2
    assert "--host and --port go with --web" in result.stderr


def test_help_mentions_web(agentsup: Agentsup) -> None:
    out = agentsup.run("tui", "--help").stdout
    assert "  --web " in out
    assert "With --web, serve it on http://127.0.0.1:8000/" in " ".join(out.split())
