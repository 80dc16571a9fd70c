"""Every kind of plan problem, as the exact lines a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.plan import PlanError, Problem, load_plan, parse_plan
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
            'plan.toml:4: agents.neither: missing "cmd", "argv" or "aggregate": set exactly one of them',
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
            'plan.toml:6: agents.a.on_failure: invalid value "contineu": expected "halt", "continue" or '
            '"spawn:TEMPLATE" — did you mean "continue"?',
            "plan.toml:9: agents.b.success_exit_codes[1]: expected an integer from 0 to 255, found 256",
            'plan.toml:10: agents.b.done: invalid value "exited": expected "exit", "file", "pattern:REGEX", '
            '"turn" or "idle:DURATION"',
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
        "bad-run-resources-pools-and-inputs",
        """\
        [run]
        min_free_memory = "2 GB"
        [pools]
        gpu = 0
        "bad name" = 1
        cpu = "2"
        [inputs]
        list = [1]
        "bad name" = "x"
        nul = "a\\u0000"
        ok = 1.5
        [agents.a]
        cmd = "x"
        """,
        [
            'plan.toml:2: run.min_free_memory: invalid size "2 GB": expected a number of bytes or a number '
            'with a unit (KB, MB, GB, KiB, MiB, GiB, k, m, g), e.g. "500MB", "2GiB"',
            "plan.toml:4: pools.gpu: expected a positive integer, found 0",
            'plan.toml:5: pools."bad name": invalid pool name "bad name": use 1 to 64 letters, digits, '
            '"_" or "-", starting with a letter or digit',
            'plan.toml:6: pools.cpu: expected a positive integer, found a string ("2")',
            "plan.toml:8: inputs.list: expected a string, number or boolean, found an array",
            'plan.toml:9: inputs."bad name": invalid input name "bad name": use 1 to 64 letters, digits, "_" '
            'or "-", starting with a letter or digit',
            "plan.toml:10: inputs.nul: contains a NUL character",
        ],
    ),
    (
        "unknown-pools-and-presets",
        """\
        [defaults]
        pool = "gpus"
        [pools]
        gpu = 1
        [agents.a]
        cmd = "x"
        preset = "claud"
        [agents.b]
        cmd = "x"
        pool = "cpu"
        """,
        [
            'plan.toml:2: defaults.pool: unknown pool "gpus" — did you mean "gpu"?',
            'plan.toml:7: agents.a.preset: unknown preset "claud": expected one of "shell", "claude", '
            '"codex", "gemini", "aider" — did you mean "claude"?',
            'plan.toml:10: agents.b.pool: unknown pool "cpu" — did you mean "gpu"?',
        ],
    ),
    (
        "pool-without-pools",
        """\
        [agents.a]
        cmd = "x"
        pool = "llm"
        """,
        ['plan.toml:3: agents.a.pool: unknown pool "llm": declare it in [pools]'],
    ),
    (
        "bad-aggregates",
        """\
        [defaults]
        aggregate = { from = ["a"], strategy = "fusion" }
        [agents.a]
        cmd = "x"
        [agents.b]
        cmd = "x"
        aggregate = { from = ["a"], strategy = "fusion" }
        [agents.c]
        aggregate = { from = ["a", "nope", "c", "a"], strategy = "vote", confidence = "w" }
        [agents.d]
        aggregate = { from = [], strategy = "fusion", field = "x", require_all = "yes" }
        [agents.e]
        aggregate = { strategy = "average" }
        """,
        [
            'plan.toml:2: defaults.aggregate: "aggregate" is not inherited: set it in the aggregating '
            "agent's table",
            'plan.toml:5: agents.b: set only one of "cmd" and "aggregate", not both',
            'plan.toml:9: agents.c.aggregate.from[3]: duplicate source "a" (already at from[0])',
            'plan.toml:9: agents.c.aggregate.confidence: only used by strategy = "weighted"',
            'plan.toml:9: agents.c.aggregate: missing required key "field" for strategy = "vote": the result '
            "field voted on",
            'plan.toml:9: agents.c.aggregate.from[1]: unknown agent "nope"',
            'plan.toml:9: agents.c.aggregate.from[2]: agent "c" depends on itself',
            "plan.toml:11: agents.d.aggregate.from: must not be empty",
            'plan.toml:11: agents.d.aggregate.require_all: expected true or false, found a string ("yes")',
            'plan.toml:11: agents.d.aggregate.field: only used by strategy = "vote" or "weighted"',
            'plan.toml:13: agents.e.aggregate.strategy: invalid value "average": expected one of "vote", '
            '"weighted", "fusion"',
            'plan.toml:13: agents.e.aggregate: missing required key "from"',
        ],
    ),
    (
        "bad-worker-templates",
        """\
        [workers.w]
        cmd = "x"
        after = ["a"]
        aggregate = { from = ["a"], strategy = "fusion" }
        [workers.v]
        retries = 1
        [workers."bad name"]
        cmd = "x"
        [workers.both]
        cmd = "x"
        argv = ["x"]
        [agents.a]
        cmd = "x"
        """,
        [
            'plan.toml:3: workers.w.after: a worker template has no "after": each subtask lists its own in '
            "the subtasks file",
            "plan.toml:4: workers.w.aggregate: a worker template cannot aggregate: aggregate in an "
            "[agents.NAME] table",
            'plan.toml:5: workers.v: missing "cmd" or "argv": set exactly one of them',
            'plan.toml:7: workers."bad name": invalid worker template name "bad name": use 1 to 64 letters, '
            'digits, "_" or "-", starting with a letter or digit',
            'plan.toml:9: workers.both: set only one of "cmd" and "argv", not both',
        ],
    ),
    (
        "bad-spawns",
        """\
        [agents.a]
        cmd = "x"
        spawns = "out/subtasks.json"
        [agents.b]
        cmd = "x"
        spawns = ".."
        [agents.c]
        cmd = "x"
        spawns = ""
        [agents.d]
        cmd = "x"
        spawns = "subtasks.json"
        """,
        [
            "plan.toml:3: agents.a.spawns: expected a plain file name (no directory), found "
            '"out/subtasks.json"',
            'plan.toml:6: agents.b.spawns: expected a plain file name (no directory), found ".."',
            "plan.toml:9: agents.c.spawns: must not be empty",
            "plan.toml:12: agents.d.spawns: no [workers.TYPE] templates to run the subtasks with",
        ],
    ),
    (
        "bad-workers-dependencies",
        """\
        [agents.m]
        cmd = "x"
        spawns = "subtasks.json"
        [agents.n]
        cmd = "x"
        [agents.j]
        cmd = "x"
        after = [
          "m.workers", "n.workers", "x.workers", "j.workers", { agent = "m.workers", when = "failed" }, "m",
        ]
        [agents.k]
        cmd = "x"
        after = ["k b.workers", ".workers"]
        [workers.w]
        cmd = "x"
        """,
        [
            'plan.toml:9: agents.j.after[1]: "n.workers" waits for the workers of "n", which sets no '
            '"spawns"',
            'plan.toml:9: agents.j.after[2]: unknown agent "x"',
            'plan.toml:9: agents.j.after[3]: agent "j" depends on itself',
            'plan.toml:9: agents.j.after[4]: duplicate dependency on "m.workers" (already at after[0])',
            'plan.toml:13: agents.k.after[0]: invalid name "k b.workers": use 1 to 64 letters, digits, '
            '"_" or "-", starting with a letter or digit (or "NAME.workers")',
            'plan.toml:13: agents.k.after[1]: invalid name ".workers": use 1 to 64 letters, digits, "_" '
            'or "-", starting with a letter or digit (or "NAME.workers")',
        ],
    ),
    (
        "bad-recovery",
        """\
        [agents.m]
        cmd = "x"
        on_failure = "spawn:fixr"
        [agents.n]
        cmd = "x"
        on_failure = "spawn:"
        [agents.o]
        cmd = "x"
        on_failure = "spawn:nothing"
        [workers.fixer]
        cmd = "x"
        on_failure = "spawn:fixer2"
        [workers.fixer2]
        cmd = "x"
        on_failure = "spawn:fixer"
        [workers.again]
        cmd = "x"
        on_failure = "spawn:again"
        """,
        [
            'plan.toml:3: agents.m.on_failure: unknown worker template "fixr" — did you mean "fixer"?',
            'plan.toml:6: agents.n.on_failure: invalid worker template name "": use 1 to 64 letters, digits, '
            '"_" or "-", starting with a letter or digit',
            'plan.toml:9: agents.o.on_failure: unknown worker template "nothing": declare it as '
            "[workers.nothing]",
            "plan.toml:12: workers.fixer.on_failure: recovery loop: fixer → fixer2 → fixer (each failure "
            "would spawn the next, endlessly)",
            "plan.toml:18: workers.again.on_failure: recovery loop: again → again (each failure would spawn "
            "the next, endlessly)",
        ],
    ),
    (
        "bad-resources",
        """\
        [agents.m]
        cmd = "x"
        idle_after = 0
        max_rss = "10XB"
        max_cpu = 0
        kill_over_rss = -1
        [agents.n]
        cmd = "x"
        max_rss = 1.5
        kill_over_rss = 0
        max_cpu = "50%"
        """,
        [
            "plan.toml:3: agents.m.idle_after: must be greater than 0, found 0",
            'plan.toml:4: agents.m.max_rss: invalid size "10XB": expected a number of bytes or a number '
            'with a unit (KB, MB, GB, KiB, MiB, GiB, k, m, g), e.g. "500MB", "2GiB"',
            "plan.toml:5: agents.m.max_cpu: expected a number greater than 0, found 0",
            "plan.toml:6: agents.m.kill_over_rss: invalid size -1: must not be negative",
            'plan.toml:9: agents.n.max_rss: expected a size (a number of bytes or a string like "500MB", '
            '"2GiB", "512k"), found a float (1.5)',
            "plan.toml:10: agents.n.kill_over_rss: must be greater than 0, found 0",
            'plan.toml:11: agents.n.max_cpu: expected a number greater than 0, found a string ("50%")',
        ],
    ),
    (
        "bad-handlers",
        """\
        [agents.a]
        cmd = "x"
        [workers.fixer]
        cmd = "x"
        [[on]]
        do = "stop"
        [[on]]
        event = "agent.faild"
        do = "explode"
        [[on]]
        event = "agent.failed"
        do = "notify"
        severity = "critical"
        name = "x"
        text = "hi"
        message = "{{ event.agent }} failed"
        [[on]]
        event = "alert"
        do = "spawn"
        worker = "fixr"
        [[on]]
        event = "alert"
        do = "spawn"
        [[on]]
        event = "resource"
        do = "throttle"
        max_parallel = 0
        for = "soon"
        [[on]]
        event = "external"
        do = "send"
        target = "b"
        text = "go"
        match = "("
        [[on]]
        event = "user_input"
        do = "notify"
        message = "{{ task.id }} {{ agents.b.output }} {{ event.nope }}"
        extra = 1
        """,
        [
            'plan.toml:5: on[0]: missing required key "event"',
            'plan.toml:8: on[1].event: invalid value "agent.faild": expected one of "agent.completed", '
            '"agent.failed", "alert", "agent.idle", "agent.needs_input", "resource", "external", '
            '"user_input" '
            '— did you mean "agent.failed"?',
            'plan.toml:9: on[1].do: invalid value "explode": expected one of "spawn", "restart", "kill", '
            '"send", "notify", "throttle", "stop"',
            'plan.toml:13: on[2].severity: only used with event = "alert" or "resource"',
            'plan.toml:14: on[2].name: only used with event = "external"',
            'plan.toml:15: on[2].text: only used by do = "send"',
            'plan.toml:20: on[3].worker: unknown worker template "fixr" — did you mean "fixer"?',
            'plan.toml:21: on[4]: missing required key "worker" for do = "spawn"',
            "plan.toml:27: on[5].max_parallel: expected a positive integer, found 0",
            'plan.toml:28: on[5].for: invalid duration "soon": expected a number of seconds or a number '
            'with a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"',
            'plan.toml:32: on[6].target: unknown agent "b"',
            'plan.toml:34: on[6].match: invalid regex "(": missing ), unterminated subpattern at position 0',
            "plan.toml:38: on[7].message: {{ task.id }}: task is only known in [workers] templates",
            'plan.toml:38: on[7].message: {{ agents.b.output }}: unknown agent "b"',
            'plan.toml:38: on[7].message: {{ event.nope }}: unknown field "nope" of event: expected kind, '
            "agent, severity, line, name, text or data.KEY",
            'plan.toml:39: on[7].extra: unknown key "extra" — did you mean "text"?',
        ],
    ),
    (
        "handlers-not-tables",
        """\
        on = [3, { event = "alert", do = "stop", severity = "fatal" }]
        [agents.a]
        cmd = "x"
        """,
        [
            "plan.toml:1: on[0]: expected a table, found an integer (3)",
            'plan.toml:1: on[1].severity: invalid value "fatal": expected one of "info", '
            '"warning", "critical"',
        ],
    ),
    (
        "bad-template-syntax",
        """\
        [agents.fetch]
        cmd = "fetch {{ unclosed"
        [agents.report]
        argv = ["r", "{{ a..b }}", "{{ }}", "{{ a b }}"]
        """,
        [
            'plan.toml:2: agents.fetch.cmd: invalid template: unclosed "{{": no matching "}}" follows '
            "(at position 6)",
            'plan.toml:4: agents.report.argv[1]: invalid template: empty segment in placeholder path "a..b" '
            '(a stray or doubled ".") (at position 5)',
            "plan.toml:4: agents.report.argv[2]: invalid template: empty placeholder {{ }}: expected a name "
            "such as {{ inputs.topic }} (at position 0)",
            "plan.toml:4: agents.report.argv[3]: invalid template: bad character ' ' in placeholder path "
            "'a b': segments use letters, digits, _ and -, separated by dots (at position 4)",
        ],
    ),
    (
        "bad-template-references",
        """\
        [inputs]
        topic = "x"
        [agents.fetch]
        cmd = "x"
        [agents.report]
        cmd = "r {{ agents.fetch.output }}"
        prompt = "{{ agents.report.output }} {{ agnets.x }} {{ agents }}"
        [agents.c]
        after = ["fetch"]
        cmd = "{{ agents.fetch.outptu }} {{ agents.fetch.output.x }} {{ agents.fetch.meta }}"
        argv = ["{{ agents.fetch.meta.a.b }}", "{{ agents.fetch.result }}", "{{ agents.fetch.result.a.b }}"]
        [agents.d]
        after = ["fetch"]
        cmd = "{{ inputs.topc }} {{ inputs }} {{ task.id }} {{ event.kind }} {{ run.id }} {{ run.x }}"
        """,
        [
            'plan.toml:6: agents.report.cmd: {{ agents.fetch.output }}: "fetch" is not an upstream of '
            '"report" (add it to after)',
            'plan.toml:7: agents.report.prompt: {{ agents.report.output }}: agent "report" cannot read '
            "its own results",
            'plan.toml:7: agents.report.prompt: {{ agnets.x }}: unknown name "agnets": expected agents, '
            'inputs, task, event, failure or run — did you mean "agents"?',
            "plan.toml:7: agents.report.prompt: {{ agents }}: name an agent and a field, e.g. "
            "{{ agents.NAME.output }}",
            'plan.toml:8: agents.c: set only one of "cmd" and "argv", not both',
            'plan.toml:10: agents.c.cmd: {{ agents.fetch.outptu }}: unknown field "outptu" of agents.fetch: '
            "expected output, out, exit_code, state, duration, meta.KEY or result.KEY — did you mean "
            '"output"?',
            "plan.toml:10: agents.c.cmd: {{ agents.fetch.output.x }}: agents.fetch.output has no fields",
            "plan.toml:10: agents.c.cmd: {{ agents.fetch.meta }}: name a key: {{ agents.fetch.meta.KEY }}",
            "plan.toml:11: agents.c.argv[0]: {{ agents.fetch.meta.a.b }}: agents.fetch.meta takes one key: "
            "{{ agents.fetch.meta.KEY }}",
            "plan.toml:11: agents.c.argv[1]: {{ agents.fetch.result }}: name a key: "
            "{{ agents.fetch.result.KEY }}",
            'plan.toml:14: agents.d.cmd: {{ inputs.topc }}: unknown input "topc" — did you mean "topic"?',
            "plan.toml:14: agents.d.cmd: {{ inputs }}: name one input: {{ inputs.NAME }}",
            "plan.toml:14: agents.d.cmd: {{ task.id }}: task is only known in [workers] templates",
            "plan.toml:14: agents.d.cmd: {{ event.kind }}: event is only known in [workers] templates and "
            "[[on]] text and message",
            'plan.toml:14: agents.d.cmd: {{ run.x }}: unknown field "x" of run: expected id or name',
        ],
    ),
    (
        "bad-references-from-defaults-and-workers",
        """\
        [defaults]
        prompt = "use {{ agents.fetch.output }}"
        [agents.fetch]
        cmd = "x"
        prompt = "first"
        [agents.a]
        cmd = "x"
        after = ["fetch"]
        [agents.b]
        cmd = "{{ inputs.x }}"
        [workers.w]
        cmd = "{{ task.input }} {{ task.input.a.b }} {{ task.master.x }} {{ task }} {{ agents.zz.state }}"
        """,
        [
            'plan.toml:2: defaults.prompt: {{ agents.fetch.output }}: "fetch" is not an upstream of "b" (add '
            "it to after)",
            'plan.toml:10: agents.b.cmd: {{ inputs.x }}: unknown input "x": declare it in [inputs]',
            "plan.toml:12: workers.w.cmd: {{ task.master.x }}: task.master has no fields",
            "plan.toml:12: workers.w.cmd: {{ task }}: name a field of task: id, input, input.KEY or master",
            'plan.toml:12: workers.w.cmd: {{ agents.zz.state }}: unknown agent "zz"',
        ],
    ),
    (
        "cycles-through-aggregates-and-workers",
        """\
        [agents.a]
        aggregate = { from = ["b"], strategy = "fusion" }
        [agents.b]
        cmd = "x"
        after = ["a"]
        [agents.m]
        cmd = "x"
        spawns = "subtasks.json"
        after = ["j"]
        [agents.j]
        cmd = "x"
        after = ["m.workers"]
        [workers.w]
        cmd = "x"
        """,
        [
            "plan.toml:2: agents.a.aggregate.from[0]: dependency cycle: a → b → a",
            "plan.toml:9: agents.m.after[0]: dependency cycle: m → j → m",
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
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:8: not valid UTF-8: byte 0xff (save the file as UTF-8)"
    ]


def test_deep_nesting_is_one_problem() -> None:
    text = "x = " + "[" * 5000 + "]" * 5000
    assert problems_of(text) == ["plan.toml:1: invalid TOML: values nested too deeply (over 100 levels)"]


def test_plan_error_message_lists_all_problems() -> None:
    error = PlanError((Problem("p.toml", "a", "one", 1), Problem("p.toml", "", "two")))
    assert str(error) == "p.toml:1: a: one\np.toml: two"


@pytest.mark.parametrize(
    ("inputs", "overrides", "expected"),
    [
        (
            'topic = "x"\ndepth = 1\n',
            {"topc": "y", "depth": "2", "zzz": "1"},
            [
                Problem("plan.toml", "--set topc", 'unknown input "topc" — did you mean "topic"?'),
                Problem("plan.toml", "--set zzz", 'unknown input "zzz": declare it in [inputs]'),
            ],
        ),
        (
            "",
            {"topic": "y"},
            [Problem("plan.toml", "--set topic", 'unknown input "topic": declare it in [inputs]')],
        ),
        (
            'topic = "x"\n',
            {"topic": "a\0b"},
            [Problem("plan.toml", "--set topic", "contains a NUL character")],
        ),
    ],
)
def test_set_overrides_must_name_declared_inputs(
    inputs: str, overrides: dict[str, str], expected: list[Problem]
) -> None:
    text = f'[inputs]\n{inputs}[agents.a]\ncmd = "x"\n'
    with pytest.raises(PlanError) as caught:
        parse_plan(text, file="plan.toml", base_dir=Path("/p"), overrides=overrides)
    assert list(caught.value.problems) == expected


def test_set_problems_come_after_the_file_s_own(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[inputs]\ntopic = "x"\n[agents.a]\ncmd = "{{ inputs.topik }}"\n', encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, {"topik": "y"})
    assert [str(p) for p in caught.value.problems] == [
        f'{path}:4: agents.a.cmd: {{{{ inputs.topik }}}}: unknown input "topik" — did you mean "topic"?',
        f'{path}: --set topik: unknown input "topik" — did you mean "topic"?',
    ]
