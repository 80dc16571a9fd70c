"""No input makes the loader raise anything but PlanError: random text, random documents, broken plans."""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsup.plan import Plan, PlanError, parse_plan
from agentsup.plan.keys import all_keys
from tests.plan import examples

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN_WORDS = sorted(
    {key.name for _, key in all_keys()}
    | {"a", "b", "build", "review", "exit", "file", "pattern:x", "pattern:(", "30s", "1h30m", "-1s", "10x"}
    | {"succeeded", "finished", "failed", "started", "halt", "continue", "info", "warning", "critical"}
    | {"a.workers", "spawn:w", "spawn:", "vote", "weighted", "fusion", "shell", "2GiB", "500MB", "10XB"}
    | {"agent.failed", "alert", "external", "spawn", "send", "notify", "throttle", "stop", "{{ inputs.x }}"}
)

FRAGMENTS = [
    "[agents.a]\n",
    "[agents.b]\n",
    "[run]\n",
    "[defaults]\n",
    "[[agents.a.alerts]]\n",
    "[[on]]\n",
    "[workers.w]\n",
    "[inputs]\n",
    "[pools]\n",
    "{{",
    "}}",
    "{{ agents.a.output }}",
    "\n",
    " = ",
    "=",
    '"',
    "'",
    '"""',
    "'''",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\\",
    "\\u0000",
    'cmd = "x"\n',
    'after = ["a"]\n',
    "after = [{ agent = 'a' }]\n",
    "timeout = ",
    "1",
    "-1",
    "1.5",
    "true",
    "nan",
    "inf",
    "1979-05-27",
    "07:32:00",
    "1979-05-27T07:32:00Z",
    *KNOWN_WORDS,
]

toml_ish_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map("".join)

keys = st.sampled_from(KNOWN_WORDS) | st.text(max_size=6)
scalars = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.sampled_from(KNOWN_WORDS)
    | st.text(max_size=10)
    | st.dates()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
agent_tables = st.dictionaries(st.sampled_from(KNOWN_WORDS) | keys, values, max_size=6)
documents = st.dictionaries(
    st.sampled_from(["run", "defaults", "agents", "agent", "x", "inputs", "pools", "workers", "on"]),
    st.dictionaries(st.sampled_from(["a", "b", "build", "review", "c d"]) | keys, agent_tables, max_size=4)
    | values,
    max_size=4,
)

NAMES = ["a", "b", "build", "review", "c d", "a.workers", "b.workers"]
names = st.sampled_from(NAMES)
sizes = st.sampled_from(["2GiB", "500MB", "512k", "0", "10XB", "", "1.5g"]) | st.integers(-1, 10**10)
templates = st.lists(
    st.sampled_from(
        ["x ", "{{ ", " }}", "agents.", "a", "b", ".output", "inputs.x", "task.id", "event.", "{{}}"]
    ),
    max_size=6,
).map("".join)
durations = st.sampled_from(["30s", "1h30m", "500ms", "0s", "10x", "", "1d"]) | st.integers(-1, 10**6)
plan_values: dict[str, st.SearchStrategy[object]] = {
    "cmd": st.sampled_from(["true", "", "echo \0"]) | templates,
    "argv": st.lists(st.sampled_from(["echo", "x", ""]), max_size=3),
    "cwd": st.sampled_from(["sub", "/abs", "..", ""]),
    "env": st.dictionaries(st.sampled_from(["A", "B_1", "1X", ""]), scalars, max_size=3),
    "after": st.lists(
        names | st.fixed_dictionaries({"agent": names}, optional={"when": st.sampled_from(KNOWN_WORDS)}),
        max_size=3,
    ),
    "timeout": durations,
    "retries": st.integers(-2, 5),
    "backoff": durations
    | st.fixed_dictionaries(
        {},
        optional={
            "initial": durations,
            "factor": st.floats(0, 5),
            "max": durations,
            "jitter": st.floats(-1, 2),
        },
    ),
    "success_exit_codes": st.lists(st.integers(-1, 256), max_size=3),
    "on_failure": st.sampled_from(["halt", "continue", "stop", "spawn:w", "spawn:v", "spawn:"]),
    "alerts": st.lists(
        st.fixed_dictionaries(
            {"match": st.sampled_from(["ERR", "(", "", "a+"])},
            optional={"severity": st.sampled_from(["info", "critical", "fatal"])},
        ),
        max_size=2,
    ),
    "done": st.sampled_from(["exit", "file", "pattern:ok", "pattern:(", "pattern:", "never"]),
    "prompt": templates,
    "preset": st.sampled_from(["shell", "claude", ""]),
    "pool": st.sampled_from(["p", "q", "a b"]),
    "aggregate": st.fixed_dictionaries(
        {},
        optional={
            "from": st.lists(names, max_size=3),
            "strategy": st.sampled_from(["vote", "weighted", "fusion", "mean"]),
            "field": st.sampled_from(["verdict", ""]),
            "confidence": st.sampled_from(["c", ""]),
            "require_all": st.booleans() | st.integers(0, 1),
        },
    ),
    "spawns": st.sampled_from(["t.json", "a/b", "..", ""]),
    "idle_after": durations,
    "max_rss": sizes,
    "max_cpu": st.floats(-1, 400) | st.integers(-1, 400),
    "kill_over_rss": sizes,
}


