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

PATTERNS = """\
[run]
name = "patterns"
max_parallel = 4
min_free_memory = "2GiB"

[inputs]
topic = "tmux supervisors"
depth = 3
strict = true

[pools]
llm = 2
gpu = 1

[defaults]
pool = "llm"
idle_after = "5m"
max_rss = "1500MB"
max_cpu = 150
kill_over_rss = 4294967296
env = { TOPIC = "x" }

[agents.fetch]
cmd = "fetch --topic {{ inputs.topic }} --run {{ run.id }}"

[agents.critic-a]
argv = ["critic", "--depth", "{{ inputs.depth }}", "{{agents.fetch.out}}"]
after = ["fetch"]
prompt = "Rate {{ inputs.topic }} from {{ agents.fetch.output }}; write result.json"
preset = "shell"

[agents.critic-b]
cmd = "critic --strict={{ inputs.strict }}"
after = [{ agent = "fetch", when = "finished" }]
pool = "gpu"
max_rss = 512000
max_cpu = 0.5
idle_after = 30

[agents.vote]
aggregate = { from = ["critic-a", "critic-b"], strategy = "vote", field = "verdict", require_all = true }
after = ["fetch"]

[agents.score]
aggregate = { from = ["critic-a", "critic-b"], strategy = "weighted", confidence = "certainty" }

[agents.merge]
aggregate = { from = ["critic-a"], strategy = "fusion" }
after = [{ agent = "critic-a", when = "succeeded" }]

[agents.master]
cmd = "plan-subtasks > $AGENTSUP_OUT/subtasks.json"
after = ["vote"]
spawns = "subtasks.json"
on_failure = "spawn:fixer"

[agents.join]
cmd = "join {{ agents.master.result.summary.text }} {{ agents.score.meta.tally }}"
after = ["master.workers", { agent = "score", when = "finished" }]

[workers.coder]
cmd = "code {{ task.input.file }} for {{ task.master }} in {{ run.name }}"
prompt = "Task {{ task.id }}: {{ task.input }} ({{ agents.fetch.exit_code }})"
retries = 2
pool = "gpu"

[workers.fixer]
argv = ["fix", "{{ event.agent }}", "{{ event.data.reason }}"]
on_failure = "continue"
kill_over_rss = "8g"

[[on]]
event = "agent.failed"
do = "spawn"
agent = "critic-*"
worker = "fixer"

[[on]]
event = "alert"
do = "send"
severity = "critical"
match = "(?i)rate limit"
target = "master"
text = "slow down, {{ event.agent }}: {{ event.line }}"

[[on]]
event = "resource"
do = "throttle"
severity = "warning"
max_parallel = 1
for = "10m"

[[on]]
event = "external"
do = "notify"
name = "deploy-*"
message = "{{ event.name }}: {{ event.data.url }} (run {{ run.id }}, {{ inputs.topic }})"

[[on]]
event = "agent.idle"
do = "restart"

[[on]]
event = "user_input"
do = "kill"
target = "fetch"

[[on]]
event = "agent.needs_input"
do = "stop"

[[on]]
event = "agent.completed"
do = "notify"
agent = "join"
message = "done: {{ agents.join.state }}"
"""

ALL = {"minimal": MINIMAL, "every-key": EVERY_KEY, "inline": INLINE, "patterns": PATTERNS}
