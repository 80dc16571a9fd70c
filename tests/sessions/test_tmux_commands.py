"""Attach commands, argument escaping and the tmux version gate, checked with a real tmux."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pexpect
import pytest

from agentsup.sessions import BackendError, TmuxBackend, TmuxNotFoundError
from agentsup.sessions.probe import parse_version
from agentsup.sessions.tmux import _tmux_arg
from tests.tmuxenv import DEFAULT_SESSION, TmuxEnv, wait_until


def attach(argv: list[str], env: dict[str, str]) -> pexpect.spawn[str]:
    return pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(40, 120), encoding="utf-8")


def clients(tmux_env: TmuxEnv) -> str:
    """The terminals attached (not the backend's own control-mode client)."""
    out = tmux_env.tmux("list-clients", "-F", "#{?client_control_mode,,#{session_name} #{window_id}}").stdout
    return "\n".join(line for line in out.splitlines() if line)


def terminal_env() -> dict[str, str]:
    return {**os.environ, "TERM": "xterm-256color"}


@pytest.mark.tmux
def test_attach_from_outside_tmux_lands_on_the_window(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("target", ["sleep", "100"]))

    argv = backend.attach_command(DEFAULT_SESSION, pane.window_id, None)

    assert argv[:3] == [backend.tmux_bin, "-L", tmux_env.socket_name]
    child = attach(argv, terminal_env())
    try:
        wait_until(lambda: clients(tmux_env) == f"{DEFAULT_SESSION} {pane.window_id}", message="attached")
    finally:
        child.terminate(force=True)


@pytest.mark.tmux
def test_attach_from_inside_the_same_server_switches_the_client(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("target", ["sleep", "100"]))
    supervisor = tmux_env.tmux("display", "-p", "-t", f"={DEFAULT_SESSION}:^", "#{window_id}").stdout.strip()
    child = attach(backend.attach_command(DEFAULT_SESSION, None, None), terminal_env())
    try:
        wait_until(lambda: clients(tmux_env) == f"{DEFAULT_SESSION} {supervisor}", message="first attach")
        info = tmux_env.tmux(
            "display", "-p", "-t", f"={DEFAULT_SESSION}:", "#{socket_path} #{pid} #{session_id}"
        )
        socket_path, server_pid, session_id = info.stdout.split()
        assert str(backend.socket_path()) == socket_path
        inside = f"{socket_path},{server_pid},{session_id.lstrip('$')}"

        argv = backend.attach_command(DEFAULT_SESSION, pane.window_id, inside)

        assert "switch-client" in argv
        assert "attach-session" not in argv
        subprocess.run(argv, env={**terminal_env(), "TMUX": inside}, check=True, capture_output=True)
        wait_until(lambda: clients(tmux_env) == f"{DEFAULT_SESSION} {pane.window_id}", message="switched")
    finally:
        child.terminate(force=True)


@pytest.mark.tmux
def test_attach_from_inside_another_server_nests(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("target", ["sleep", "100"]))
    other = f"{backend.socket_path().parent / 'some-other-server'},12345,0"

    argv = backend.attach_command(DEFAULT_SESSION, pane.window_id, other)

    assert argv[:3] == ["env", "-u", "TMUX"]
    child = attach(argv, {**terminal_env(), "TMUX": other})
    try:
        wait_until(
            lambda: clients(tmux_env) == f"{DEFAULT_SESSION} {pane.window_id}", message="nested attach"
        )
    finally:
        child.terminate(force=True)


@pytest.mark.tmux
@pytest.mark.parametrize("value", ["a;", "a\\;", ";", "\\;", "a;;", "x\\", "plain", "#{pane_id};"])
def test_tmux_arg_survives_the_tmux_argv_parser(tmux_env: TmuxEnv, value: str) -> None:
    tmux_env.start_session()

    tmux_env.tmux("set-option", "-t", f"={DEFAULT_SESSION}:", "@probe", _tmux_arg(value))

    shown = tmux_env.tmux("show-options", "-v", "-t", f"={DEFAULT_SESSION}:", "@probe").stdout
    assert shown == value + "\n"


@pytest.mark.tmux
def test_a_trailing_semicolon_is_a_separator_to_tmux(tmux_env: TmuxEnv) -> None:
    tmux_env.start_session()

    tmux_env.tmux("set-option", "-t", f"={DEFAULT_SESSION}:", "@probe", "a;")

    shown = tmux_env.tmux("show-options", "-v", "-t", f"={DEFAULT_SESSION}:", "@probe").stdout
    assert shown == "a\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("tmux 3.3a", (3, 3)), ("tmux 3.0-rc5", (3, 0)), ("tmux next-3.5", (3, 5)), ("tmux master", None)],
)
def test_parse_version(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_version(text) == expected


def test_missing_tmux_gives_install_advice(tmp_path: Path) -> None:
    with pytest.raises(TmuxNotFoundError, match="apt install tmux"):
        TmuxBackend("agentsup-test-missing", tmux_bin=str(tmp_path / "no-tmux-here"))


def test_old_tmux_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "tmux"
    old.write_text('#!/bin/sh\n[ "$2" = "-V" ] && echo "tmux 2.9a"\n')
    old.chmod(0o755)
    with pytest.raises(BackendError, match=r"tmux 2\.9; agentsup needs tmux >= 3\.0"):
        TmuxBackend("agentsup-test-old", tmux_bin=str(old))


@pytest.mark.tmux
def test_installed_tmux_is_accepted(tmux_env: TmuxEnv) -> None:
    version = tmux_env.backend().tmux_version()
    assert version is None or version >= (3, 0)
