"""Hostile plans: the corpus in ``hostile/`` and structured-but-wrong documents are each refused with
problems located in the file, by the loader and by the real ``agentsup validate`` and ``start`` (exit 2,
no traceback, no run directory, no tmux server), never with anything but a ``PlanError``.

Each ``hostile/NAME.toml`` has a ``NAME.expect``: fragments, one a line, that must each appear in one
problem line when the file is loaded as ``plan.toml``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsup.plan import Plan, PlanError, load_plan, parse_plan
from agentsup.plan import keys as k
from agentsup.plan.aggregate import AGGREGATE
from agentsup.plan.handlers import HANDLER
from agentsup.plan.types import Table
from tests.e2e.harness import AGENTSUP, isolated_env
from tests.plan import examples

HOSTILE = Path(__file__).resolve().parent / "hostile"
CASES = sorted(p.stem for p in HOSTILE.glob("*.toml"))


def _fragments(name: str) -> list[str]:
    return [line for line in (HOSTILE / f"{name}.expect").read_text(encoding="utf-8").splitlines() if line]


def _check_lines(lines: list[str], name: str) -> None:
    """Every expected fragment is in one problem line; every line is one printable line of the plan's."""
    for fragment in _fragments(name):
        assert any(fragment in line for line in lines), f"{fragment!r} not in:\n" + "\n".join(lines)
    for line in lines:
        assert line.isprintable(), line
        assert "plan.toml" in line.split(": ", 1)[0], line


def _copy(name: str, where: Path) -> Path:
    plan = where / "plan.toml"
    plan.write_bytes((HOSTILE / f"{name}.toml").read_bytes())
    return plan


def test_the_corpus_pairs_every_plan_with_its_expectations() -> None:
    expects = sorted(p.stem for p in HOSTILE.glob("*.expect"))
    assert expects == CASES
    assert len(CASES) >= 40
    assert all(_fragments(name) for name in CASES)


@pytest.mark.parametrize("name", CASES)
def test_the_loader_refuses_it_with_located_problems(name: str, tmp_path: Path) -> None:
    plan = _copy(name, tmp_path)
    with pytest.raises(PlanError) as caught:
        load_plan(plan)
    problems = caught.value.problems
    _check_lines([str(p) for p in problems], name)
    assert all(p.line is not None for p in problems if p.path), "a problem at a key path has no line"


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["validate", "start"])
@pytest.mark.parametrize("name", CASES)
def test_the_command_refuses_it_and_starts_nothing(name: str, command: str, tmp_path: Path) -> None:
    _copy(name, tmp_path)
    (tmp_path / "home").mkdir()
    state = tmp_path / "state"
    socket = f"agentsup-test-{uuid.uuid4().hex[:12]}"
    env = isolated_env(tmp_path / "home", state, socket)
    argv = [AGENTSUP, command, "plan.toml", *(["--no-tui"] if command == "start" else [])]
    try:
        r = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60
        )
        server = subprocess.run(
            ["tmux", "-L", socket, "list-sessions"], env=env, capture_output=True, check=False
        )
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, check=False)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert "Traceback" not in r.stderr
    *lines, summary = r.stderr.splitlines()
    assert summary.startswith("agentsup: ")
    assert summary.endswith(" in plan.toml; nothing was started")
    _check_lines(lines, name)
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())
    assert server.returncode != 0, "a tmux server runs on the test's socket"


# ---- structured-but-wrong documents: random values for known keys, at every level -----------------

INT_EDGES = [0, -1, 1, 255, 256, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**20, -(10**400), 10**1000]
WORDS = [
    "",
    " ",
    "\0",
    "\x1b[2J",
    "\u202e",
    "a",
    "b",
    "w",
    "p",
    "x",
    "a.workers",
    "b.workers",
    "spawn:w",
    "spawn:",
    "pattern:(a+)+$",
    "pattern:(",
    "pattern:",
    "file",
    "exit",
    "30s",
    "-5s",
    "1h30m",
    "2GiB",
    "10XB",
    "{{",
    "{{ inputs.x }}",
    "{{ agents.a.output }}",
    "echo '{{ inputs.x }}'",
    '"{{ task.id }}"',
    "$(touch PWNED)",
    "(a+)+$",
    "[z-a]",
    "x" * 300,
]
scalars: st.SearchStrategy[object] = (
    st.sampled_from(INT_EDGES)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.sampled_from(WORDS)
    | st.text(max_size=12)
    | st.dates()
    | st.times()
    | st.datetimes()
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)

