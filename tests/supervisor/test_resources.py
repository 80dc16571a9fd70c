"""The resource sampler, on real process trees: each root is started in a session of its own, as tmux does.

Every test runs against both ways of reading the process table: /proc (Linux) and psutil (the fallback).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agentsup.supervisor.resources import PROCFS, ResourceSampler, Usage, available_memory
from tests.tmuxenv import wait_until

Spawn = Callable[[str], subprocess.Popen[str]]
Sampler = Callable[[], ResourceSampler]
PY = sys.executable
NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


@pytest.fixture(params=[True, False], ids=["procfs", "psutil"])
def new_sampler(request: pytest.FixtureRequest) -> Sampler:
    """Makes samplers that read the table from /proc, or through psutil."""
    procfs: bool = request.param
    if procfs and not PROCFS:
        pytest.skip("no /proc/PID/stat here")
    return lambda: ResourceSampler(procfs=procfs)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``sh -c SCRIPT`` as a session and process-group leader; kill the whole group afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["sh", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(proc.pid).children(recursive=True):  # those that left the group
                child.kill()
        # Non-interactive sh keeps its background jobs, orphans included, in its own process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def read_ready(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """Wait, bounded, for the line ``ready`` on the process's stdout."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    assert readable, f"no output from pid {proc.pid} within {timeout}s"
    assert proc.stdout.readline() == "ready\n"


def usage_of(sampler: ResourceSampler, pid: int) -> Usage:
    return sampler.sample({"a": pid})["a"]


def test_a_busy_child_shows_cpu_from_the_second_sample_on(spawn: Spawn, new_sampler: Sampler) -> None:
    root = spawn(f'"{PY}" -c "while True: pass" & echo ready; wait')
    read_ready(root)
    wait_until(lambda: usage_of(new_sampler(), root.pid).processes == 2, message="the busy child")

    sampler = new_sampler()
    first = usage_of(sampler, root.pid)
    assert first.cpu_percent == 0.0  # no baseline yet, although the child is spinning
    assert first.processes == 2
    busy = wait_until(
        lambda: (u := usage_of(sampler, root.pid)).cpu_percent > 50 and u,
        interval=0.2,
        message="cpu_percent > 50",
    )
    assert busy.processes == 2
    # Over one window, the figure is the CPU time psutil sees the tree use in it: 100 % per core's worth.
    procs = [psutil.Process(root.pid), *psutil.Process(root.pid).children()]
    sampler.sample({"a": root.pid})
    before, began = sum(sum(p.cpu_times()[:2]) for p in procs), time.monotonic()
    time.sleep(1.0)  # the measured window, not a wait for a condition
    used, took = sum(sum(p.cpu_times()[:2]) for p in procs) - before, time.monotonic() - began
    assert usage_of(sampler, root.pid).cpu_percent == pytest.approx(used / took * 100, abs=15)


def test_rss_is_summed_over_the_tree(spawn: Spawn, new_sampler: Sampler) -> None:
    root = spawn(
        f'"{PY}" -c "b = bytearray(100_000_000); print(\'ready\', flush=True); import time; time.sleep(60)" &'
        " wait"
    )
    read_ready(root)
    usage = usage_of(new_sampler(), root.pid)
    assert usage.rss >= 100_000_000
    assert usage.processes == 2
    # The shell's own pages are in the sum too.
    assert usage.rss > psutil.Process(root.pid).children()[0].memory_info().rss


def test_processes_counts_the_root_and_its_children_per_agent(spawn: Spawn, new_sampler: Sampler) -> None:
    # The second child leaves the session but stays a child, so only the ppid links find it.
    leaver = "import os, time; os.setsid(); print('ready', flush=True); time.sleep(60)"
    parent = spawn(f'sleep 60 & "{PY}" -c "{leaver}" & wait')
    lone = spawn("echo ready; exec sleep 60")
    read_ready(parent)
    read_ready(lone)
    usage = new_sampler().sample({"parent": parent.pid, "lone": lone.pid})
    assert set(usage) == {"parent", "lone"}
    assert usage["parent"].processes == 3
    assert usage["lone"].processes == 1


def test_a_grandchild_reparented_away_but_in_the_session_is_counted(
    spawn: Spawn, new_sampler: Sampler
) -> None:
    # The subshell forks sleep and exits, so sleep's parent becomes init (or a subreaper), not the root.
    root = spawn("(exec sleep 60 &); echo ready; exec sleep 61")
    read_ready(root)
    [orphan] = [p for p in psutil.process_iter(["ppid"]) if p.pid != root.pid and _sid(p.pid) == root.pid]
    assert orphan.info["ppid"] != root.pid
    assert usage_of(new_sampler(), root.pid).processes == 2


