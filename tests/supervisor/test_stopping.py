"""What a stop finds of an agent's processes, and the order `stop --reverse` takes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import psutil
import pytest

from agentsup.plan.model import Dependency
from agentsup.sessions import Pane
from agentsup.supervisor.stopping import processes_of, stop_order, vanished
from tests.supervisor.planbuild import make_plan
from tests.tmuxenv import wait_until

DAEMONIZE = Path(__file__).resolve().parent.parent / "fakeagents" / "daemonize.py"


def test_dependents_stop_first_layer_by_layer() -> None:
    plan = make_plan({"db": [], "cache": [], "api": ["db", "cache"], "web": ["api"], "cron": ["db"]})

    assert stop_order(plan, ["db", "cache", "api", "web", "cron"]) == [
        ["cron", "web"],
        ["api"],
        ["cache", "db"],
    ]


def test_an_agent_not_stopped_still_orders_the_ones_around_it() -> None:
    plan = make_plan({"db": [], "api": ["db"], "web": ["api"]})

    assert stop_order(plan, ["db", "web"]) == [["web"], ["db"]]  # api ended already


def test_a_worker_group_dependency_waits_for_every_worker() -> None:
    plan = make_plan({"lead": [], "lead/a": [], "lead/b": [], "report": []})
    agents = dict(plan.agents)
    for worker in ("lead/a", "lead/b"):
        agents[worker] = dataclasses.replace(agents[worker], parent="lead")
    agents["report"] = dataclasses.replace(agents["report"], after=(Dependency("lead", workers=True),))
    plan = dataclasses.replace(plan, agents=MappingProxyType(agents))

    assert stop_order(plan, ["lead/a", "lead/b", "report"]) == [["report"], ["lead/a", "lead/b"]]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[psutil.Process]:
    """A daemon (setsid, double fork) started with a marker in its environment; killed afterwards."""
    pid_file = tmp_path / "daemon.pid"
    env = {**os.environ, "AGENTSUP_OUT": str(tmp_path / "out"), "AGENTSUP_ATTEMPT": "2"}
    subprocess.run([sys.executable, str(DAEMONIZE), str(pid_file)], env=env, check=True)
    proc = psutil.Process(int(wait_until(pid_file.read_text, message="the daemon's pid")))
    yield proc
    proc.kill()


def test_a_detached_daemon_is_found_by_the_environment_it_was_born_with(
    daemon: psutil.Process, tmp_path: Path
) -> None:
    mine = {"AGENTSUP_OUT": str(tmp_path / "out"), "AGENTSUP_ATTEMPT": "2"}

    assert os.getsid(daemon.pid) != os.getsid(0)
    assert daemon.pid in processes_of([], [mine])
    assert daemon.pid not in processes_of([], [{**mine, "AGENTSUP_ATTEMPT": "1"}])
    assert daemon.pid not in processes_of([], [])


def test_group_session_and_descendants_are_found(tmp_path: Path) -> None:
    # A session leader (as tmux makes a pane's process) whose child moved to a process group of its own.
    script = "sleep 600 & python3 -c 'import os,time; os.setpgid(0, 0); time.sleep(600)' & wait"
    leader = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True)
    try:
        proc = psutil.Process(leader.pid)
        kids = wait_until(lambda: len(c := proc.children()) == 2 and c, message="the leader's children")
        wait_until(lambda: len({os.getpgid(k.pid) for k in kids}) == 2, message="a group of its own")

        assert processes_of([leader.pid], []) == {leader.pid, *(k.pid for k in kids)}
    finally:
        for kid in proc.children():
            kid.kill()
        leader.kill()
        leader.wait()


CALLER = """
import json, os, sys
from agentsup.supervisor.stopping import processes_of
found = sorted(processes_of([], [{"STOP_MARK": "x"}]))
print(json.dumps({"found": found, "me": os.getpid(), "parent": os.getppid()}))
"""


def test_the_caller_and_its_ancestors_are_never_found() -> None:
    # sh (marked) runs a marked sleep and a marked caller: only the sleep is the caller's to stop.
    script = f'sleep 600 & echo "$!"; {sys.executable} -c "$0"; kill "$!"'
    env = {**os.environ, "STOP_MARK": "x"}
    out = subprocess.run(
        ["/bin/sh", "-c", script, CALLER], env=env, capture_output=True, text=True, check=True
    )
    sleep_pid, report = out.stdout.splitlines()
    seen = json.loads(report)

    assert int(sleep_pid) in seen["found"]
    assert seen["me"] not in seen["found"]
    assert seen["parent"] not in seen["found"]  # the marked sh that started it


def test_a_gone_pane_whose_pid_a_live_process_reused_is_not_a_group_to_signal() -> None:
    """A killed tmux server takes every pane with it; the pids of their wrappers are free at once, and the
    next windows opened reuse them as the ids of their own sessions and groups. Only the panes whose pid
    no process holds are left to signal by group (their leftovers keep the group id alive)."""
    reused = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for the newcomer
    ended = subprocess.Popen(["true"])
    ended.wait()
    try:
        panes = [
            Pane("@1", "%1", reused.pid, True, None, "run", "a", 1),
            Pane("@2", "%2", ended.pid, True, None, "run", "b", 1),
        ]
        assert [p.agent for p in vanished(panes)] == ["b"]
    finally:
        reused.kill()
        reused.wait()
