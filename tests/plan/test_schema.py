"""The JSON Schema accepts the valid plans and rejects invalid ones; docs/plan.md covers every key."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from agentsup.plan import plan_schema
from agentsup.plan.keys import all_keys
from tests.plan import examples
from tests.plan.parsing import parse

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plan.md"


def _validator() -> Draft7Validator:
    schema = plan_schema()
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def _docs_example() -> str:
    m = re.search(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert m is not None, "docs/plan.md has no toml example"
    return m.group(1)


def test_schema_header() -> None:
    schema = plan_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["agents"]
    json.dumps(schema)


def _properties(node: object) -> list[tuple[str, dict[str, object]]]:
    """Every (name, schema) under any ``properties`` in ``node``, at any depth, except in the conditions
    (``if``) and consequences (``then``) of conditional rules, which only restate keys declared elsewhere."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            found.extend((name, sub) for name, sub in props.items() if isinstance(sub, dict))
        for key, value in node.items():
            if key not in ("if", "then"):
                found.extend(_properties(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_properties(value))
    return found


def test_every_key_has_a_description() -> None:
    props = _properties(plan_schema())
    assert {name for name, _ in props} >= {key.name for _, key in all_keys()}
    assert [name for name, sub in props if not sub.get("description")] == []


@pytest.mark.parametrize("name", sorted(examples.ALL))
def test_valid_plans_validate(name: str) -> None:
    text = examples.ALL[name]
    parse(text)
    assert list(_validator().iter_errors(tomllib.loads(text))) == []


def test_docs_example_loads_and_validates() -> None:
    text = _docs_example()
    parse(text)
    assert list(_validator().iter_errors(tomllib.loads(text))) == []


def _docs_plans() -> list[str]:
    """Every toml example of docs/plan.md that is a whole plan (it declares an agent)."""
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return [b for b in blocks if "[agents." in b]


@pytest.mark.parametrize("index", range(len(_docs_plans())))
def test_every_docs_plan_loads_and_validates(index: int) -> None:
    text = _docs_plans()[index]
    parse(text)
    assert list(_validator().iter_errors(tomllib.loads(text))) == []


_A = '[agents.a]\ncmd = "x"\n'
INVALID = {
    "unknown-key": _A + 'timout = "5s"\n',
    "unknown-table": '[agent.a]\ncmd = "x"\n[agents.b]\ncmd = "x"\n',
    "bad-enum": '[run]\non_failure = "stop"\n' + _A,
    "bad-when": _A + 'after = [{ agent = "b", when = "later" }]\n',
    "wrong-type": _A + 'retries = "3"\n',
    "bad-duration": _A + 'timeout = "10x"\n',
    "negative-duration": _A + "timeout = -1\n",
    "bad-done": _A + 'done = "exited"\n',
    "bad-agent-name": '[agents."a b"]\ncmd = "x"\n',
    "no-agents": '[run]\nname = "x"\n',
    "empty-agents": "[agents]\n",
    "cmd-and-argv": _A + 'argv = ["x"]\n',
    "exit-code-range": _A + "success_exit_codes = [256]\n",
    "env-name": _A + 'env = { "1X" = "y" }\n',
    "alert-without-match": _A + 'alerts = [{ severity = "info" }]\n',
    "bad-regex": _A + 'alerts = [{ match = "(" }]\n',
    "backoff-factor": _A + "backoff = { factor = 0.5 }\n",
    "max-parallel": "[run]\nmax_parallel = 0\n" + _A,
    "bad-run-name": '[run]\nname = "my run"\n' + _A,
    "min-free-memory": '[run]\nmin_free_memory = "2 GB"\n' + _A,
    "pool-size": "[pools]\ngpu = 0\n" + _A,
    "pool-name": '[pools]\n"a b" = 1\n' + _A,
    "input-value": "[inputs]\nx = [1]\n" + _A,
    "input-name": '[inputs]\n"a b" = "x"\n' + _A,
    "preset": _A + "preset = 3\n",
    "prompt-type": _A + "prompt = 3\n",
    "pool-type": _A + "pool = 1\n",
    "cmd-and-aggregate": _A + 'aggregate = { from = ["b"], strategy = "fusion" }\n',
    "argv-and-aggregate": '[agents.a]\nargv = ["x"]\naggregate = { from = ["b"], strategy = "fusion" }\n',
    "aggregate-strategy": '[agents.a]\naggregate = { from = ["b"], strategy = "mean" }\n',
    "aggregate-without-from": '[agents.a]\naggregate = { strategy = "fusion" }\n',
    "aggregate-empty-from": '[agents.a]\naggregate = { from = [], strategy = "fusion" }\n',
    "aggregate-require-all": '[agents.a.aggregate]\nfrom = ["b"]\nstrategy = "fusion"\nrequire_all = 1\n',
    "aggregate-in-defaults": '[defaults.aggregate]\nfrom = ["a"]\nstrategy = "fusion"\n' + _A,
    "spawns-path": _A + 'spawns = "out/t.json"\n',
    "spawns-dots": _A + 'spawns = ".."\n',
    "on-failure-spawn-empty": _A + 'on_failure = "spawn:"\n',
    "on-failure-spawn-in-run": '[run]\non_failure = "spawn:w"\n' + _A,
    "idle-after-zero": _A + "idle_after = 0\n",
    "max-rss-unit": _A + 'max_rss = "10XB"\n',
    "max-rss-zero": _A + "max_rss = 0\n",
    "max-rss-float": _A + "max_rss = 1.5\n",
    "max-cpu-zero": _A + "max_cpu = 0\n",
    "kill-over-rss": _A + 'kill_over_rss = "lots"\n',
    "workers-dependency-name": _A + 'after = ["b.worker"]\n',
    "worker-after": _A + '[workers.w]\ncmd = "x"\nafter = ["a"]\n',
    "worker-aggregate": _A + '[workers.w]\naggregate = { from = ["a"], strategy = "fusion" }\n',
    "worker-name": _A + '[workers."a b"]\ncmd = "x"\n',
    "worker-cmd-and-argv": _A + '[workers.w]\ncmd = "x"\nargv = ["x"]\n',
    "on-not-array": 'on = { event = "alert", do = "stop" }\n' + _A,
    "on-without-event": '[[on]]\ndo = "stop"\n' + _A,
    "on-without-do": '[[on]]\nevent = "alert"\n' + _A,
    "on-bad-event": '[[on]]\nevent = "agent.exploded"\ndo = "stop"\n' + _A,
    "on-severity-filter": '[[on]]\nevent = "agent.failed"\ndo = "stop"\nseverity = "info"\n' + _A,
    "on-name-filter": '[[on]]\nevent = "alert"\ndo = "stop"\nname = "x"\n' + _A,
    "on-unused-arg": '[[on]]\nevent = "alert"\ndo = "notify"\nmessage = "m"\ntext = "t"\n' + _A,
    "on-spawn-without-worker": '[[on]]\nevent = "alert"\ndo = "spawn"\n' + _A,
    "on-send-without-text": '[[on]]\nevent = "alert"\ndo = "send"\n' + _A,
    "on-throttle-zero": '[[on]]\nevent = "alert"\ndo = "throttle"\nmax_parallel = 0\n' + _A,
    "on-throttle-for": '[[on]]\nevent = "alert"\ndo = "throttle"\nmax_parallel = 1\nfor = "x"\n' + _A,
    "on-unknown-key": '[[on]]\nevent = "alert"\ndo = "stop"\nwhen = "x"\n' + _A,
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_plans_do_not_validate(name: str) -> None:
    assert list(_validator().iter_errors(tomllib.loads(INVALID[name]))) != []


def test_docs_cover_every_key() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    # Tables of the file itself appear as headers: `[run]`, `[agents.NAME]`, `[[on]]`.
    needles = {
        (f"`[{key.name}", f"`[[{key.name}") if where == "" else (f"`{key.name}`",)
        for where, key in all_keys()
    }
    missing = sorted(n[0] for n in needles if not any(spelling in docs for spelling in n))
    assert missing == []
