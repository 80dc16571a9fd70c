"""What the dashboard reads from the run directory besides the event log: the plan copy, the engine's last
resource sample, the last line of each output log, an agent's context and outputs.

Everything here blocks on the filesystem: the app calls it from worker threads, never on its event loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentsup.plan import Plan, parse_plan
from agentsup.supervisor.output import strip_ansi
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.worktrees import WorktreeError, branch_name, diff_stat
from agentsup.tui.tail import screen_line

LAST_LINE_BACK = 4096  # the last output line is looked for this far before a log's end
MAX_CONTEXT_CHARS = 16_000
MAX_OUTPUTS = 100
_CONTROL = dict.fromkeys(range(32), " ")  # tabs, bells and stray controls would break a table row


def load_plan(run: RunDir) -> Plan:
    """The run's plan as the engine parsed it; raises PlanError, RunDirError or OSError."""
    meta = run.read_meta()
    return parse_plan(
        run.plan_copy.read_text(),
        file=meta.plan_file,
        base_dir=Path(meta.plan_file).parent,
        overrides=meta.inputs,
    )


@dataclass(frozen=True)
class Usage:
    cpu_percent: float  # 100.0 is one core busy
    rss: int  # bytes


def read_usage(path: Path) -> dict[str, Usage]:
    """``usage.json``, the engine's last sample of the agents it runs; empty when missing or unreadable."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):  # absent before the first sample; a torn read is replaced next second
        return {}
    out: dict[str, Usage] = {}
    for agent, u in raw.items() if isinstance(raw, dict) else ():
        cpu, rss = (u.get("cpu_percent"), u.get("rss")) if isinstance(u, dict) else (None, None)
        if isinstance(cpu, int | float) and isinstance(rss, int) and not isinstance(rss, bool):
            out[str(agent)] = Usage(float(cpu), rss)
    return out


def last_line(path: Path, back: int = LAST_LINE_BACK) -> str:
    """The last non-blank line among the final ``back`` bytes of ``path``, as it shows on screen, without
    escapes or control characters; "" when there is none (or no file)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - back))
            data = f.read(back)
    except FileNotFoundError:
        return ""
    text = strip_ansi(data).decode("utf-8", errors="replace")
    for raw in reversed(text.split("\n")):
        line = screen_line(raw).translate(_CONTROL).strip()
        if line:
            return line
    return ""


@dataclass(frozen=True)
class TableSample:
    usage: Mapping[str, Usage]
    last_lines: Mapping[str, str]  # agent -> the last line of its latest attempt's log


class TableSampler:
    """Reads what the table shows once a second: ``usage.json`` when it changed, and the last line of each
    log that grew. One thread at a time may call :meth:`sample` (it keeps what it read in between)."""

    def __init__(self, usage_file: Path) -> None:
        self._usage_file = usage_file
        self._usage_stamp: int | None = None
        self._usage: dict[str, Usage] = {}
        self._seen: dict[str, tuple[Path, int, bool]] = {}  # agent -> (log, size read, final)
        self._lines: dict[str, str] = {}

    def sample(self, logs: Mapping[str, tuple[Path, bool]], with_usage: bool) -> TableSample:
        """``logs``: agent -> (its latest log, whether it may still grow). A log that may not is read once
        more after it stopped growing, then never again. Without ``with_usage`` the usage is empty."""
        for agent, (path, live) in logs.items():
            path_seen, size_seen, final = self._seen.get(agent, (None, -1, False))
            if path_seen == path and final:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = -1
            if path_seen != path or size != size_seen:
                self._lines[agent] = last_line(path) if size > 0 else ""
            self._seen[agent] = (path, size, not live)
        return TableSample(self._read_usage() if with_usage else {}, dict(self._lines))

    def _read_usage(self) -> dict[str, Usage]:
        try:
            stamp = self._usage_file.stat().st_mtime_ns
        except FileNotFoundError:
            self._usage_stamp, self._usage = None, {}
            return {}
        if stamp != self._usage_stamp:
            self._usage_stamp, self._usage = stamp, read_usage(self._usage_file)
        return self._usage


@dataclass(frozen=True)
class AgentFiles:
    """An agent's files for the details panel."""

    context: str  # its context.json, indented; or why there is none
    outputs: tuple[tuple[str, int], ...]  # files under its output directory (relative path, size)
    more_outputs: int  # files past MAX_OUTPUTS, not listed
    worktree: str | None = None  # worktree = true: its branch and diff stat (or why there is none yet)


def read_agent_files(run: RunDir, agent: str) -> AgentFiles:
    try:
        raw = run.context_file(agent).read_text()
    except FileNotFoundError:
        context = "(no context file yet)"
    except OSError as exc:
        context = f"(cannot read {run.context_file(agent)}: {exc.strerror or exc})"
    else:
        try:
            context = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except ValueError:
            context = raw
        if len(context) > MAX_CONTEXT_CHARS:
            context = (
                context[:MAX_CONTEXT_CHARS] + f"\n… ({len(context) - MAX_CONTEXT_CHARS} more characters)"
            )
    out_dir = run.out_dir(agent)
    files: list[tuple[str, int]] = []
    more = 0
    for root, dirs, names in os.walk(out_dir):
        dirs.sort()
        for name in sorted(names):
            if len(files) >= MAX_OUTPUTS:
                more += 1
                continue
            path = Path(root, name)
            try:
                size = path.stat().st_size
            except OSError:  # removed while we walked
                continue
            files.append((str(path.relative_to(out_dir)), size))
    return AgentFiles(context, tuple(files), more, _worktree(run, agent))


def _worktree(run: RunDir, agent: str) -> str | None:
    """The agent's branch and what it changed there, as `agentsup diff` shows it; None without one."""
    path = run.worktree(agent)
    if not path.is_dir():
        return None
    branch = branch_name(run.run_id, agent)
    try:
        stat = diff_stat(path)
    except WorktreeError as exc:
        return f"{branch}: {exc}"
    return f"{branch}\n{stat}" if stat else f"{branch}: no changes"
