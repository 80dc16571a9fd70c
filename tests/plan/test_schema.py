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
    """Every (name, schema) under any ``properties`` in ``node``, at any depth."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            found.extend((name, sub) for name, sub in props.items() if isinstance(sub, dict))
        for value in node.values():
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


INVALID = {
    "unknown-key": '[agents.a]\ncmd = "x"\ntimout = "5s"\n',
    "unknown-table": '[agent.a]\ncmd = "x"\n[agents.b]\ncmd = "x"\n',
    "bad-enum": '[run]\non_failure = "stop"\n[agents.a]\ncmd = "x"\n',
    "bad-when": '[agents.a]\ncmd = "x"\nafter = [{ agent = "b", when = "later" }]\n',
    "wrong-type": '[agents.a]\ncmd = "x"\nretries = "3"\n',
    "bad-duration": '[agents.a]\ncmd = "x"\ntimeout = "10x"\n',
    "negative-duration": '[agents.a]\ncmd = "x"\ntimeout = -1\n',
    "bad-done": '[agents.a]\ncmd = "x"\ndone = "exited"\n',
    "bad-agent-name": '[agents."a b"]\ncmd = "x"\n',
    "no-agents": '[run]\nname = "x"\n',
    "empty-agents": "[agents]\n",
    "cmd-and-argv": '[agents.a]\ncmd = "x"\nargv = ["x"]\n',
    "exit-code-range": '[agents.a]\ncmd = "x"\nsuccess_exit_codes = [256]\n',
    "env-name": '[agents.a]\ncmd = "x"\nenv = { "1X" = "y" }\n',
    "alert-without-match": '[agents.a]\ncmd = "x"\nalerts = [{ severity = "info" }]\n',
    "bad-regex": '[agents.a]\ncmd = "x"\nalerts = [{ match = "(" }]\n',
    "backoff-factor": '[agents.a]\ncmd = "x"\nbackoff = { factor = 0.5 }\n',
    "max-parallel": '[run]\nmax_parallel = 0\n[agents.a]\ncmd = "x"\n',
    "bad-run-name": '[run]\nname = "my run"\n[agents.a]\ncmd = "x"\n',
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_plans_do_not_validate(name: str) -> None:
    assert list(_validator().iter_errors(tomllib.loads(INVALID[name]))) != []


def test_docs_cover_every_key() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    # Tables of the file itself appear as headers: `[run]`, `[agents.NAME]`.
    needles = {f"`[{key.name}" if where == "" else f"`{key.name}`" for where, key in all_keys()}
    missing = sorted(n for n in needles if n not in docs)
    assert missing == []
