"""What each agent's processes use (CPU, memory, count), sampled in one pass over the process table for all
agents: on Linux from ``/proc`` directly, elsewhere through psutil.

An agent's processes are its pane process, that process's descendants, and every other live process in the
session the pane process leads (tmux makes each pane a session of its own), with their descendants. The
session catches a daemon that forked away and was re-parented to init but did not call ``setsid``; one that
also left the session (a proper ``setsid`` daemon) is not attributed to any agent.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

PROCFS = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Usage:
    """One agent's use of the machine, summed over its processes (see the module docstring)."""

    cpu_percent: float  # since the previous sample; 100.0 is one core busy, so it can exceed 100
    rss: int  # bytes resident; pages shared between the processes are counted once per process
    processes: int  # live processes; zombies are not counted


class _Reading(NamedTuple):
    """One live process's figures in one pass."""

    started: float  # with the pid, tells the process from a later one that reuses the pid
    cpu: float | None  # CPU seconds so far (user + system); None if unreadable: counted, adds nothing
    rss: int


class _Baseline(NamedTuple):
    started: float
    cpu: float
    at: float  # time.monotonic() of the pass that read ``cpu``


@dataclass(frozen=True)
class _Table:
    """Who is alive and how processes hang together, from one walk over the process table."""

    children: Mapping[int, list[int]]  # ppid -> live pids
    session_members: Mapping[int, list[int]]  # sid -> live pids, only for the sids asked about
    read: Callable[[int], _Reading | None]  # None: not live (unknown, a zombie, or ended since the walk)


class ResourceSampler:
    """Samples many agents' process trees at once; keep one per run and call :meth:`sample` on a timer.

    Not thread-safe: one caller at a time (the engine calls it from one worker thread).
    """

    def __init__(self, *, procfs: bool = PROCFS) -> None:
        """``procfs``: read ``/proc/PID/stat`` (Linux); otherwise psutil, the fallback elsewhere."""
        self._read_table = _read_proc if procfs else _read_psutil
        # pid -> its CPU time at the previous sample. Holds exactly the processes read in the last pass, so
        # entries of processes that ended or left every agent drop out.
        self._procs: dict[int, _Baseline] = {}

    def sample(self, roots: Mapping[str, int]) -> dict[str, Usage]:
        """One pass for all agents: ``roots`` maps agent name -> pane pid. Blocking; call off the event loop.

        Every name in ``roots`` gets a :class:`Usage`; an agent whose pane process has ended and left no
        process in its session gets ``Usage(0.0, 0, 0)``. A process's first sample counts 0 % CPU, and so
        does the first sample of a pid reused by a new process (told apart by start time, which counts in
        10 ms ticks on Linux: reuse within one tick goes unseen, which takes a forced pid). The caller drops
        the roots of panes that have ended: a root pid reused by an unrelated process would be sampled as
        the agent's.
        """
        now = time.monotonic()  # one clock for the pass: it takes milliseconds, samples come seconds apart
        table = self._read_table(set(roots.values()))
        figures: dict[int, tuple[float, int] | None] = {}
        kept: dict[int, _Baseline] = {}
        usage: dict[str, Usage] = {}
        for name, root in roots.items():
            cpu, rss, count = 0.0, 0, 0
            for pid in _members(root, table):
                if pid not in figures:
                    figures[pid] = self._figures(pid, table.read(pid), now, kept)
                if (fig := figures[pid]) is not None:
                    cpu += fig[0]
                    rss += fig[1]
                    count += 1
            usage[name] = Usage(round(cpu, 1), rss, count)
        self._procs = kept
        return usage

    def _figures(
        self, pid: int, reading: _Reading | None, now: float, kept: dict[int, _Baseline]
    ) -> tuple[float, int] | None:
        """(cpu %, rss) of a process, None if it is not live; records its CPU baseline in ``kept``."""
        if reading is None:
            return None
        if reading.cpu is None:
            return 0.0, reading.rss
        kept[pid] = _Baseline(reading.started, reading.cpu, now)
        last = self._procs.get(pid)
        if last is None or last.started != reading.started or now <= last.at:
            return 0.0, reading.rss
        return max(0.0, (reading.cpu - last.cpu) / (now - last.at) * 100), reading.rss


