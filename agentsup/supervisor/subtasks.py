"""A master's subtasks file: which workers to spawn, with what input, in which order.

The file is JSON, either a list of subtasks or ``{"subtasks": [...]}``; each subtask is
``{"id": ..., "worker": ..., "input": ..., "after": [...]}`` (input and after optional). Like the plan
loader, ``load_subtasks`` reports every problem at once, each naming the subtask by index and id.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentsup.supervisor.events import JSON

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_KEYS = ("id", "worker", "input", "after")


@dataclass(frozen=True)
class Subtask:
    id: str
    worker: str  # a [workers] template name
    input: JSON  # given to the worker as it was written; None when absent
    after: tuple[str, ...]  # ids of subtasks in the same file that must succeed first


class SubtaskError(Exception):
    """The subtasks file is missing or invalid; ``problems`` lists every problem found, in file order.

    Problems about one subtask start with ``subtasks[INDEX] (id "ID"):`` (the id when it is valid);
    problems about the whole file start with its path.
    """

    def __init__(self, problems: Sequence[str], path: Path | None = None) -> None:
        self.problems = tuple(problems)
        self.path = path
        super().__init__("\n".join(self.problems))


class _NotJSONError(ValueError):
    pass


def _reject_constant(name: str) -> JSON:
    raise _NotJSONError(f"{name} is not JSON (numbers must be finite)")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _suggest(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f' — did you mean "{close[0]}"?' if close else ""


def _read(path: Path) -> JSON:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"{path}: no subtasks file: the master did not write it"
        raise SubtaskError([message], path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SubtaskError([f"{path}: cannot read the subtasks file: {e}"], path) from e
    try:
        data: JSON = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise SubtaskError([f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}"], path) from e
    except _NotJSONError as e:
        raise SubtaskError([f"{path}: invalid JSON: {e}"], path) from e
    return data


def _entries(data: JSON, path: Path) -> list[JSON]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        extra = [k for k in data if k != "subtasks"]
        problems = [f'{path}: unknown top-level key "{k}" (only "subtasks")' for k in extra]
        entries = data.get("subtasks")
        if "subtasks" not in data:
            problems.insert(0, f'{path}: missing "subtasks": expected {{"subtasks": [...]}} or a list')
        elif not isinstance(entries, list):
            problems.insert(0, f'{path}: "subtasks" must be a list, got {_describe(entries)}')
        elif not problems:
            return entries
        raise SubtaskError(problems, path)
    raise SubtaskError(
        [f'{path}: expected a list of subtasks or {{"subtasks": [...]}}, got {_describe(data)}'], path
    )


@dataclass
class _Draft:
    index: int
    label: str  # ``subtasks[2] (id "tests")`` or ``subtasks[2]``
    id: str | None
    worker: str | None
    input: JSON
    after: list[tuple[int, str]]  # (position in the after list, id), strings only


def _draft_id(label: str, entry: Mapping[str, JSON], problems: list[str]) -> str | None:
    raw = entry.get("id")
    if "id" not in entry:
        problems.append(f'{label}: missing "id"')
    elif not isinstance(raw, str):
        problems.append(f'{label}: "id" must be a string, got {_describe(raw)}')
    elif not ID_PATTERN.fullmatch(raw):
        problems.append(
            f"{label}: invalid id {json.dumps(raw)}: use 1-64 letters, digits, _ and -, "
            "starting with a letter or digit"
        )
    else:
        return raw
    return None


def _draft_worker(
    label: str, entry: Mapping[str, JSON], workers: Collection[str], problems: list[str]
) -> str | None:
    raw = entry.get("worker")
    if "worker" not in entry:
        problems.append(f'{label}: missing "worker"')
    elif not isinstance(raw, str):
        problems.append(f'{label}: "worker" must be a string, got {_describe(raw)}')
    elif raw not in workers:
        hint = _suggest(raw, workers) or f" (workers: {', '.join(sorted(workers)) or 'none are defined'})"
        problems.append(f"{label}: unknown worker {json.dumps(raw)}{hint}")
    else:
        return raw
    return None


def _draft_after(label: str, entry: Mapping[str, JSON], problems: list[str]) -> list[tuple[int, str]]:
    raw = entry.get("after", [])
    if not isinstance(raw, list):
        problems.append(f'{label}: "after" must be a list of ids, got {_describe(raw)}')
        return []
    after: list[tuple[int, str]] = []
    for pos, dep in enumerate(raw):
        if isinstance(dep, str):
            after.append((pos, dep))
        else:
            problems.append(f"{label}: after[{pos}] must be an id (a string), got {_describe(dep)}")
    return after


def _draft(index: int, entry: JSON, workers: Collection[str], problems: list[str]) -> _Draft | None:
    label = f"subtasks[{index}]"
    if not isinstance(entry, dict):
        problems.append(f'{label}: expected an object {{"id": ..., "worker": ...}}, got {_describe(entry)}')
        return None
    sid = _draft_id(label, entry, problems)
    if sid is not None:
        label = f'{label} (id "{sid}")'
    for key in entry:
        if key not in _KEYS:
            problems.append(f"{label}: unknown key {json.dumps(key)}{_suggest(key, _KEYS)}")
    worker = _draft_worker(label, entry, workers, problems)
    after = _draft_after(label, entry, problems)
    return _Draft(index, label, sid, worker, entry.get("input"), after)


def _check_after(draft: _Draft, ids: Mapping[str, _Draft], problems: list[str]) -> None:
    seen: set[str] = set()
    for pos, dep in draft.after:
        where = f"{draft.label}: after[{pos}]"
        if dep == draft.id:
            problems.append(f'{where}: subtask "{dep}" cannot run after itself')
        elif dep not in ids:
            problems.append(f"{where}: unknown id {json.dumps(dep)}{_suggest(dep, ids)}")
        elif dep in seen:
            problems.append(f'{where}: "{dep}" is listed twice')
        seen.add(dep)


def _components(order: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Strongly connected components of 2+ nodes (Tarjan, iterative: a chain may be max_subtasks long)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in order:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            if i < len(edges[v]):
                work.append((v, i + 1))
                w = edges[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if work:  # v is done: its caller inherits its low link
                caller = work[-1][0]
                low[caller] = min(low[caller], low[v])
            if low[v] == index[v]:
                component: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _cycles(order: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of 2+ nodes, from and back to its first in ``order``."""
    rank = {n: i for i, n in enumerate(order)}
    cycles: list[list[str]] = []
    for component in _components(order, edges):
        start = min(component, key=rank.__getitem__)
        # The shortest way back to ``start`` (breadth first, edges in file order); it stays in the component.
        parent: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parent:  # a component always leads back to its start
            reached: list[str] = []
            for v in frontier:
                for w in edges[v]:
                    if w not in parent:
                        parent[w] = v
                        reached.append(w)
            frontier = reached
        path = [start]
        while (v := parent[path[-1]]) != start:
            path.append(v)
        cycles.append([start, *reversed(path)])
    return cycles


