"""TmuxBackend against a real tmux server: spawning, exits, output, tags, listing, input, stopping."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from agentsup.sessions import BackendError, ExitRecord, LaunchSpec, Pane, TmuxBackend, read_exit_file
from agentsup.sessions.tmux import _wait_all_gone
from agentsup.sessions.wrapper import exit_tmp_path
from agentsup.supervisor.reading import writers_gone
from tests.tmuxenv import DEFAULT_SESSION, TmuxEnv, wait_until

pytestmark = pytest.mark.tmux

HOSTILE = "a \"dq\" 'sq' $(touch pwned) `touch pwned` ; touch pwned;\nsecond line #{pane_id} \\ $HOME end;"

# Reads stdin lines (through the pane's tty) into received.txt until EOF.
LINE_READER = ["sh", "-c", 'while IFS= read -r line; do printf "%s\\n" "$line" >> received.txt; done']


def exit_record(launch: LaunchSpec) -> ExitRecord:
    return wait_until(lambda: read_exit_file(launch.exit_file), message=f"{launch.exit_file} to appear")


def pane_of(backend: TmuxBackend, pane: Pane) -> Pane | None:
    return next((p for p in backend.list_panes(DEFAULT_SESSION) if p.pane_id == pane.pane_id), None)


def alive(pid: int) -> bool:
    """Running and not a zombie (orphans may never be reaped in a container without an init)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def names(procs: list[psutil.Process]) -> set[str]:
    """The names of those still alive (the wrapper's short-lived helpers may be gone already)."""
    out = set()
    for proc in procs:
        try:
            out.add(proc.name())
        except psutil.NoSuchProcess:
            continue
    return out