# The table each key holds, and whether as an array of them; name → table keys hold one per name.
SUB_TABLES: dict[str, tuple[Table, bool]] = {
    "after": (k.DEPENDENCY, True),
    "backoff": (k.BACKOFF, False),
    "alerts": (k.ALERT, True),
    "aggregate": (AGGREGATE, False),
    "on": (HANDLER, True),
    "run": (k.RUN, False),
    "defaults": (k.DEFAULTS, False),
}
NAMED: dict[str, Table | None] = {
    "agents": k.AGENT,
    "workers": k.WORKER,
    "env": None,
    "inputs": None,
    "pools": None,
}
NAMES = st.sampled_from(["a", "b", "w", "p", "x", "A", "1X", "a b", "a" * 65, ""])


def _value_for(draw: st.DrawFn, key: str, depth: int) -> object:
    """Mostly the shape the key expects with random leaves, sometimes anything at all."""
    if draw(st.integers(0, 5)) == 0 or depth > 3:
        return draw(anything)
    if key in SUB_TABLES:
        table, many = SUB_TABLES[key]
        if many:
            return [
                _table(draw, table, depth + 1) if draw(st.booleans()) else draw(anything)
                for _ in range(draw(st.integers(0, 3)))
            ]
        return _table(draw, table, depth + 1)
    if key in NAMED:
        named = NAMED[key]
        return {
            name: _table(draw, named, depth + 1) if named is not None else draw(scalars)
            for name in draw(st.lists(NAMES, max_size=3, unique=True))
        }
    return draw(scalars)


def _table(draw: st.DrawFn, table: Table, depth: int) -> dict[str, object]:
    known = [key.name for key in table.keys]
    chosen = draw(st.lists(st.sampled_from(known) | st.sampled_from(WORDS), max_size=5, unique=True))
    return {key: _value_for(draw, key, depth) for key in chosen}


@st.composite
def wrong_plans(draw: st.DrawFn) -> dict[str, object]:
    return _table(draw, k.PLAN, 0)


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, object]:
    """A valid example with the value at one random key path replaced."""
    doc: Any = tomllib.loads(draw(st.sampled_from(sorted(examples.ALL.values()))))
    for _ in range(draw(st.integers(1, 3))):
        parent: Any = None
        key: Any = None
        node: Any = doc
        while isinstance(node, dict | list) and node and (parent is None or draw(st.integers(0, 3)) > 0):
            parent = node
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            node = node[key]
        if parent is not None:
            parent[key] = _value_for(draw, str(key), 2)
    assert isinstance(doc, dict)
    return doc


def _number(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)


def _string(text: str) -> str:
    # TOML basic strings allow neither raw control characters nor DEL; JSON escapes the first, not the last.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(value: object) -> str:
    if isinstance(value, bool | int | float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{_string(str(key))} = {_toml(v)}" for key, v in value.items()) + " }"


def _document(doc: dict[str, object], prefix: tuple[str, ...] = ()) -> str:
    """``doc`` as TOML, a [header] per nested table, as a person would write a plan."""
    lines = [f"[{'.'.join(_string(p) for p in prefix)}]"] if prefix else []
    lines += [f"{_string(key)} = {_toml(v)}" for key, v in doc.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n"
    for key, v in doc.items():
        if isinstance(v, dict):
            text += _document(v, (*prefix, key))
    return text


def _refused_well(doc: dict[str, object]) -> None:
    text = _document(doc)
    tomllib.loads(text)  # the writer itself must write TOML; the loader may still refuse what it says
    try:
        result: Plan | PlanError = parse_plan(text, file="plan.toml", base_dir=Path("/srv/p"))
    except PlanError as e:
        result = e
    if isinstance(result, Plan):
        return
    last = text.count("\n") + 1
    for problem in result.problems:
        shown = str(problem)
        assert shown.startswith("plan.toml"), shown
        assert shown.isprintable(), shown
        assert problem.line is None or 1 <= problem.line <= last, shown
        assert problem.line is not None or not problem.path, f"unlocated: {shown}"


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(wrong_plans())
def test_random_values_for_known_keys_at_every_level(doc: dict[str, object]) -> None:
    _refused_well(doc)


@FUZZ
@given(mutated_examples())
def test_valid_plans_with_one_value_replaced(doc: dict[str, object]) -> None:
    _refused_well(doc)
