"""Stopping agents for good: every process an agent started, and the order a run's agents stop in.

tmux makes each pane's process (the wrapper) the leader of a session and a process group of its own, so a
signal to the group reaches the agent and what it started in the foreground or background (``nohup cmd &``
included). What left the group is found here, before the SIGTERM and again before the SIGKILL:

- the other members of the pane's session (a child that called ``setpgid``);
- the descendants of all of these (a child that called ``setsid``, while its parent lives);
- every process whose environment carries the attempt's ``AGENTSUP_OUT`` and ``AGENTSUP_ATTEMPT`` (for a
  whole run, its ``AGENTSUP_INBOX``): a daemon that called ``setsid`` and forked again, re-parented to init,
  keeps the environment it was born with.

A process that also cleared its environment (``env -i``) escapes all three. The engine and its ancestors
(the tmux server) are never signalled, whatever their environment says.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import psutil

from agentsup.plan.model import Plan
from agentsup.sessions import Backend, Pane
from agentsup.supervisor.rundir import RunDir

Marker = Mapping[str, str]


def attempt_marker(run: RunDir, agent: str, attempt: int) -> Marker:
    """The environment every process of the attempt inherits from its wrapper (see ``agent_environment``)."""
    return {"AGENTSUP_OUT": str(run.out_dir(agent)), "AGENTSUP_ATTEMPT": str(attempt)}


def run_marker(run: RunDir) -> Marker:
    """The environment every process of every agent of the run inherits."""
    return {"AGENTSUP_INBOX": str(run.inbox_dir)}


def vanished(panes: Sequence[Pane]) -> list[Pane]:
    """Of the panes of windows that are gone, those whose process is gone too: only their pids still name
    their process group and session. A gone window's pid in use by a live process is, all but always,
    another process that reused it (the wrapper dies of the hangup), one whose group a signal must not
    reach: a killed tmux server's 500 panes had their pids reused by the next 500 windows opened, which
    the engine then killed. Linux does not reuse a pid while a group or session of that id has members,
    so a vanished leader's group holds only the pane's own leftovers. Those leftovers whose environment
    carries the attempt's marker are found by it whichever way this goes."""
    gone = []
    for pane in panes:
        try:
            os.kill(pane.pid, 0)
        except ProcessLookupError:
            gone.append(pane)
        except PermissionError:
            pass  # another user's process: certainly not the pane's
    return gone


def processes_of(leaders: Collection[int], markers: Sequence[Marker]) -> set[int]:
    """The live processes of the panes whose processes are ``leaders``, and those carrying one of ``markers``
    (see the module docstring). Blocking: one walk over the process table."""
    protected = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    wanted = set(leaders)
    children: defaultdict[int, list[int]] = defaultdict(list)
    found: set[int] = set()
    attrs = ["ppid", "status", "environ"] if markers else ["ppid", "status"]
    for proc in psutil.process_iter(attrs):
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue  # dead already; its children have been re-parented
        pid = proc.pid
        if isinstance(info["ppid"], int):
            children[info["ppid"]].append(pid)
        env = info.get("environ")  # None when it may not be read: not this user's process
        if wanted & _group_and_session(pid) or (env and any(_carries(env, m) for m in markers)):
            found.add(pid)
    found -= protected
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child not in protected:
                found.add(child)
                todo.append(child)
    return found


def finder(leaders: Collection[int], markers: Sequence[Marker]) -> Callable[[], set[int]]:
    """:func:`processes_of` to call later (a backend's ``also``)."""
    return partial(processes_of, tuple(leaders), tuple(markers))


def _group_and_session(pid: int) -> set[int]:
    try:
        return {os.getpgid(pid), os.getsid(pid)}
    except (ProcessLookupError, PermissionError):
        return set()


def _carries(env: Mapping[str, str], marker: Marker) -> bool:
    return all(env.get(name) == value for name, value in marker.items())


@dataclass(frozen=True)
class Target:
    """One agent to stop: its current attempt's pane and what marks that attempt's processes."""

    agent: str
    attempt: int
    pane: Pane
    marker: Marker


def stop_layers(
    backend: Backend,
    layers: Sequence[Sequence[Target]],
    grace: float,
    stopped: Callable[[Target], None],
    leftovers: Marker | None = None,
) -> None:
    """Stop each layer's agents at once, one layer after the other; ``stopped`` hears of each. The last
    layer also takes whatever carries ``leftovers`` (what agents that ended left running). Blocking."""
    for i, layer in enumerate(layers or [[]]):
        panes = [t.pane for t in layer]
        markers = [t.marker for t in layer]
        if leftovers is not None and i == max(len(layers) - 1, 0):
            markers.append(leftovers)
        backend.stop_all(panes, grace, finder([p.pid for p in panes], markers))
        for target in layer:
            stopped(target)


def stop_order(plan: Plan, agents: Collection[str]) -> list[list[str]]:
    """``agents`` in the layers ``stop --reverse`` stops them in: each one after every one of ``agents`` that
    depends on it, directly or through others (``after``; ``m.workers`` counts the whole worker group)."""
    targets = set(agents)
    upstream = {a: _upstream(plan, a) for a in targets}
    dependents = {a: [t for t in targets if a in upstream[t]] for a in targets}
    depth: dict[str, int] = {}

    def depth_of(agent: str, trail: frozenset[str]) -> int:
        if agent not in depth:
            later = [depth_of(t, trail | {agent}) for t in dependents[agent] if t not in trail]
            depth[agent] = 1 + max(later, default=-1)  # a cycle (no valid plan has one) is cut at `trail`
        return depth[agent]

    layers: defaultdict[int, list[str]] = defaultdict(list)
    for agent in targets:
        layers[depth_of(agent, frozenset())].append(agent)
    return [sorted(layers[d]) for d in sorted(layers)]


def _upstream(plan: Plan, agent: str) -> set[str]:
    """Every agent ``agent`` waits for, transitively."""
    seen: set[str] = set()
    todo = [agent]
    while todo:
        spec = plan.agents.get(todo.pop())
        for dep in spec.after if spec is not None else ():
            for up in plan.worker_group(dep.agent) if dep.workers else [dep.agent]:
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
    seen.discard(agent)
    return seen
