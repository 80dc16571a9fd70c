"""Regexes that backtrack exponentially: a repeat one of whose iterations can be another repeat alone.

Python's ``re`` backtracks while holding the GIL: ``(a+)+$`` against a line of 30 ``a`` and a ``b`` runs for
minutes, and a supervisor matching its agents' output lines would stall that long. The check is a
heuristic over the parse tree. It flags a variable repeat whose body, once the parts that may match nothing
are set aside, is one variable repeat (``(a+)+``, ``(\\w+\\s*)*``, ``(a|b+)+``), and leaves alone the common
``(\\d+\\.)+`` (each iteration must end in a ``.``). It misses ambiguity between alternatives
(``(a|aa)+``) and between a repeat and what follows it (``(.*,)+``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

# re's parser has no public API and no type stubs: its tree is read by opcode name, shape checked.
_parser = importlib.import_module("re._parser")

_BACKTRACKING = ("MAX_REPEAT", "MIN_REPEAT")  # POSSESSIVE_REPEAT gives nothing back
_REPEATS = (*_BACKTRACKING, "POSSESSIVE_REPEAT")
_ZERO_WIDTH = ("AT", "ASSERT", "ASSERT_NOT", "GROUPREF_EXISTS")

Item = tuple[str, object]


def has_nested_repeat(source: str) -> bool:
    """Whether regex ``source`` (one that compiles) repeats a body that can be one repeat alone.

    Raises RecursionError on a regex nested too deeply to walk.
    """
    return any(_hazard(item) for item in _walk(_items(_parser.parse(source))))


def _items(sub: object) -> list[Item]:
    if not isinstance(sub, _parser.SubPattern | list):
        return []
    return [(str(e[0]), e[1]) for e in sub if isinstance(e, tuple) and len(e) == 2]


def _children(item: Item) -> list[list[Item]]:
    """The sub-patterns directly inside ``item``."""
    op, av = item
    bodies: list[object] = []
    if op == "ATOMIC_GROUP":
        bodies = [av]
    elif not isinstance(av, tuple):
        pass
    elif op in _REPEATS:
        bodies = [av[2]]  # (min, max, body)
    elif op == "SUBPATTERN":
        bodies = [av[3]]  # (group, add_flags, del_flags, body)
    elif op == "BRANCH" and isinstance(av[1], list):
        bodies = list(av[1])  # (None, [alternatives])
    elif op in ("ASSERT", "ASSERT_NOT"):
        bodies = [av[1]]  # (direction, body)
    elif op == "GROUPREF_EXISTS":
        bodies = list(av[1:])  # (group, yes, no)
    return [_items(b) for b in bodies]


def _walk(items: list[Item]) -> Iterator[Item]:
    for item in items:
        yield item
        for child in _children(item):
            yield from _walk(child)


def _variable_repeat(item: Item) -> bool:
    """A repeat that backtracks over how many times it matched, which may be more than once."""
    op, av = item
    if op not in _BACKTRACKING or not isinstance(av, tuple):
        return False
    low, high = int(av[0]), int(av[1])
    return high > low and high >= 2


def _may_be_empty(item: Item) -> bool:
    op, av = item
    if op in _ZERO_WIDTH or (op in _REPEATS and isinstance(av, tuple) and int(av[0]) == 0):
        return True
    children = _children(item)
    if op == "BRANCH":
        return any(all(map(_may_be_empty, branch)) for branch in children)
    return bool(children) and all(all(map(_may_be_empty, child)) for child in children)


def _lone_repeat(items: list[Item]) -> bool:
    """Whether one iteration over ``items`` can be one variable repeat, everything else matching nothing."""
    solid = [i for i in items if not _may_be_empty(i)]
    if len(solid) > 1:
        return False
    for item in solid or items:
        if _variable_repeat(item):
            return True
        if item[0] in ("SUBPATTERN", "BRANCH") and any(map(_lone_repeat, _children(item))):
            return True
    return False


def _hazard(item: Item) -> bool:
    return _variable_repeat(item) and _lone_repeat(_children(item)[0])