def test_a_command_name_with_spaces_and_parentheses_is_read_past(spawn: Spawn, new_sampler: Sampler) -> None:
    # /proc/PID/stat puts the name in parentheses, unescaped: read up to its first ")", this one would look
    # like a zombie (state "Z") whose parent is pid 1.
    name = "a) Z 1 (b"
    renamed = (
        f"import subprocess; open('/proc/self/comm', 'w').write('{name}'); "
        "c = subprocess.Popen(['sleep', '60']); print('ready', flush=True); c.wait()"
    )
    root = spawn(f'"{PY}" -c "{renamed}" & wait')
    read_ready(root)
    [child] = psutil.Process(root.pid).children()
    assert child.name() == name
    usage = usage_of(new_sampler(), root.pid)
    assert usage.processes == 3  # sh, the renamed python, and its sleep
    assert usage.rss > child.memory_info().rss


def test_the_figures_agree_with_psutils(spawn: Spawn, new_sampler: Sampler) -> None:
    holder = "b = bytearray(50_000_000); print('ready', flush=True); import time; time.sleep(60)"
    root = spawn(f'"{PY}" -c "{holder}" & wait')
    read_ready(root)
    procs = [psutil.Process(root.pid), *psutil.Process(root.pid).children(recursive=True)]
    rss = sum(p.memory_info().rss for p in procs)
    usage = usage_of(new_sampler(), root.pid)
    assert usage.processes == len(procs) == 2
    assert abs(usage.rss - rss) < rss * 0.05


def test_a_dead_root_reports_zero_processes_or_what_is_left_in_its_session(
    spawn: Spawn, new_sampler: Sampler
) -> None:
    gone = spawn("exit 0")
    gone.wait()
    unreaped = spawn("exit 0")
    wait_until(lambda: psutil.Process(unreaped.pid).status() == psutil.STATUS_ZOMBIE, message="a zombie")
    left_a_daemon = spawn("(exec sleep 60 &); echo ready")
    read_ready(left_a_daemon)
    left_a_daemon.wait()

    usage = new_sampler().sample(
        {"gone": gone.pid, "unreaped": unreaped.pid, "left_a_daemon": left_a_daemon.pid}
    )
    assert usage["gone"] == Usage(0.0, 0, 0)
    assert usage["unreaped"] == Usage(0.0, 0, 0)
    assert usage["left_a_daemon"].processes == 1
    assert usage["left_a_daemon"].rss > 0


def test_the_cache_keeps_only_the_processes_of_the_last_pass(spawn: Spawn, new_sampler: Sampler) -> None:
    root = spawn("sleep 60 & echo ready; exec sleep 61")  # sleep never reaps, so its child stays a zombie
    read_ready(root)
    sampler = new_sampler()
    assert usage_of(sampler, root.pid).processes == 2
    [child] = psutil.Process(root.pid).children()
    assert set(sampler._procs) == {root.pid, child.pid}

    child.kill()
    wait_until(lambda: usage_of(sampler, root.pid).processes == 1, message="the child to be gone")
    assert set(sampler._procs) == {root.pid}
    sampler.sample({})
    assert sampler._procs == {}


@pytest.mark.skipif(not os.access(NS_LAST_PID, os.W_OK), reason="forcing pid reuse needs ns_last_pid (root)")
def test_a_reused_pid_starts_from_a_fresh_cpu_baseline(spawn: Spawn, new_sampler: Sampler) -> None:
    sampler = new_sampler()
    idle = spawn("echo ready; exec sleep 60")
    read_ready(idle)
    assert usage_of(sampler, idle.pid).processes == 1  # the cache now holds the idle process
    dead = psutil.Process(idle.pid)
    os.killpg(idle.pid, signal.SIGKILL)
    idle.wait()

    busy = _spawn_at_pid(spawn, dead, f'exec "{PY}" -c "while True: pass"')
    wait_until(
        lambda: sum(psutil.Process(busy.pid).cpu_times()[:2]) >= 0.5, timeout=60, message="busy to use 0.5s"
    )
    # Measured against the dead process's baseline this would read ~100 %; a new process's first sample is 0.
    # Any psutil user may clear process_iter's cache; then it lists the new process at once (otherwise it
    # skips a pid it finds reused for one pass), and only the sampler's own identity check is left.
    psutil.process_iter.cache_clear()
    first = usage_of(sampler, busy.pid)
    assert (first.cpu_percent, first.processes) == (0.0, 1)
    wait_until(
        lambda: usage_of(sampler, busy.pid).cpu_percent > 50, timeout=60, interval=0.2, message="busy's load"
    )


def test_available_memory_is_positive() -> None:
    assert available_memory() > 0


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _spawn_at_pid(spawn: Spawn, dead: psutil.Process, script: str) -> subprocess.Popen[str]:
    """Start ``script`` with the pid of ``dead`` by setting the namespace's last pid.

    Retried if another fork took the pid, or if the new process started in the same 10 ms clock tick as
    ``dead`` (then not even psutil can tell them apart).
    """
    got = []
    for _ in range(20):
        NS_LAST_PID.write_text(str(dead.pid - 1))
        proc = spawn(script)
        if proc.pid == dead.pid and psutil.Process(proc.pid) != dead:
            return proc
        got.append(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()  # frees the pid for the next try
    pytest.fail(f"could not start a new process as pid {dead.pid} after 20 tries; got pids {got}")