def available_memory() -> int:
    """Bytes the machine can still give to new processes without swapping."""
    return psutil.virtual_memory().available


def _read_proc(sids: set[int]) -> _Table:
    """The table from one read of ``/proc/PID/stat`` per process; the agents' processes' memory from
    ``/proc/PID/statm``, as psutil reads it. stat's resident pages are the kernel's cheap estimate: from Linux
    6.2 on it can leave out what each CPU has not yet folded in, and reads 0 for a small new process."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    stats: dict[int, tuple[float, float | None]] = {}  # live pid -> (start time, CPU seconds)
    children: defaultdict[int, list[int]] = defaultdict(list)
    session_members: defaultdict[int, list[int]] = defaultdict(list)
    for name in os.listdir("/proc"):  # noqa: PTH208 -- a Path per process would be most of the cost
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            stat = _parse_stat(_read_proc_file(pid, "stat"))
        except PermissionError:  # e.g. /proc mounted with hidepid=1: alive but unreadable
            stats[pid] = (0.0, None)
            if (sid := _session_of(pid)) in sids and sid != pid:
                session_members[sid].append(pid)
            continue
        except (FileNotFoundError, ProcessLookupError):  # it ended since the listing
            continue
        if stat is None:
            continue  # a zombie (dead, not yet reaped) uses nothing, and its children have been re-parented
        ppid, sid, ticks, started = stat
        stats[pid] = (started, ticks / tick)
        children[ppid].append(pid)
        if sid in sids and sid != pid:
            session_members[sid].append(pid)

    def read(pid: int) -> _Reading | None:
        if (stat := stats.get(pid)) is None:
            return None
        started, cpu = stat
        if cpu is None:
            return _Reading(started, None, 0)
        try:
            resident = int(_read_proc_file(pid, "statm").split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):  # it ended since the walk
            return None
        except PermissionError:
            return _Reading(started, None, 0)
        return _Reading(started, cpu, resident * page)

    return _Table(children, session_members, read)


def _read_proc_file(pid: int, name: str) -> bytes:
    fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _parse_stat(data: bytes) -> tuple[int, int, int, int] | None:
    """(ppid, session id, CPU ticks used, start time in ticks) from a ``/proc/PID/stat`` line; None for a
    process that is not live: a zombie, or one reaped while it was read (nothing read)."""
    end = data.rfind(b")")  # the command name, in parentheses, may hold spaces and ")": count from its end
    if end < 0:
        return None
    # proc(5) fields 3 on: state, ppid, pgrp, session, ... utime (14), stime (15), ... starttime (22)
    fields = data[end + 2 :].split()
    if fields[0] in (b"Z", b"X", b"x"):
        return None
    return int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[19])


def _read_psutil(sids: set[int]) -> _Table:
    """The table where there is no /proc: one psutil walk, then each agent's processes read on demand."""
    listed: dict[int, psutil.Process] = {}
    children: defaultdict[int, list[int]] = defaultdict(list)
    session_members: defaultdict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid", "status"]):
        pid = proc.pid
        ppid = proc.info["ppid"]  # None if access was denied (process_iter skips the processes that ended)
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # dead and not yet reaped: uses nothing, and its children have been re-parented
        listed[pid] = proc
        if isinstance(ppid, int):
            children[ppid].append(pid)
        if sids and (sid := _session_of(pid)) in sids and sid != pid:
            session_members[sid].append(pid)

    def read(pid: int) -> _Reading | None:
        proc = listed.get(pid)
        if proc is None:
            return None
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                return _Reading(proc.create_time(), times.user + times.system, proc.memory_info().rss)
        except psutil.NoSuchProcess:  # also ZombieProcess: it ended since the table was read
            return None
        except psutil.AccessDenied:
            return _Reading(0.0, None, 0)

    return _Table(children, session_members, read)


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _members(root: int, table: _Table) -> Iterable[int]:
    """The processes of the agent whose pane process is ``root``, and maybe pids no longer live: the
    caller reads each one.

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
    return seen
