"""Valid plans, shared by the loader and schema tests: each must load, and validate against the schema."""

from __future__ import annotations

MINIMAL = """\
[agents.only]
cmd = "true"
"""

EVERY_KEY = """\
[run]
name = "release-2"
workdir = "work"
max_parallel = 3
on_failure = "continue"

[defaults]
timeout = "30m"
retries = 1
backoff = "5s"
env = { LOG = "debug", LEVEL = 2 }
success_exit_codes = [0, 3]
alerts = [{ match = "Traceback" }]

[agents.build]
cmd = "make -j"
cwd = "src"
env = { LEVEL = "3", FAST = true, RATIO = 0.5 }
done = "file"

[agents.test]
argv = ["pytest", "-q"]
after = ["build"]
timeout = 600
retries = 0
backoff = { initial = "2s", factor = 3, max = "1m", jitter = 0 }
on_failure = "halt"
done = "pattern:^=+ \\\\d+ passed"

[[agents.test.alerts]]
match = "FAILED"
severity = "critical"

[[agents.test.alerts]]
match = "(?i)deprecat"
severity = "info"

[agents.report]
cmd = "./report.sh"
after = [{ agent = "test", when = "finished" }, { agent = "build" }]
done = "exit"
"""

INLINE = """\
agents.a.cmd = "echo a"
agents.b = { argv = ["echo", "b"], after = ["a"] }
"""

ALL = {"minimal": MINIMAL, "every-key": EVERY_KEY, "inline": INLINE}
