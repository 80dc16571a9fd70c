"""Checks of the dependency graph: unknown, duplicate and self dependencies, and cycles."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from agentsup.plan.locate import KeyPath
from agentsup.plan.model import AgentSpec
from agentsup.plan.types import Report, did_you_mean, quote


def check_dependencies(
    agents: Mapping[str, AgentSpec], after_at: Mapping[str, KeyPath], report: Report
) -> None:
    """Reports every bad ``after`` entry, then one cycle per strongly connected group of agents.

    ``after_at[name]`` is where that agent's ``after`` array was written (its own table or [defaults]).
    """
    downstream: dict[str, list[str]] = {name: [] for name in agents}
    for name, spec in agents.items():
        at = after_at[name]
        inherited = at[0] == "defaults"
        seen: dict[str, int] = {}
        for i, dep in enumerate(spec.after):
            if dep.agent == name:
                how = " (it inherits after from [defaults])" if inherited else ""
                report((*at, i), f"agent {quote(name)} depends on itself{how}")
            elif dep.agent not in agents:
                report((*at, i), f"unknown agent {quote(dep.agent)}{did_you_mean(dep.agent, agents)}")
            elif dep.agent in seen:
                report(
                    (*at, i),
                    f"duplicate dependency on {quote(dep.agent)} (already at after[{seen[dep.agent]}])",
                )
            else:
                seen[dep.agent] = i
                downstream[dep.agent].append(name)
    _report_cycles(agents, downstream, after_at, report)


def _reachable(start: str, downstream: Mapping[str, list[str]]) -> set[str]:
    """Agents reachable from ``start`` by one or more edges (``start`` itself only through a cycle)."""
    seen: set[str] = set()
    todo = deque(downstream[start])
    while todo:
        name = todo.popleft()
        if name not in seen:
            seen.add(name)
            todo.extend(downstream[name])
    return seen


def _report_cycles(
    agents: Mapping[str, AgentSpec],
    downstream: Mapping[str, list[str]],
    after_at: Mapping[str, KeyPath],
    report: Report,
) -> None:
    reach = {name: _reachable(name, downstream) for name in agents}
    done: set[str] = set()
    for start in agents:  # file order, so each cycle is told from its first agent
        if start in done or start not in reach[start]:
            continue
        group = {n for n in reach[start] if start in reach[n]}
        done |= group
        cycle = _shortest_cycle(start, group, downstream)
        closing = cycle[-2]  # the cycle returns to start through start.after = [..., closing, ...]
        index = next((i for i, d in enumerate(agents[start].after) if d.agent == closing), 0)
        report((*after_at[start], index), "dependency cycle: " + " → ".join(cycle))


def _shortest_cycle(start: str, group: set[str], downstream: Mapping[str, list[str]]) -> list[str]:
    """``[start, ..., start]`` along downstream edges inside ``group``; ``start`` is on a cycle in it."""
    parent: dict[str, str] = {}
    todo = deque([start])
    while todo:
        name = todo.popleft()
        for nxt in downstream[name]:
            if nxt == start:
                path = [name]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in group and nxt not in parent:
                parent[nxt] = name
                todo.append(nxt)
    return [start, start]
