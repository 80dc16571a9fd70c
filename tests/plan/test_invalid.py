"""Every kind of plan problem, as the exact lines a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.plan import PlanError, Problem, load_plan
from tests.plan.parsing import problems_of

CASES: list[tuple[str, str, list[str]]] = [
    (
        "invalid-toml",
        """\
        [agents.a]
        cmd = "x"
        retries =
        """,
        ["plan.toml:3:10: invalid TOML: Invalid value"],
    ),
    (
        "invalid-toml-at-end",
        '[agents.a]\ncmd = "x',
        ["plan.toml:2:9: invalid TOML: Unterminated string"],
    ),
    (
        "duplicate-table",
        """\
        [agents.a]
        cmd = "x"
        [agents.a]
        cmd = "y"
        """,
        ["plan.toml:3:10: invalid TOML: Cannot declare ('agents', 'a') twice"],
    ),
    (
        "wrong-type",
        """\
        [agents.a]
        cmd = "x"
        retries = "3"
        timeout = true
        """,
        [
            'plan.toml:3: agents.a.retries: expected a non-negative integer, found a string ("3")',
            "plan.toml:4: agents.a.timeout: expected a duration "
            '(e.g. "30s", "10m", "1h30m" or a number of seconds), found a boolean (true)',
        ],
    ),
    (
        "unknown-key-close",
        """\
        [agents.a]
        cmd = "x"
        timout = "5s"
        """,
        ['plan.toml:3: agents.a.timout: unknown key "timout" — did you mean "timeout"?'],
    ),
    (
        "unknown-key-far",
        """\
        [agents.a]
        cmd = "x"
        colour = "red"
        """,
        ['plan.toml:3: agents.a.colour: unknown key "colour"'],
    ),
    (
        "unknown-table",
        """\
        [agent.a]
        cmd = "x"
        """,
        [
            'plan.toml:1: agent: unknown table "agent" — did you mean "agents"?',
            'plan.toml: missing required table "agents"',
        ],
    ),
    (
        "unknown-top-level-key",
        """\
        name = "x"
        [agents.a]
        cmd = "x"
        """,
        ['plan.toml:1: name: unknown key "name"'],
    ),
    (
        "unknown-run-key",
        """\
        [run]
        max_paralel = 2
        [agents.a]
        cmd = "x"
        """,
        ['plan.toml:2: run.max_paralel: unknown key "max_paralel" — did you mean "max_parallel"?'],
    ),
    (
        "unknown-dependency",
        """\
        [agents.review]
        cmd = "x"
        [agents.fix]
        cmd = "y"
        after = ["reviw"]
        """,
        ['plan.toml:5: agents.fix.after[0]: unknown agent "reviw" — did you mean "review"?'],
    ),
    (
        "self-dependency",
        """\
        [agents.a]
        cmd = "x"
        after = ["a"]
        """,
        ['plan.toml:3: agents.a.after[0]: agent "a" depends on itself'],
    ),
    (
        "cycle",
        """\
        [agents.a]
        cmd = "x"
        after = ["c"]
        [agents.b]
        cmd = "x"
        after = ["a"]
        [agents.c]
        cmd = "x"
        after = [{ agent = "b", when = "finished" }]
        [agents.d]
        cmd = "x"
        after = ["a"]
        """,
        ["plan.toml:3: agents.a.after[0]: dependency cycle: a → b → c → a"],
    ),
    (
        "two-cycles",
        """\
        [agents.a]
        cmd = "x"
        after = ["ok", "b"]
        [agents.b]
        cmd = "x"
        after = ["a"]
        [agents.ok]
        cmd = "x"
        [agents.c]
        cmd = "x"
        after = [
          "ok",
          "d",
        ]
        [agents.d]
        cmd = "x"
        after = ["c"]
        """,
        [
            "plan.toml:3: agents.a.after[1]: dependency cycle: a → b → a",
            "plan.toml:13: agents.c.after[1]: dependency cycle: c → d → c",
        ],
    ),
    (
        "duplicate-dependency",
        """\
        [agents.a]
        cmd = "x"
        [agents.b]
        cmd = "x"
        after = ["a", { agent = "a", when = "failed" }]
        """,
        ['plan.toml:5: agents.b.after[1]: duplicate dependency on "a" (already at after[0])'],
    ),
    (
        "bad-regexes",
        """\
        [agents.build]
        cmd = "make"
        done = "pattern:[unclosed"
        [[agents.build.alerts]]
        match = "ERROR"
        [[agents.build.alerts]]
        match = "(oops"
        severity = "critical"
        """,
        [
            'plan.toml:3: agents.build.done: invalid regex "[unclosed": '
            "unterminated character set at position 0",
            'plan.toml:7: agents.build.alerts[1].match: invalid regex "(oops": '
            "missing ), unterminated subpattern at position 0",
        ],
    ),
    (
        "bad-durations",
        """\
        [defaults]
        timeout = "10x"
        [agents.a]
        cmd = "x"
        [agents.b]
        cmd = "x"
        timeout = 0
        [agents.c]
        cmd = "x"
        timeout = "30m1h"
        """,
        [
            'plan.toml:2: defaults.timeout: invalid duration "10x": expected a number of seconds or a number '
            'with a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"',
            "plan.toml:7: agents.b.timeout: must be greater than 0, found 0",
            'plan.toml:10: agents.c.timeout: invalid duration "30m1h": expected a number of seconds or a '
            'number with a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"',
        ],
    ),
    (
        "cmd-and-argv",
        """\
        [agents.both]
        cmd = "x"
        argv = ["x"]
        [agents.neither]
        retries = 1
        [agents.empty]
        cmd = "  "
        [agents.empty-argv]
        argv = []
        """,
        [
            'plan.toml:1: agents.both: set only one of "cmd" and "argv", not both',
            'plan.toml:4: agents.neither: missing "cmd" or "argv": set exactly one of them',
            "plan.toml:7: agents.empty.cmd: must not be empty",
            "plan.toml:9: agents.empty-argv.argv: must not be empty",
        ],
    ),
    (
        "nul-characters",
        """\
        [agents.a]
        cmd = "echo \\u0000"
        cwd = "sub\\u0000dir"
        env = { X = "a\\u0000b" }
        [agents.b]
        argv = ["echo", "\\u0000"]
        """,
        [
            "plan.toml:2: agents.a.cmd: contains a NUL character",
            "plan.toml:3: agents.a.cwd: contains a NUL character",
            "plan.toml:4: agents.a.env.X: contains a NUL character",
            "plan.toml:6: agents.b.argv[1]: contains a NUL character",
        ],
    ),
    (
        "bad-names",
        """\
        [run]
        name = "my run"
        [agents."bad name"]
        cmd = "x"
        [agents.-dash]
        cmd = "x"
        """,
        [
            'plan.toml:2: run.name: invalid name "my run": use 1 to 64 letters, digits, "_" or "-", '
            "starting with a letter or digit",
            'plan.toml:3: agents."bad name": invalid agent name "bad name": use 1 to 64 letters, digits, '
            '"_" or "-", starting with a letter or digit',
            'plan.toml:5: agents.-dash: invalid agent name "-dash": use 1 to 64 letters, digits, "_" or "-", '
            "starting with a letter or digit",
        ],
    ),
    (
        "negative-retries-and-max-parallel",
        """\
        [run]
        max_parallel = 0
        [agents.a]
        cmd = "x"
        retries = -1
        """,
        [
            "plan.toml:2: run.max_parallel: expected a positive integer, found 0",
            "plan.toml:5: agents.a.retries: expected a non-negative integer, found -1",
        ],
    ),
    (
        "bad-env",
        """\
        [agents.a]
        cmd = "x"
        [agents.a.env]
        1X = "a"
        LIST = [1]
        OK = 3
        """,
        [
            'plan.toml:4: agents.a.env.1X: invalid environment variable name "1X": use letters, digits and '
            '"_", not starting with a digit',
            "plan.toml:5: agents.a.env.LIST: expected a string, number or boolean, found an array",
        ],
    ),
    (
        "bad-after-entries",
        """\
        [agents.a]
        cmd = "x"
        [agents.b]
        cmd = "x"
        after = [3, { agent = "a", when = "succeded" }, { when = "started" }, { agent = "a", if = "x" }]
        [agents.c]
        cmd = "x"
        after = "a"
        """,
        [
            "plan.toml:5: agents.b.after[0]: expected an agent name or a table "
            '{ agent = "NAME", when = "succeeded" }, found an integer (3)',
            'plan.toml:5: agents.b.after[1].when: invalid value "succeded": expected one of "succeeded", '
            '"finished", "failed", "started" — did you mean "succeeded"?',
            'plan.toml:5: agents.b.after[2]: missing required key "agent"',
            'plan.toml:5: agents.b.after[3].if: unknown key "if"',
            'plan.toml:8: agents.c.after: expected an array of agent names, found a string ("a"): '
            'write after = ["a"]',
        ],
    ),
    (
        "bad-backoff",
        """\
        [agents.a]
        cmd = "x"
        backoff = { initial = "10s", factor = 0.5, jitter = 2, maxx = "1m" }
        [agents.b]
        cmd = "x"
        backoff = { initial = "10s", max = "5s" }
        [agents.c]
        cmd = "x"
        backoff = [1]
        """,
        [
            "plan.toml:3: agents.a.backoff.factor: expected a number at least 1, found 0.5",
            "plan.toml:3: agents.a.backoff.jitter: expected a number at least 0 and at most 1, found 2",
            'plan.toml:3: agents.a.backoff.maxx: unknown key "maxx" — did you mean "max"?',
            "plan.toml:6: agents.b.backoff.max: max (5s) is less than initial (10s)",
            "plan.toml:9: agents.c.backoff: expected a duration (the first delay) or a table "
            "{ initial, factor, max, jitter }, found an array",
        ],
    ),
    (
        "bad-exit-codes-and-enums",
        """\
        [run]
        on_failure = "stop"
        [agents.a]
        cmd = "x"
        success_exit_codes = []
        on_failure = "contineu"
        [agents.b]
        cmd = "x"
        success_exit_codes = [0, 256]
        done = "exited"
        """,
        [
            'plan.toml:2: run.on_failure: invalid value "stop": expected one of "halt", "continue"',
            "plan.toml:5: agents.a.success_exit_codes: must not be empty",
            'plan.toml:6: agents.a.on_failure: invalid value "contineu": expected one of "halt", "continue" '
            '— did you mean "continue"?',
            "plan.toml:9: agents.b.success_exit_codes[1]: expected an integer from 0 to 255, found 256",
            'plan.toml:10: agents.b.done: invalid value "exited": expected "exit", "file" or "pattern:REGEX"',
        ],
    ),
    (
        "bad-alerts",
        """\
        [agents.a]
        cmd = "x"
        alerts = [
          { severity = "info" },
          { match = "x", severity = "fatal" },
          "ERROR",
        ]
        """,
        [
            'plan.toml:4: agents.a.alerts[0]: missing required key "match"',
            'plan.toml:5: agents.a.alerts[1].severity: invalid value "fatal": expected one of "info", '
            '"warning", "critical"',
            'plan.toml:6: agents.a.alerts[2]: expected a table, found a string ("ERROR")',
        ],
    ),
    (
        "no-agents-table",
        """\
        [run]
        name = "x"
        """,
        ['plan.toml: missing required table "agents"'],
    ),
    (
        "empty-agents",
        """\
        [agents]
        """,
        ["plan.toml:1: agents: at least one agent is required, e.g. [agents.NAME]"],
    ),
    (
        "agent-not-a-table",
        """\
        [agents]
        a = 3
        """,
        ["plan.toml:2: agents.a: expected a table, found an integer (3)"],
    ),
    (
        "inherited-after",
        """\
        [defaults]
        after = ["setup", "nosuch"]
        [agents.setup]
        cmd = "x"
        after = []
        [agents.a]
        cmd = "x"
        [agents.b]
        cmd = "x"
        """,
        ['plan.toml:2: defaults.after[1]: unknown agent "nosuch"'],
    ),
    (
        "inherited-self-dependency",
        """\
        [defaults]
        after = ["setup"]
        [agents.setup]
        cmd = "x"
        [agents.a]
        cmd = "x"
        """,
        [
            'plan.toml:2: defaults.after[0]: agent "setup" depends on itself '
            "(it inherits after from [defaults])"
        ],
    ),
    (
        "many-problems-in-file-order",
        """\
        [run]
        on_failure = "halt"
        max_parallel = "2"

        [agents.build]
        cmd = ""
        retries = -2

        [agents.review]
        argv = ["review"]
        after = ["biuld", "review"]
        timeout = "forever"

        [agents.deploy]
        cmd = "deploy"
        alerts = [{ match = "*" }]
        """,
        [
            'plan.toml:3: run.max_parallel: expected a positive integer, found a string ("2")',
            "plan.toml:6: agents.build.cmd: must not be empty",
            "plan.toml:7: agents.build.retries: expected a non-negative integer, found -2",
            'plan.toml:11: agents.review.after[0]: unknown agent "biuld" — did you mean "build"?',
            'plan.toml:11: agents.review.after[1]: agent "review" depends on itself',
            'plan.toml:12: agents.review.timeout: invalid duration "forever": expected a number of seconds '
            'or a number with a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"',
            'plan.toml:16: agents.deploy.alerts[0].match: invalid regex "*": nothing to repeat at position 0',
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_plan_reports_every_problem(text: str, expected: list[str]) -> None:
    assert problems_of(text) == expected


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PlanError) as caught:
        load_plan(missing)
    assert caught.value.problems == (
        Problem(str(missing), "", "cannot read the plan: No such file or directory"),
    )


def test_non_utf8_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(b'[agents.a]\ncmd = "\xff"\n')
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}: not valid UTF-8 (byte 18)"]


def test_deep_nesting_is_one_problem() -> None:
    text = "x = " + "[" * 5000 + "]" * 5000
    assert problems_of(text) == ["plan.toml: invalid TOML: values nested too deeply"]


def test_plan_error_message_lists_all_problems() -> None:
    error = PlanError((Problem("p.toml", "a", "one", 1), Problem("p.toml", "", "two")))
    assert str(error) == "p.toml:1: a: one\np.toml: two"