def load_subtasks(path: Path, workers: Collection[str], max_subtasks: int = 1000) -> tuple[Subtask, ...]:
    """The subtasks of the file at ``path``, in file order; ``workers`` are the [workers] template names.

    Raises SubtaskError listing every problem. Blocking file I/O: call it off the event loop.
    """
    entries = _entries(_read(path), path)
    if len(entries) > max_subtasks:
        raise SubtaskError([f"{path}: {len(entries)} subtasks, more than the limit of {max_subtasks}"], path)
    problems: list[list[str]] = [[] for _ in entries]  # by subtask, so they come out in file order
    drafts = [d for i, e in enumerate(entries) if (d := _draft(i, e, workers, problems[i])) is not None]
    ids: dict[str, _Draft] = {}
    for d in drafts:
        if d.id is None:
            continue
        if d.id in ids:
            problems[d.index].append(
                f'{d.label}: duplicate id "{d.id}" (first at subtasks[{ids[d.id].index}])'
            )
        else:
            ids[d.id] = d
    for d in drafts:
        _check_after(d, ids, problems[d.index])
    edges = {sid: [dep for _, dep in d.after if dep in ids] for sid, d in ids.items()}
    for cycle in _cycles(list(ids), edges):
        first = ids[cycle[0]]
        problems[first.index].append(f"{first.label}: dependency cycle {' → '.join(cycle)}")
    if any(problems):
        raise SubtaskError([m for found in problems for m in found], path)
    return tuple(
        Subtask(d.id, d.worker, d.input, tuple(dep for _, dep in d.after))
        for d in drafts
        if d.id is not None and d.worker is not None
    )
