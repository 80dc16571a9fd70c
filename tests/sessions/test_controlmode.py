"""The control-mode client against a real tmux server: quoting, reply matching, failures, its end."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsup.sessions import BackendError, LaunchSpec, TmuxBackend
from agentsup.sessions.controlmode import LOST, ControlClient, ControlClientError, Reply, command_line, quote
from agentsup.sessions.tmux import SPAWN_IN_FLIGHT
from tests.sessions.test_tmux_backend import HOSTILE, exit_record
from tests.tmuxenv import DEFAULT_SESSION, TmuxEnv, isolated_tmux, wait_until

pytestmark = pytest.mark.tmux


@pytest.fixture
def tmux_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxEnv]:
    """One run per test (the package's fixture runs the backend's tests both ways; these test the way)."""
    with isolated_tmux(tmp_path, monkeypatch) as env:
        yield env


NASTY = [
    HOSTILE.replace("\n", " "),
    "plain",
    "a'b",
    'a"b',
    "$HOME",
    "~/x",
    "#{pane_id}",
    "#x",
    "a;",
    ";",
    "a ; b",
    "{x}",
    "\\n\\t",
    "%if 1",
    "é ü",
    "a\\",
    "-t",
    "'",
    "''",
    "x'\"'\"'y",
]


def client_of(tmux_env: TmuxEnv) -> ControlClient:
    tmux_env.start_session()
    return ControlClient("tmux", tmux_env.socket_name, DEFAULT_SESSION, os.environ)


def control_clients(tmux_env: TmuxEnv) -> list[str]:
    out = tmux_env.tmux("list-clients", "-F", "#{client_control_mode}", check=False).stdout.split()
    return [c for c in out if c == "1"]


def test_any_value_reaches_tmux_as_one_literal_word(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    try:
        for i, value in enumerate(NASTY):
            assert client.run([["set-option", "-g", f"@nasty{i}", value]]).returncode == 0, value
            shown = client.run([["show-options", "-gv", f"@nasty{i}"]])
            assert shown.stdout == [value]
            # And as tmux's own client sees it.
            assert tmux_env.tmux("show-options", "-gv", f"@nasty{i}").stdout == value + "\n"
    finally:
        client.close()


def test_quote_leaves_plain_words_alone_and_quotes_the_rest() -> None:
    assert quote("new-window") == "new-window"
    assert quote("=run1:3") == "=run1:3"
    assert quote("%12") == "'%12'"  # a line starting with % would be a directive
    assert quote("a b") == "'a b'"
    assert quote("") == "''"
    assert command_line([["a", "b c"], ["d"]]) == "a 'b c' ; d"


def test_a_failing_command_ends_its_list_and_the_next_line_gets_its_own_reply(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    try:
        failed, after = client.run_many(
            [
                [
                    ["display-message", "-p", "one"],
                    ["kill-window", "-t", "@999"],
                    ["set", "-g", "@ran", "yes"],
                ],
                [["display-message", "-p", "two"]],
            ]
        )
        assert failed.returncode == 1
        assert failed.stdout == ["one"]
        assert any("@999" in line for line in failed.stderr)
        assert after.returncode == 0
        assert after.stdout == ["two"]
        # The command after the failing one never ran.
        assert tmux_env.tmux("show-options", "-gv", "@ran", check=False).stdout.strip() == ""
    finally:
        client.close()


def test_a_line_that_does_not_parse_gets_one_error_and_nothing_runs(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    try:
        bad, good = client.run_many(
            [[["no-such-command", "x"], ["set", "-g", "@ran", "yes"]], [["list-sessions"]]]
        )
        assert bad.returncode == 1
        assert any("no-such-command" in line for line in bad.stderr)
        assert good.returncode == 0
        assert any(line.startswith(f"{DEFAULT_SESSION}:") for line in good.stdout)
        assert tmux_env.tmux("show-options", "-gv", "@ran", check=False).stdout.strip() == ""
    finally:
        client.close()


def test_replies_reach_the_threads_that_asked(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    wrong: list[tuple[int, list[str]]] = []

    def ask(i: int) -> None:
        for j in range(20):
            reply = client.run([["display-message", "-p", f"{i}-{j}"]])
            if reply.stdout != [f"{i}-{j}"]:
                wrong.append((i, reply.stdout))

    try:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []
    finally:
        client.close()


def test_when_the_session_goes_callers_are_told_and_the_client_is_over(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    try:
        assert client.alive
        # The kill's own reply may come before the client is thrown out; either way it is over afterwards.
        client.run([["kill-session", "-t", f"={DEFAULT_SESSION}"]])
        wait_until(lambda: not client.alive, message="the client to end with its session")
        with pytest.raises(ControlClientError):
            client.run([["display-message", "-p", "x"]])
    finally:
        client.close()


def test_a_line_unanswered_when_the_server_dies_gets_lost(tmux_env: TmuxEnv) -> None:
    client = client_of(tmux_env)
    server = int(tmux_env.tmux("display-message", "-p", "#{pid}").stdout)
    os.kill(server, signal.SIGSTOP)  # it reads nothing more, so the line below stays unanswered
    replies: list[Reply] = []
    asker = threading.Thread(target=lambda: replies.append(client.run([["display-message", "-p", "x"]])))
    asker.start()
    try:
        wait_until(lambda: len(client._waiting) == 1, message="the line to be written")
        os.kill(server, signal.SIGKILL)
        asker.join(timeout=10)
        assert not asker.is_alive()
        assert replies == [Reply(1, [], [LOST])]
        wait_until(lambda: not client.alive, message="the client to end")
        with pytest.raises(ControlClientError):
            client.run([["display-message", "-p", "x"]])
    finally:
        client.close()


def test_a_client_from_inside_tmux_is_not_taken_for_a_nested_attach(tmux_env: TmuxEnv) -> None:
    tmux_env.start_session()
    inside = {**os.environ, "TMUX": "/tmp/tmux-0/default,1,0", "TMUX_PANE": "%0"}
    client = ControlClient("tmux", tmux_env.socket_name, DEFAULT_SESSION, inside)
    try:
        assert client.run([["display-message", "-p", "#{session_name}"]]).stdout == [DEFAULT_SESSION]
    finally:
        client.close()


def test_no_session_no_client(tmux_env: TmuxEnv) -> None:
    tmux_env.start_session()
    with pytest.raises(ControlClientError):
        ControlClient("tmux", tmux_env.socket_name, "nosuchsession", os.environ)


# ---- the backend through its client ------------------------------------------------------------------


def test_a_connected_backend_works_through_one_control_client(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    launch = tmux_env.launch("agent", ["sh", "-c", "echo hello"])
    pane = backend.spawn(DEFAULT_SESSION, launch)
    assert exit_record(launch).code == 0
    assert control_clients(tmux_env) == ["1"]
    assert any(p.pane_id == pane.pane_id for p in backend.list_panes(DEFAULT_SESSION))
    backend.close()
    wait_until(lambda: control_clients(tmux_env) == [], message="the client to leave")
    # It goes on without one.
    assert any(p.pane_id == pane.pane_id for p in backend.list_panes(DEFAULT_SESSION))


def test_the_backend_comes_back_after_its_client_is_thrown_out(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    backend.list_panes(DEFAULT_SESSION)
    assert control_clients(tmux_env) == ["1"]
    tmux_env.tmux("detach-client", "-s", f"={DEFAULT_SESSION}")  # what `tmux detach -s` by a user does
    wait_until(lambda: control_clients(tmux_env) == [], message="the client to be detached")
    launch = tmux_env.launch("after", ["true"])
    backend.spawn(DEFAULT_SESSION, launch)
    assert exit_record(launch).code == 0
    backend.close()


def test_a_value_with_a_line_break_goes_through_a_tmux_process(tmux_env: TmuxEnv, tmp_path: Path) -> None:
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    odd = tmp_path / "two\nlines"
    odd.mkdir()
    launch = dataclasses.replace(
        tmux_env.launch("odd", ["true"]), script=odd / "run.sh", exit_file=odd / "exit.json"
    )
    backend.spawn(DEFAULT_SESSION, launch)
    assert exit_record(launch).code == 0
    backend.close()


def test_spawn_many_gives_each_launch_its_pane_or_its_error(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    good = [tmux_env.launch(f"w{i}", ["sh", "-c", f"exit {i}"]) for i in range(5)]
    bad = dataclasses.replace(tmux_env.launch("bad", ["true"]), run="has\ttab")
    results = backend.spawn_many(DEFAULT_SESSION, [*good[:2], bad, *good[2:]])
    assert isinstance(results[2], BackendError)
    panes = [r for i, r in enumerate(results) if i != 2]
    assert [p.agent for p in panes if not isinstance(p, BackendError)] == [f"w{i}" for i in range(5)]
    assert len({p.pane_id for p in panes if not isinstance(p, BackendError)}) == 5
    for i, launch in enumerate(good):
        assert exit_record(launch).code == i
    backend.close()


def test_before_tmux_3_2_connect_keeps_a_process_per_command(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    backend.features = dataclasses.replace(backend.features, control_flags=False)
    backend.connect(DEFAULT_SESSION)
    backend.list_panes(DEFAULT_SESSION)
    assert control_clients(tmux_env) == []


def test_connect_refuses_a_bad_session_name(tmux_env: TmuxEnv) -> None:
    with pytest.raises(BackendError):
        TmuxBackend(tmux_env.socket_name).connect("bad:name")


def test_a_new_client_answers_its_first_command(tmux_env: TmuxEnv) -> None:
    """A line tmux reads before the attach is done runs without a client and fails ("no current client");
    it happened to about one start in ten before the client waited for its attach."""
    tmux_env.start_session()
    for _ in range(60):
        client = ControlClient("tmux", tmux_env.socket_name, DEFAULT_SESSION, os.environ)
        try:
            assert client.run([["display-message", "-p", "#{client_control_mode}"]]).stdout == ["1"]
        finally:
            client.close()


def test_spawn_many_reports_every_launch_once(tmux_env: TmuxEnv) -> None:
    """Each result as soon as it is known: a launch refused before tmux is asked comes before the windows
    asked for earlier; the returned list is in the order taken."""
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    launches = [tmux_env.launch(f"r{i}", ["true"]) for i in range(6)]
    launches[3] = dataclasses.replace(launches[3], agent="bad\tname")
    seen: list[tuple[str, bool]] = []

    results = backend.spawn_many(
        DEFAULT_SESSION,
        iter(launches),
        on_result=lambda ls, r: seen.append((ls.agent, isinstance(r, BackendError))),
    )

    assert sorted(seen) == sorted((ls.agent, ls.agent == "bad\tname") for ls in launches)
    assert [isinstance(r, BackendError) for r in results] == [ls.agent == "bad\tname" for ls in launches]
    assert [r.agent for r in results if not isinstance(r, BackendError)] == ["r0", "r1", "r2", "r4", "r5"]
    backend.close()


def test_spawn_many_keeps_few_windows_asked_for_at_a_time(tmux_env: TmuxEnv) -> None:
    """tmux runs every command a client has queued before it reads a pane again: windows asked for all at
    once kept the panes already running from being read until the last was open. So at most
    SPAWN_IN_FLIGHT windows are asked for at a time, and the next launch is taken (prepared) meanwhile."""
    backend = tmux_env.start_session()
    backend.connect(DEFAULT_SESSION)
    launches = [tmux_env.launch(f"o{i}", ["true"]) for i in range(8)]
    answered: list[str] = []
    answered_when_taken: list[list[str]] = []

    def taken() -> Iterator[LaunchSpec]:
        for launch in launches:
            answered_when_taken.append(list(answered))
            yield launch

    backend.spawn_many(DEFAULT_SESSION, taken(), on_result=lambda ls, _: answered.append(ls.agent))

    # Launch i is taken while the windows before it open, SPAWN_IN_FLIGHT of them at most: windows
    # 0 .. i-SPAWN_IN_FLIGHT-1 are open by then, and window i-1 was asked for after the last answer was read.
    for i, seen in enumerate(answered_when_taken):
        assert seen == [f"o{k}" for k in range(len(seen))]
        assert max(0, i - SPAWN_IN_FLIGHT) <= len(seen) <= max(0, i - 1), (i, seen)
    assert answered == [f"o{i}" for i in range(8)]
    backend.close()
