"""What each agent's processes use (CPU, memory, count), sampled in one psutil pass for all agents.

An agent's processes are its pane process, that process's descendants, and every other live process in the
session the pane process leads (tmux makes each pane a session of its own), with their descendants. The
session catches a daemon that forked away and was re-parented to init but did not call ``setsid``; one that
also left the session (a proper ``setsid`` daemon) is not attributed to any agent.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Usage:
    """One agent's use of the machine, summed over its processes (see the module docstring)."""

    cpu_percent: float  # since the previous sample; 100.0 is one core busy, so it can exceed 100
    rss: int  # bytes resident; pages shared between the processes are counted once per process
    processes: int  # live processes; zombies are not counted


@dataclass(frozen=True)
class _Table:
    """Who is alive and how processes hang together, from one walk over the process table."""

    listed: Mapping[int, psutil.Process]  # live, non-zombie pids -> process_iter's (identity-checked) Process
    children: Mapping[int, list[int]]  # ppid -> pids
    session_members: Mapping[int, list[int]]  # sid -> pids, only for the sids asked about


class ResourceSampler:
    """Samples many agents' process trees at once; keep one per run and call :meth:`sample` on a timer.

    Not thread-safe: one caller at a time (the engine calls it from one worker thread).
    """

    def __init__(self) -> None:
        # pid -> the Process whose cpu_percent baseline is the previous sample. Holds exactly the processes
        # read in the last pass, so entries of processes that ended or left every agent drop out.
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, roots: Mapping[str, int]) -> dict[str, Usage]:
        """One pass for all agents: ``roots`` maps agent name -> pane pid. Blocking; call off the event loop.

        Every name in ``roots`` gets a :class:`Usage`; an agent whose pane process has ended and left no
        process in its session gets ``Usage(0.0, 0, 0)``. A process's first sample counts 0 % CPU. The
        caller drops the roots of panes that have ended: a root pid reused by an unrelated process would be
        sampled as the agent's. A process whose pid psutil finds reused is left out of the pass that finds it
        (``process_iter`` drops its stale entry) and counted from the next pass on.
        """
        table = _read_table(set(roots.values()))
        readings: dict[int, tuple[float, int] | None] = {}
        kept: dict[int, psutil.Process] = {}
        usage: dict[str, Usage] = {}
        for name, root in roots.items():
            cpu, rss, count = 0.0, 0, 0
            for pid in _members(root, table):
                if pid not in readings:
                    readings[pid] = self._read(table.listed[pid], kept)
                reading = readings[pid]
                if reading is not None:
                    cpu += reading[0]
                    rss += reading[1]
                    count += 1
            usage[name] = Usage(round(cpu, 1), rss, count)
        self._procs = kept
        return usage

    def _read(self, listed: psutil.Process, kept: dict[int, psutil.Process]) -> tuple[float, int] | None:
        """(cpu %, rss) of a listed process, or None if it is gone; records the Process used in ``kept``."""
        pid = listed.pid
        proc = self._procs.get(pid)
        try:
            # Processes are equal when pid and creation time are, so a pid reused since the last pass gets a
            # fresh Process (and a fresh CPU baseline) instead of the dead process's. Creation times count in
            # 10 ms ticks on Linux: reuse within one tick goes unseen, which takes a forced pid.
            if proc is None or proc != listed:
                proc = psutil.Process(pid)
            kept[pid] = proc
            with proc.oneshot():
                return proc.cpu_percent(interval=None), proc.memory_info().rss
        except psutil.NoSuchProcess:  # also ZombieProcess: it ended since the table was read
            kept.pop(pid, None)
            return None
        except psutil.AccessDenied:
            return 0.0, 0  # alive but unreadable (e.g. /proc mounted with hidepid): counted, adds nothing


def available_memory() -> int:
    """Bytes the machine can still give to new processes without swapping."""
    return psutil.virtual_memory().available


def _read_table(sids: set[int]) -> _Table:
    listed: dict[int, psutil.Process] = {}
    children: defaultdict[int, list[int]] = defaultdict(list)
    session_members: defaultdict[int, list[int]] = defaultdict(list)
    # One walk over /proc; Process.children(recursive=True) per agent would walk it once per agent.
    for proc in psutil.process_iter(["ppid", "status"]):
        pid = proc.pid
        ppid = proc.info["ppid"]  # None if access was denied (process_iter skips the processes that ended)
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # dead and not yet reaped: uses nothing, and its children have been re-parented
        listed[pid] = proc
        if isinstance(ppid, int):
            children[ppid].append(pid)
        if sids:
            sid = _session_of(pid)
            if sid in sids and sid != pid:
                session_members[sid].append(pid)
    return _Table(listed, children, session_members)


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _members(root: int, table: _Table) -> Iterable[int]:
    """The live processes of the agent whose pane process is ``root``.

    The ppid links alone miss a grandchild whose parent exited (it is re-parented to init or a subreaper);
    the session members put it back unless it also called ``setsid``.
    """
    seen: set[int] = set()
    stack = [root, *table.session_members.get(root, ())]
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(table.children.get(pid, ()))
    return seen & table.listed.keys()