def test_exit_file_records_code_and_times(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    before = time.time()
    launch = tmux_env.launch("worker", ["sh", "-c", "sleep 0.2; exit 7"])
    backend.spawn(DEFAULT_SESSION, launch)

    record = exit_record(launch)

    assert record.code == 7
    assert record.signal is None
    assert before - 1 <= record.started_at <= record.ended_at <= time.time() + 1
    assert record.ended_at - record.started_at >= 0.15
    assert not exit_tmp_path(launch).exists()
    assert launch.script.stat().st_mode & 0o777 == 0o700


def test_signal_recorded_when_agent_killed(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    launch = tmux_env.launch("sleeper", ["sleep", "1000"])
    pane = backend.spawn(DEFAULT_SESSION, launch)
    wait_until(lambda: "sleep" in names(group_members(pane.pid)), message="agent running")

    started = time.monotonic()
    backend.stop(pane, grace=5.0)

    assert time.monotonic() - started < 4.0, "stop waited out the grace period for an exited agent"
    record = exit_record(launch)
    assert (record.code, record.signal) == (143, 15)
    dead = wait_until(
        lambda: (p := pane_of(backend, pane)) is not None and p.dead_status is not None and p,
        message="tmux to report the dead pane's status",
    )
    assert dead.dead
    assert dead.dead_status == 143


def test_first_bytes_captured_for_windows_that_exit_at_once(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    launches = [tmux_env.launch(f"fast{i}", ["printf", f"first-bytes-{i}\\n"]) for i in range(50)]
    for launch in launches:
        backend.spawn(DEFAULT_SESSION, launch)

    for i, launch in enumerate(launches):
        assert exit_record(launch).code == 0
        text = wait_until(launch.output_log.read_text, message=f"output of fast{i}")
        assert text.startswith(f"first-bytes-{i}\n"), text


def test_an_output_pipe_is_one_cat_process(tmux_env: TmuxEnv) -> None:
    """pipe-pane's shell execs its cat: one process per agent for the output, not two."""
    backend = tmux_env.start_session()
    launch = tmux_env.launch("piped", ["sleep", "100"])
    backend.spawn(DEFAULT_SESSION, launch)
    server = psutil.Process(int(tmux_env.tmux("display-message", "-p", "#{pid}").stdout))

    def pipes() -> list[str]:
        """The server's children that write the log or were told to (``sh -c "cat >> LOG"``)."""
        found = []
        for child in server.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                files = [f.path for f in child.open_files()]
                if str(launch.output_log) in files or str(launch.output_log) in " ".join(child.cmdline()):
                    found.append(child.name())
        return found

    assert wait_until(pipes, message="the pipe process") == ["cat"]


def test_remain_on_exit_on_agent_window_only(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("quick", ["true"]))

    assert tmux_env.tmux("show-options", "-wv", "-t", pane.window_id, "remain-on-exit").stdout == "on\n"
    assert tmux_env.tmux("show-options", "-gwv", "remain-on-exit").stdout == "off\n"
    supervisor = tmux_env.tmux("show-options", "-wv", "-t", f"={DEFAULT_SESSION}:0", "remain-on-exit")
    assert supervisor.stdout == ""
    wait_until(lambda: (p := pane_of(backend, pane)) is not None and p.dead, message="pane kept dead")


def test_windows_are_tagged_and_named(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    agent = "rev#{pane_id};"
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch(agent, ["sleep", "100"], attempt=3))

    fmt = "#{window_name}|#{@agentsup_run}|#{@agentsup_agent}|#{@agentsup_attempt}"
    shown = tmux_env.tmux("display-message", "-p", "-t", pane.window_id, fmt).stdout
    assert shown == f"{agent}|{DEFAULT_SESSION}|{agent}|3\n"
    assert (pane.run, pane.agent, pane.attempt) == (DEFAULT_SESSION, agent, 3)
    assert pane.window_id.startswith("@")
    assert pane.pane_id.startswith("%")


def test_list_panes_reports_dead_and_live_agents_not_supervisor(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    failing = backend.spawn(DEFAULT_SESSION, tmux_env.launch("failing", ["sh", "-c", "exit 3"]))
    live = backend.spawn(DEFAULT_SESSION, tmux_env.launch("live", ["sleep", "100"], attempt=2))
    tmux_env.tmux("new-window", "-d", "-t", f"={DEFAULT_SESSION}:", "sleep", "100")  # untagged

    def listed() -> list[Pane] | None:
        panes = backend.list_panes(DEFAULT_SESSION)
        return panes if any(p.dead_status is not None for p in panes) else None

    panes = {p.agent: p for p in wait_until(listed, message="failing pane dead")}
    assert set(panes) == {"failing", "live"}
    assert (panes["failing"].dead, panes["failing"].dead_status) == (True, 3)
    assert (panes["live"].dead, panes["live"].dead_status, panes["live"].attempt) == (False, None, 2)
    assert panes["live"].pid == live.pid
    assert panes["failing"].window_id == failing.window_id


def test_list_panes_without_session_or_server(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.backend()
    assert backend.list_panes(DEFAULT_SESSION) == []
    tmux_env.start_session()
    assert backend.list_panes("other") == []
    assert backend.list_panes(DEFAULT_SESSION) == []


def test_stop_kills_group_including_child_that_traps_term(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    stubborn = 'trap "echo ignoring-term" TERM; echo ready; while :; do sleep 0.05; done'
    launch = tmux_env.launch("stubborn", ["sh", "-c", stubborn])
    pane = backend.spawn(DEFAULT_SESSION, launch)
    wait_until(lambda: "ready" in backend.capture(pane.pane_id), message="agent ready")
    members = group_members(pane.pid)
    assert len(members) >= 2

    started = time.monotonic()
    backend.stop(pane, grace=0.5)

    assert time.monotonic() - started >= 0.5
    wait_until(lambda: not group_members(pane.pid), timeout=5.0, message="process group gone")
    assert not any(alive(p.pid) for p in members)
    backend.stop(pane, grace=0.5)  # already gone: no error


def test_send_text_single_line_arrives_literally(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("reader", LINE_READER))
    received = tmux_env.root / "received.txt"
    line = "echo $(touch pwned); 'q' \"dq\" `x` -l Enter ;"

    backend.send_text(pane.pane_id, line)
    backend.send_text(pane.pane_id, "tail;")
    backend.send_text(pane.pane_id, "Space")

    wait_until(lambda: received.exists() and received.read_text().count("\n") == 3, message="three lines")
    assert received.read_text() == f"{line}\ntail;\nSpace\n"
    assert not (tmux_env.root / "pwned").exists()


def test_send_text_multi_line_is_pasted(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("reader", LINE_READER))
    received = tmux_env.root / "received.txt"
    text = "first line;\nsecond $(touch pwned) 'x'\nthird #{pane_id}"

    backend.send_text(pane.pane_id, text)

    wait_until(lambda: received.exists() and received.read_text().count("\n") == 3, message="three lines")
    assert received.read_text() == text + "\n"
    buffers = tmux_env.tmux("list-buffers", "-F", "#{buffer_name}", check=False).stdout
    assert "agentsup" not in buffers


def test_send_text_without_enter(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("reader", LINE_READER))
    received = tmux_env.root / "received.txt"

    backend.send_text(pane.pane_id, "partial ", enter=False)
    backend.send_text(pane.pane_id, "rest")

    wait_until(lambda: received.exists() and received.read_text().endswith("\n"), message="line")
    assert received.read_text() == "partial rest\n"


def test_hostile_argv_env_and_cwd_arrive_literally(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    cwd = tmux_env.root / "dir with 'quote' $(touch pwned) `touch pwned` ; #{x};"
    cwd.mkdir()
    out = tmux_env.root / "seen.json"
    dump = (
        "import json, os, sys; "
        "json.dump([sys.argv[2:], os.environ['HOSTILE'], os.getcwd()], open(sys.argv[1], 'w'))"
    )
    argv = [sys.executable, "-c", dump, str(out), HOSTILE, "$(touch pwned)", "x;"]
    launch = tmux_env.launch("hostile", argv, env={"HOSTILE": HOSTILE, "PLAIN": "`touch pwned`;"}, cwd=cwd)

    backend.spawn(DEFAULT_SESSION, launch)

    assert exit_record(launch).code == 0
    assert json.loads(out.read_text()) == [[HOSTILE, "$(touch pwned)", "x;"], HOSTILE, str(cwd)]
    assert not list(tmux_env.root.rglob("pwned"))


def test_hostile_file_paths_are_quoted_for_tmux_and_shell(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    odd = tmux_env.root / "run #{pane_id} $(touch pwned) 'q' ;"
    launch = LaunchSpec(
        run=DEFAULT_SESSION,
        agent="paths",
        attempt=1,
        argv=("echo", "paths-ok"),
        cwd=tmux_env.root,
        env={},
        script=odd / "run;",
        exit_file=odd / "exit #{x}.json",
        output_log=odd / "out ;.log",
    )

    backend.spawn(DEFAULT_SESSION, launch)

    assert exit_record(launch).code == 0
    wait_until(
        lambda: launch.output_log.exists() and "paths-ok" in launch.output_log.read_text(), message="log"
    )
    assert sorted(p.name for p in odd.iterdir()) == sorted(["run;", "exit #{x}.json", "out ;.log"])
    assert not list(tmux_env.root.rglob("pwned"))


def test_nul_in_argv_is_refused(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    with pytest.raises(BackendError, match="NUL"):
        backend.spawn(DEFAULT_SESSION, tmux_env.launch("nul", ["echo", "a\0b"]))
    assert backend.list_panes(DEFAULT_SESSION) == []


def test_command_not_found_exits_127_with_message(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    launch = tmux_env.launch("missing", ["agentsup-no-such-command-xyz", "--flag"])
    backend.spawn(DEFAULT_SESSION, launch)

    assert exit_record(launch).code == 127
    wait_until(lambda: "not found" in launch.output_log.read_text(), message="'not found' in output.log")


def test_bad_cwd_exits_126_with_message(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    missing = tmux_env.root / "no such dir"
    launch = tmux_env.launch("lost", ["touch", "should-not-exist"], cwd=missing)
    backend.spawn(DEFAULT_SESSION, launch)

    assert exit_record(launch).code == 126
    expected = f"agentsup: cannot enter working directory {missing}"
    wait_until(lambda: expected in launch.output_log.read_text(), message="cwd message in output.log")
    assert not list(tmux_env.root.rglob("should-not-exist"))


def test_capture_returns_screen(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    script = "for i in 1 2 3; do echo capture-line-$i; done; sleep 100"
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("screen", ["sh", "-c", script]))

    screen = wait_until(
        lambda: (text := backend.capture(pane.pane_id)) and "capture-line-3" in text and text,
        message="screen content",
    )
    assert screen.splitlines()[:3] == ["capture-line-1", "capture-line-2", "capture-line-3"]


def test_concurrent_spawns_from_threads(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    launches = [tmux_env.launch(f"par{i}", ["sleep", "100"]) for i in range(20)]
    barrier = threading.Barrier(len(launches))

    def spawn(launch: LaunchSpec) -> Pane:
        barrier.wait()
        return backend.spawn(DEFAULT_SESSION, launch)

    with ThreadPoolExecutor(max_workers=len(launches)) as pool:
        panes = list(pool.map(spawn, launches))

    assert len({p.window_id for p in panes}) == 20
    listed = {p.agent: p.window_id for p in backend.list_panes(DEFAULT_SESSION)}
    assert listed == {p.agent: p.window_id for p in panes}


def test_index_taken_behind_the_backends_back_is_retried(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    first = backend.spawn(DEFAULT_SESSION, tmux_env.launch("first", ["sleep", "100"]))
    index = int(tmux_env.tmux("display", "-p", "-t", first.window_id, "#{window_index}").stdout)
    tmux_env.tmux("new-window", "-d", "-t", f"={DEFAULT_SESSION}:{index + 1}", "sleep", "100")

    second = backend.spawn(DEFAULT_SESSION, tmux_env.launch("second", ["sleep", "100"]))

    assert {p.agent for p in backend.list_panes(DEFAULT_SESSION)} == {"first", "second"}
    assert second.window_id != first.window_id


def test_user_config_is_tolerated(tmux_env: TmuxEnv) -> None:
    (tmux_env.home / ".tmux.conf").write_text(
        "set -g base-index 5\n"
        "set -g remain-on-exit on\n"
        "set -g renumber-windows on\n"
        "set -g destroy-unattached on\n"
        "set -g default-command 'echo wrong-shell'\n"
    )
    backend = tmux_env.start_session()
    supervisor = tmux_env.tmux("list-windows", "-t", f"={DEFAULT_SESSION}", "-F", "#{window_index}")
    assert supervisor.stdout == "5\n"
    quick = tmux_env.launch("quick", ["sh", "-c", "echo hello-config; exit 4"])
    slow = tmux_env.launch("slow", ["sleep", "100"])
    backend.spawn(DEFAULT_SESSION, quick)
    live = backend.spawn(DEFAULT_SESSION, slow)

    assert exit_record(quick).code == 4
    wait_until(lambda: "hello-config" in quick.output_log.read_text(), message="output")

    def listed() -> dict[str | None, Pane]:
        return {p.agent: p for p in backend.list_panes(DEFAULT_SESSION)}

    # The wrapper writes its exit record before it exits; tmux marks the pane dead after that.
    wait_until(lambda: listed()["quick"].dead_status is not None, message="quick's pane dead")
    panes = listed()
    assert set(panes) == {"quick", "slow"}
    assert panes["quick"].dead_status == 4
    backend.kill_window(panes["quick"].window_id)
    third = backend.spawn(DEFAULT_SESSION, tmux_env.launch("third", ["sleep", "100"]))
    assert {p.agent for p in backend.list_panes(DEFAULT_SESSION)} == {"slow", "third"}
    assert third.window_id != live.window_id


def test_kill_window_and_session_tolerate_absence(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.backend()
    backend.kill_session(DEFAULT_SESSION)  # no server at all
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("victim", ["sleep", "100"]))

    backend.kill_window(pane.window_id)
    backend.kill_window(pane.window_id)

    assert backend.list_panes(DEFAULT_SESSION) == []
    assert backend.has_session(DEFAULT_SESSION)
    backend.kill_session(DEFAULT_SESSION)
    assert not backend.has_session(DEFAULT_SESSION)
    backend.kill_session(DEFAULT_SESSION)


def test_close_dead_pane_closes_only_a_dead_pane_and_its_pipe_ends(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    live_launch = tmux_env.launch("live", ["sleep", "100"])
    dead_launch = tmux_env.launch("dead", ["sh", "-c", "echo bye"])
    live = backend.spawn(DEFAULT_SESSION, live_launch)
    dead = backend.spawn(DEFAULT_SESSION, dead_launch)
    wait_until(lambda: (p := pane_of(backend, dead)) is not None and p.dead, message="dead pane")
    assert writers_gone(dead_launch.output_log) is False  # the pipe's cat lives on with the dead pane

    assert backend.close_dead_pane(live.pane_id) is False
    assert backend.close_dead_pane(dead.pane_id) is True

    wait_until(lambda: writers_gone(dead_launch.output_log), message="the dead pane's pipe to end")
    assert b"bye" in dead_launch.output_log.read_bytes()
    assert [p.agent for p in backend.list_panes(DEFAULT_SESSION)] == ["live"]
    assert backend.close_dead_pane(dead.pane_id) is True  # gone: nothing more comes either
    assert writers_gone(live_launch.output_log) is False


@pytest.mark.parametrize("how", ["kill_window", "kill_session"])
def test_killing_the_window_kills_the_agent(tmux_env: TmuxEnv, how: str) -> None:
    backend = tmux_env.start_session()
    pane = backend.spawn(DEFAULT_SESSION, tmux_env.launch("victim", ["sleep", "100"]))
    members = wait_until(
        lambda: (m := group_members(pane.pid)) and "sleep" in names(m) and m,
        message="agent running",
    )

    if how == "kill_window":
        backend.kill_window(pane.window_id)
    else:
        backend.kill_session(DEFAULT_SESSION)

    wait_until(lambda: not any(alive(p.pid) for p in members), message="wrapper and agent gone")


def test_create_session_runs_supervisor_with_env_and_refuses_duplicates(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.backend()
    cwd = tmux_env.root / "cwd #{session_name};"
    cwd.mkdir()
    dump = (
        "import json, os, sys, time; json.dump([sys.argv[1:], os.environ['SUP'], os.getcwd()], "
        "open('s.json', 'w')); time.sleep(100)"
    )
    env = {"SUP": "value;", "OTHER": HOSTILE}

    backend.create_session(DEFAULT_SESSION, [sys.executable, "-c", dump, "last;", HOSTILE], cwd, env)

    written = wait_until(lambda: (cwd / "s.json").exists() and (cwd / "s.json").read_text(), message="dump")
    assert json.loads(written) == [["last;", HOSTILE], "value;", str(cwd)]
    names = tmux_env.tmux("list-windows", "-t", f"={DEFAULT_SESSION}", "-F", "#{window_name}").stdout
    assert names == "supervisor\n"
    assert backend.has_session(DEFAULT_SESSION)
    with pytest.raises(BackendError, match="duplicate session"):
        backend.create_session(DEFAULT_SESSION, ["sleep", "1"], tmux_env.root, {})


def test_create_session_with_single_argument_execs_it(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.backend()
    tool = tmux_env.root / "tool; with space"
    tool.write_text("#!/bin/sh\necho ran > ran.txt\nsleep 100\n")
    tool.chmod(0o755)

    backend.create_session(DEFAULT_SESSION, [str(tool)], tmux_env.root, {})

    wait_until((tmux_env.root / "ran.txt").exists, message="single-argument supervisor ran")


def test_invalid_names_and_ids_are_refused(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.backend()
    with pytest.raises(BackendError, match="session name"):
        backend.has_session("a:b")
    with pytest.raises(BackendError, match="pane id"):
        backend.capture("1; kill-server")
    with pytest.raises(BackendError, match="window id"):
        backend.kill_window("@1;")
    backend_session = tmux_env.start_session()
    with pytest.raises(BackendError, match="agent"):
        backend_session.spawn(DEFAULT_SESSION, tmux_env.launch("tab\there", ["true"]))


def test_spawn_into_missing_session_fails(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    with pytest.raises(BackendError, match="nosuch"):
        backend.spawn("nosuch", tmux_env.launch("orphan", ["true"]))


def test_stop_of_exited_pane_is_quiet(tmux_env: TmuxEnv) -> None:
    backend = tmux_env.start_session()
    launch = tmux_env.launch("done", ["true"])
    pane = backend.spawn(DEFAULT_SESSION, launch)
    exit_record(launch)
    wait_until(lambda: (p := pane_of(backend, pane)) is not None and p.dead, message="dead pane")
    backend.stop(pane, grace=0.1)


def test_a_stop_waits_only_for_what_it_has_not_yet_seen_gone() -> None:
    """What a stop still has to SIGKILL after its grace: the groups and processes that never went. An id
    seen gone is free, and may name a newcomer by then (pid_max wraps within seconds here)."""
    live = subprocess.Popen(["sleep", "60"], start_new_session=True)
    ended = subprocess.Popen(["true"], start_new_session=True)
    ended.wait()
    try:
        assert _wait_all_gone({live.pid, ended.pid}, {ended.pid}, 0.05, None) == ({live.pid}, set())
        assert _wait_all_gone({ended.pid}, {ended.pid}, 5.0, None) == (set(), set())
    finally:
        live.kill()
        live.wait()