handlers = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["agent.failed", "alert", "external", "resource", "nope"]),
        "do": st.sampled_from(["spawn", "restart", "kill", "send", "notify", "throttle", "stop", "nope"]),
        "agent": st.sampled_from(["a*", ""]),
        "severity": st.sampled_from(["info", "critical", "fatal"]),
        "match": st.sampled_from(["x", "("]),
        "name": st.sampled_from(["deploy-*", ""]),
        "worker": st.sampled_from(["w", "v", "a b"]),
        "target": names,
        "text": templates,
        "message": templates,
        "max_parallel": st.integers(-1, 3),
        "for": durations,
    },
)


@st.composite
def plans(draw: st.DrawFn) -> dict[str, object]:
    """Plan-shaped documents: mostly known keys with plausible values, so the deep checks run too."""

    def agent_table() -> dict[str, object]:
        table: dict[str, object] = {"cmd": "true"} if draw(st.booleans()) else {}
        for key in draw(st.lists(st.sampled_from(sorted(plan_values)), max_size=4, unique=True)):
            table[key] = (
                draw(plan_values[key] | values) if draw(st.integers(0, 9)) == 0 else draw(plan_values[key])
            )
        return table

    doc: dict[str, object] = {
        "agents": {name: agent_table() for name in draw(st.lists(names, min_size=1, max_size=5, unique=True))}
    }
    if draw(st.booleans()):
        doc["defaults"] = agent_table()
    if draw(st.booleans()):
        doc["run"] = {"max_parallel": draw(st.integers(-1, 3)), "on_failure": draw(plan_values["on_failure"])}
    if draw(st.booleans()):
        doc["workers"] = {
            name: agent_table() for name in draw(st.lists(st.sampled_from(["w", "v"]), unique=True))
        }
    if draw(st.booleans()):
        doc["pools"] = draw(
            st.dictionaries(st.sampled_from(["p", "q", "a b"]), st.integers(-1, 3), max_size=2)
        )
    if draw(st.booleans()):
        doc["inputs"] = draw(st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2))
    if draw(st.booleans()):
        doc["on"] = draw(st.lists(handlers, max_size=3))
    return doc


def _key(key: str) -> str:
    return _string(key)


def _string(text: str) -> str:
    # TOML basic strings allow neither raw control characters nor DEL; JSON escapes the first, not the last.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"


def _document(doc: dict[str, object], prefix: tuple[str, ...] = ()) -> str:
    """``doc`` as TOML, with a [header] per nested table, as a person would write a plan."""
    lines = [f"[{'.'.join(_key(k) for k in prefix)}]"] if prefix else []
    lines += [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n"
    for k, v in doc.items():
        if isinstance(v, dict):
            text += _document(v, (*prefix, k))
    return text


def _load(text: str) -> Plan | PlanError:
    try:
        return parse_plan(text, file="plan.toml", base_dir=Path("/srv/p"))
    except PlanError as e:
        error = e
    assert error.problems
    lines = text.count("\n") + 1
    for problem in error.problems:
        assert problem.line is None or 1 <= problem.line <= lines, problem
        assert str(problem).startswith("plan.toml")
    return error


@FUZZ
@given(toml_ish_text)
def test_random_text(text: str) -> None:
    _load(text)


@FUZZ
@given(documents)
def test_random_documents(doc: dict[str, object]) -> None:
    text = _document(doc)
    tomllib.loads(text)  # the serialiser itself must write valid TOML
    _load(text)


@FUZZ
@given(st.data())
def test_broken_valid_plans(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(sorted(examples.ALL.values())))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        cut = data.draw(st.integers(min_value=0, max_value=5))
        insert = data.draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3))
        text = text[:at] + insert + text[at + cut :]
    _load(text)


@FUZZ
@given(plans())
def test_plan_shaped_documents(doc: dict[str, object]) -> None:
    text = _document(doc)
    tomllib.loads(text)
    _load(text)
