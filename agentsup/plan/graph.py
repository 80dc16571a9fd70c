"""Checks of the dependency graph: unknown, duplicate and self dependencies, ``NAME.workers`` of an agent
that spawns none, and cycles (an aggregate's sources and ``m.workers`` count as dependencies)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from agentsup.plan.locate import KeyPath, format_path
from agentsup.plan.model import WORKERS_SUFFIX, AgentSpec
from agentsup.plan.types import Report, did_you_mean, quote


def check_dependencies(
    agents: Mapping[str, AgentSpec], dep_at: Mapping[str, Sequence[KeyPath]], report: Report
) -> None:
    """Reports every bad dependency, then one cycle per strongly connected group of agents.

    ``dep_at[name][i]`` is where ``agents[name].after[i]`` was written: in the agent's ``after``, in
    [defaults] ``after``, or as a source in its ``aggregate.from``.
    """
    downstream: dict[str, list[str]] = {name: [] for name in agents}
    for name, spec in agents.items():
        seen: dict[tuple[str, bool], KeyPath] = {}
        for dep, at in zip(spec.after, dep_at[name], strict=True):
            shown = dep.agent + WORKERS_SUFFIX if dep.workers else dep.agent
            upstream = agents.get(dep.agent)
            if dep.agent == name:
                how = " (it inherits after from [defaults])" if at[0] == "defaults" else ""
                report(at, f"agent {quote(name)} depends on itself{how}")
            elif upstream is None:
                report(at, f"unknown agent {quote(dep.agent)}{did_you_mean(dep.agent, agents)}")
            elif (dep.agent, dep.workers) in seen:
                first = format_path(seen[dep.agent, dep.workers][-2:])
                report(at, f"duplicate dependency on {quote(shown)} (already at {first})")
            elif dep.workers and upstream.spawns is None:
                report(
                    at, f'{quote(shown)} waits for the workers of {quote(dep.agent)}, which sets no "spawns"'
                )
            else:
                seen[dep.agent, dep.workers] = at
                downstream[dep.agent].append(name)
    _report_cycles(agents, downstream, dep_at, report)


def _components(downstream: Mapping[str, list[str]]) -> dict[str, int]:
    """Each agent's strongly connected component (Tarjan's algorithm, iterative: no depth limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    for root in downstream:
        if root in index:
            continue
        work = [(root, iter(downstream[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            name, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None and nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                work.append((nxt, iter(downstream[nxt])))
            elif nxt is not None:
                if nxt not in component:
                    low[name] = min(low[name], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[name])
                if low[name] == index[name]:
                    while True:
                        member = stack.pop()
                        component[member] = index[name]
                        if member == name:
                            break
    return component


def _report_cycles(
    agents: Mapping[str, AgentSpec],
    downstream: Mapping[str, list[str]],
    dep_at: Mapping[str, Sequence[KeyPath]],
    report: Report,
) -> None:
    component = _components(downstream)
    members: dict[int, set[str]] = {}
    for name, c in component.items():
        members.setdefault(c, set()).add(name)
    done: set[int] = set()
    for start in agents:  # file order, so each cycle is told from its first agent
        group = members[component[start]]
        if component[start] in done or len(group) < 2:  # no self-edges here: a lone agent is no cycle
            continue
        done.add(component[start])
        cycle = _shortest_cycle(start, group, downstream)
        closing = cycle[-2]  # the cycle returns to start through start.after = [..., closing, ...]
        index = next((i for i, d in enumerate(agents[start].after) if d.agent == closing), 0)
        report(dep_at[start][index], "dependency cycle: " + " → ".join(cycle))


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
