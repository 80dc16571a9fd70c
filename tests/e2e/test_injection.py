"""Values from one agent, or from ``--set``, reach another agent or a handler as data, never as code.

Real runs: for each way in (``--set`` into ``{{ inputs.X }}``, an upstream's ``output``, its ``meta.json``
and its ``result.json``, an ``agentsup emit`` event's data) and each way out (``cmd``, ``argv``,
``prompt``, a handler's ``spawn`` and ``send``), every payload below travels through, the receiving
program writes what it got to a file, and the bytes are compared. Each payload tries to create a marker
file ``pwned-ID``; none may exist anywhere under the test's directory afterwards. A NUL cannot be carried;
it must fail the agent, or the handler, with a reason that says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsup.plan import PlanError, parse_plan
from agentsup.plan.templates import Quoting, TemplateError, render, shell_problems
from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.events import JSON, EventKind
from tests.e2e.harness import Agentsup, isolated_agentsup, wait_until

MARK = "MARK"  # replaced by pwned-ID: the file a payload tries to create
PAYLOADS = {
    "single-quote": "'; touch MARK; echo '",
    "double-quote": '"; touch MARK; echo "',
    "dollar-paren": "$(touch MARK)",
    "backticks": "`touch MARK`",
    "semicolon": "x; touch MARK",
    "and-and": "x && touch MARK",
    "pipe": "x | touch MARK",
    "newline": "x\ntouch MARK",
    "ifs": "x${IFS}$(touch${IFS}MARK)",
    "glob": "*",
    "leading-dash": "-n",
    "backslash": "x\\",
    "ansi-c-quote": "$'\\x41' $(touch MARK)",
    "tmux-separator": "x \\; run-shell 'touch MARK' ;",
    "tmux-format": "#(touch MARK) #{pane_id}",
    "hash-comment": "# $(touch MARK)",
}
IDS = list(PAYLOADS)
SOURCES = ("set", "output", "meta", "result")
END = "--end--"  # an upstream's last line
# An upstream exits once its last line is in its output log (beside $AGENTSUP_DONE), so no downstream can miss
# any of it; a done pattern instead would race the engine's first look at so fast an agent.
AWAIT_LOG = 'until grep -q -e "^--end--" "${AGENTSUP_DONE%.done}.log"; do sleep 0.02; done'
CUT = "\n--8<--\n"  # between the values in one prompt
RUN_TIMEOUT = 60.0
POLL = 0.25  # each look runs `agentsup status`: a tighter loop would starve the run it waits for

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def payload(pid: str) -> str:
    return PAYLOADS[pid].replace(MARK, f"pwned-{pid}")


def expected(pid: str, source: str) -> str:
    """What a value of ``source`` holds: an upstream's output ends with its done line."""
    return payload(pid) + "\n" + END if source == "output" else payload(pid)


# ---- plans ------------------------------------------------------------------------------------


def _toml(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _upstreams(root: Path, ids: list[str]) -> str:
    """``up-ID``: prints the payload then the done line, and leaves it in meta.json and result.json."""
    out = ""
    for pid in ids:
        data = root / "payloads" / pid
        cmd = (
            f'cp "{data}.json" "$AGENTSUP_OUT/meta.json"; cp "{data}.json" "$AGENTSUP_OUT/result.json"; '
            f'cat "{data}"; printf "\\n{END}\\n"; {AWAIT_LOG}'
        )
        out += f"\n[agents.up-{pid}]\ncmd = {_toml(cmd)}\n"
    return out


def _write_payloads(root: Path, ids: list[str]) -> None:
    (root / "payloads").mkdir(parents=True)
    for pid in ids:
        (root / "payloads" / pid).write_bytes(payload(pid).encode())
        (root / "payloads" / f"{pid}.json").write_text(json.dumps({"v": payload(pid)}))
    (root / "a-file-a-glob-would-find").touch()


def _values(pid: str) -> list[str]:
    """The four placeholders of one payload, in SOURCES order."""
    return [
        f"{{{{ inputs.p-{pid} }}}}",
        f"{{{{ agents.up-{pid}.output }}}}",
        f"{{{{ agents.up-{pid}.meta.v }}}}",
        f"{{{{ agents.up-{pid}.result.v }}}}",
    ]


def _head(name: str, ids: list[str]) -> str:
    inputs = "".join(f'"p-{pid}" = ""\n' for pid in ids)
    return f'[run]\nname = "{name}"\non_failure = "continue"\n\n[inputs]\n{inputs}'


def _to_cmd(pid: str) -> str:
    writes = "; ".join(
        f'printf %s {value} > "$AGENTSUP_OUT/{source}"'
        for source, value in zip(SOURCES, _values(pid), strict=True)
    )
    return f'\n[agents.to-{pid}]\nafter = ["up-{pid}"]\ncmd = {_toml(writes)}\n'


def _to_argv(pid: str, receiver: Path) -> str:
    argv = [sys.executable, str(receiver), *SOURCES, *_values(pid)]
    return f'\n[agents.to-{pid}]\nafter = ["up-{pid}"]\nargv = {json.dumps(argv, ensure_ascii=False)}\n'


def _to_prompt(pid: str) -> str:
    cmd = 'printf %s "$AGENTSUP_PROMPT" > "$AGENTSUP_OUT/prompt"'
    prompt = CUT.join(_values(pid))
    return f'\n[agents.to-{pid}]\nafter = ["up-{pid}"]\ncmd = {_toml(cmd)}\nprompt = {_toml(prompt)}\n'


RECEIVER = """\
import os, sys
names = sys.argv[1:5]
for name, value in zip(names, sys.argv[5:]):
    with open(os.path.join(os.environ["AGENTSUP_OUT"], name), "wb") as f:
        f.write(os.fsencode(value))
"""

# An agent that holds the run open (handlers need a live run) until the test releases it.
HOLD = """
[agents.hold]
cmd = 'while [ ! -e "$AGENTSUP_OUT/release" ]; do sleep 0.05; done'
"""


def _spawn_plan(root: Path, ids: list[str]) -> str:
    text = _head("inj-spawn", ids) + _upstreams(root, ids) + HOLD
    for pid in ids:
        values = ["{{ event.data.v }}", *_values(pid)]
        writes = "; ".join(
            f'printf %s {value} > "$AGENTSUP_OUT/{source}"'
            for source, value in zip(("event", *SOURCES), values, strict=True)
        )
        text += f"\n[workers.w-{pid}]\ncmd = {_toml(writes)}\n"
        text += f'\n[[on]]\nevent = "external"\nname = "go-{pid}"\ndo = "spawn"\nworker = "w-{pid}"\n'
    return text


def _send_plan(root: Path, ids: list[str]) -> str:
    text = _head("inj-send", ids) + _upstreams(root, ids) + HOLD
    for pid in ids:
        lines = sum(expected(pid, s).count("\n") + 1 for s in ("event", *SOURCES))
        reader = (
            f'n=0; while [ "$n" -lt {lines} ] && IFS= read -r line; do '
            'printf "%s\\n" "$line" >> "$AGENTSUP_OUT/got"; n=$((n + 1)); done'
        )
        text += f"\n[agents.reader-{pid}]\ncmd = {_toml(reader)}\n"
        for value in ["{{ event.data.v }}", *_values(pid)]:
            text += (
                f'\n[[on]]\nevent = "external"\nname = "go-{pid}"\ndo = "send"\ntarget = "reader-{pid}"\n'
                f"text = {_toml(value)}\n"
            )
    return text


# ---- running them -----------------------------------------------------------------------------


@dataclass
class Run:
    agentsup: Agentsup
    root: Path
    run_id: str

    def out(self, agent: str) -> Path:
        return self.agentsup.run_dir(self.run_id) / "agents" / agent.replace("/", "~") / "out"

    def status(self) -> dict[str, Any]:
        """The live engine's status, asked over its socket (cheaper than a process per look on a busy
        machine), or ``agentsup status`` once the engine is gone."""
        try:
            with ControlClient(self.agentsup.run_dir(self.run_id) / "control.sock") as client:
                status = client.request("status")["status"]
        except ControlError:
            return self.agentsup.status_json(self.run_id)
        assert isinstance(status, dict)
        return status

    def states(self) -> dict[str, str]:
        return {a["name"]: a["state"] for a in self.status()["agents"]}

    def emit(self, name: str, data: JSON) -> None:
        """What ``agentsup emit`` sends."""
        with ControlClient(self.agentsup.run_dir(self.run_id) / "control.sock") as client:
            client.request("emit", name=name, data=data)


def _settings(ids: list[str]) -> list[str]:
    return [arg for pid in ids for arg in ("--set", f"p-{pid}={payload(pid)}")]


def _start(agentsup: Agentsup, root: Path, run_id: str, plan: str, ids: list[str], *, detach: bool) -> Run:
    (root / "plan.toml").write_text(plan, encoding="utf-8")
    mode = "--detach" if detach else "--no-tui"
    r = agentsup.run("start", str(root / "plan.toml"), mode, "--run-id", run_id, *_settings(ids), check=False)
    assert r.returncode == 0, f"start exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return Run(agentsup, root, run_id)


def _ready(run: Run, ids: list[str]) -> bool:
    """Every upstream done, and every agent that waits for input (hold, the readers) running."""
    states = run.states()
    ups = all(states.get(f"up-{pid}") == "succeeded" for pid in ids)
    return ups and all(
        s == "running" for name, s in states.items() if name == "hold" or name.startswith("reader-")
    )


def _emit(run: Run, ids: list[str], data: Callable[[str], JSON]) -> None:
    """Once the run is ready for them, emit go-ID for each payload."""
    try:
        wait_until(lambda: _ready(run, ids), timeout=RUN_TIMEOUT, interval=POLL)
    except AssertionError as e:
        raise AssertionError(f"the run never got ready for the events: {run.states()}") from e
    for pid in ids:
        run.emit(f"go-{pid}", data(pid))


def _release(run: Run) -> None:
    (run.out("hold") / "release").touch()
    wait_until(
        lambda: run.status()["state"] != "running",
        timeout=RUN_TIMEOUT,
        interval=POLL,
        message="the run to end",
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agentsup, Path]]:
    root = tmp_path_factory.mktemp("injection")
    with isolated_agentsup(root, state_name="s") as tool:
        yield tool, root


_RUNS: dict[str, Run] = {}


def _sink(world: tuple[Agentsup, Path], sink: str) -> Run:
    """The run of ``sink`` (one per module, every payload at once), started on first use."""
    if sink in _RUNS:
        return _RUNS[sink]
    agentsup, base = world
    root = base / sink
    _write_payloads(root, IDS)
    if sink in ("cmd", "argv", "prompt"):
        receiver = root / "receive.py"
        receiver.write_text(RECEIVER)
        make: Callable[[str], str] = _to_cmd if sink == "cmd" else _to_prompt
        if sink == "argv":
            make = partial(_to_argv, receiver=receiver)
        plan = _head(f"inj-{sink}", IDS) + _upstreams(root, IDS) + "".join(make(pid) for pid in IDS)
        _RUNS[sink] = _start(agentsup, root, f"inj-{sink}", plan, IDS, detach=False)
    else:
        plan = (_spawn_plan if sink == "spawn" else _send_plan)(root, IDS)
        run = _start(agentsup, root, f"inj-{sink}", plan, IDS, detach=True)
        _emit(run, IDS, lambda pid: {"v": payload(pid)})
        if sink == "spawn":
            wait_until(
                lambda: _spawned_done(run),
                timeout=RUN_TIMEOUT,
                interval=POLL,
                message="the spawned workers to end",
            )
        else:
            wait_until(
                lambda: all(run.states()[f"reader-{pid}"] != "running" for pid in IDS),
                timeout=RUN_TIMEOUT,
                interval=POLL,
                message="the readers to read every line sent",
            )
        _release(run)
        _RUNS[sink] = run
    return _RUNS[sink]


def _spawned(run: Run, pid: str) -> str:
    names = [name for name in run.states() if name.startswith(f"w-{pid}-")]
    assert len(names) == 1, names
    return names[0]


def _spawned_done(run: Run) -> bool:
    states = run.states()
    workers = [s for name, s in states.items() if name.startswith("w-")]
    return len(workers) == len(IDS) and all(s in ("succeeded", "failed") for s in workers)


def _no_marker(run: Run, pid: str) -> None:
    assert not list(run.root.parent.rglob(f"pwned-{pid}*")), f"payload {pid!r} ran a command"


# ---- the guarantees ---------------------------------------------------------------------------


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("sink", ["cmd", "argv"])
def test_a_value_reaches_cmd_and_argv_as_one_literal_argument(
    world: tuple[Agentsup, Path], sink: str, pid: str
) -> None:
    run = _sink(world, sink)
    assert run.states()[f"to-{pid}"] == "succeeded"
    for source in SOURCES:
        got = (run.out(f"to-{pid}") / source).read_bytes()
        assert got == expected(pid, source).encode(), source
    _no_marker(run, pid)


@pytest.mark.parametrize("pid", IDS)
def test_a_value_reaches_the_prompt_as_written(world: tuple[Agentsup, Path], pid: str) -> None:
    run = _sink(world, "prompt")
    assert run.states()[f"to-{pid}"] == "succeeded"
    want = CUT.join(expected(pid, source) for source in SOURCES).encode()
    assert (run.out(f"to-{pid}") / "prompt").read_bytes() == want
    assert (run.out(f"to-{pid}").parent / "prompt.txt").read_bytes() == want
    _no_marker(run, pid)


@pytest.mark.parametrize("pid", IDS)
def test_a_value_reaches_a_spawned_agent_s_cmd_as_one_literal_argument(
    world: tuple[Agentsup, Path], pid: str
) -> None:
    run = _sink(world, "spawn")
    worker = _spawned(run, pid)
    assert run.states()[worker] == "succeeded"
    for source in ("event", *SOURCES):
        got = (run.out(worker) / source).read_bytes()
        assert got == expected(pid, source).encode(), source
    _no_marker(run, pid)


@pytest.mark.parametrize("pid", IDS)
def test_a_value_a_handler_sends_is_typed_as_written(world: tuple[Agentsup, Path], pid: str) -> None:
    run = _sink(world, "send")
    assert run.states()[f"reader-{pid}"] == "succeeded"
    want = "".join(expected(pid, source) + "\n" for source in ("event", *SOURCES))
    assert (run.out(f"reader-{pid}") / "got").read_text(encoding="utf-8") == want
    _no_marker(run, pid)


def test_the_runs_ended_well(world: tuple[Agentsup, Path]) -> None:
    for sink in ("cmd", "argv", "prompt", "spawn", "send"):
        run = _sink(world, sink)
        assert run.agentsup.status_json(run.run_id)["state"] == "succeeded", sink


# ---- NUL: no process argument, environment or pane can carry it --------------------------------

NUL_PLAN = (
    """
[run]
name = "inj-nul"
on_failure = "continue"

[agents.up]
cmd = 'cp "$NUL_JSON" "$AGENTSUP_OUT/meta.json"; printf "a\\000b\\n--end--\\n"; AWAIT_LOG'

[agents.by-cmd]
after = ["up"]
cmd = "printf %s {{ agents.up.meta.v }}"

[agents.by-argv]
after = ["up"]
argv = ["printf", "%s", "{{ agents.up.output }}"]

[agents.by-prompt]
after = ["up"]
cmd = "true"
prompt = "{{ agents.up.meta.v }}"

[workers.w]
cmd = "printf %s {{ event.data.v }}"

[[on]]
event = "external"
name = "go"
do = "spawn"
worker = "w"

[[on]]
event = "external"
name = "go"
do = "send"
target = "hold"
text = "{{ event.data.v }}"
""".replace("AWAIT_LOG", AWAIT_LOG)
    + HOLD
)


def test_a_nul_fails_the_agent_or_handler_with_a_reason_that_says_so(world: tuple[Agentsup, Path]) -> None:
    agentsup, base = world
    root = base / "nul"
    root.mkdir()
    (root / "nul.json").write_text(json.dumps({"v": "a\0b"}))
    agentsup.env["NUL_JSON"] = str(root / "nul.json")  # the caller's environment reaches every agent
    run = _start(agentsup, root, "inj-nul", NUL_PLAN, [], detach=True)
    wait_until(
        lambda: run.states().get("up") == "succeeded" and _ready(run, []), timeout=RUN_TIMEOUT, interval=POLL
    )
    agentsup.run("emit", run.run_id, "go", "--data", json.dumps({"v": "a\0b"}))  # by the command itself
    wait_until(
        lambda: any(n.startswith("w-") and s == "failed" for n, s in run.states().items()),
        timeout=RUN_TIMEOUT,
        interval=POLL,
    )
    _release(run)
    agents = {a["name"]: a for a in agentsup.status_json(run.run_id)["agents"]}
    worker = next(name for name in agents if name.startswith("w-"))
    for agent, placeholder in [
        ("by-cmd", "agents.up.meta.v"),
        ("by-argv", "agents.up.output"),
        ("by-prompt", "agents.up.meta.v"),
        (worker, "event.data.v"),
    ]:
        assert agents[agent]["state"] == "failed", agent
        reason = str(agents[agent]["reason"])
        assert reason.startswith("could not start: template: "), reason
        assert f'the value of "{placeholder}" contains a NUL byte' in reason, reason
    fired = [
        e for e in agentsup.events(run.run_id) if e.kind is EventKind.HANDLER_FIRED and e.data["do"] == "send"
    ]
    assert len(fired) == 1
    assert 'template: the value of "event.data.v" contains a NUL byte' in str(fired[0].data["error"])
    assert not [e for e in agentsup.events(run.run_id) if e.kind is EventKind.COMMAND], "something was typed"


def test_a_set_value_with_a_nul_is_refused_before_anything_starts() -> None:
    # No process can pass a NUL in argv (`agentsup start --set` can never receive one); the loader refuses
    # it anyway, for callers that pass overrides themselves.
    with pytest.raises(PlanError) as caught:
        parse_plan(
            '[inputs]\np = ""\n[agents.a]\ncmd = "echo {{ inputs.p }}"\n',
            file="plan.toml",
            base_dir=Path("/srv"),
            overrides={"p": "a\0b"},
        )
    assert [str(p) for p in caught.value.problems] == ["plan.toml: --set p: contains a NUL character"]


# ---- the shell's side of it: any cmd the loader accepts keeps a value one word -----------------

FRAGMENTS = [
    "echo",
    ":",
    " ",
    "x",
    "'",
    '"',
    "`",
    "$(",
    "$((",
    "((",
    ")",
    "))",
    "${",
    "}",
    "$",
    "\\",
    "#",
    "\n",
    "<<EOF\n",
    "<<'EOF'\n",
    "<<-EOF\n",
    "\nEOF\n",
    ";",
    "&&",
    "|",
    "(",
    "{ ",
    " }",
    "a=",
    "case x in x) ",
    ";; esac",
    "@",
]
SHELLS = [shell for shell in ("sh", "dash", "bash") if shutil.which(shell)]


@st.composite
def shell_templates(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12))
    if "@" not in parts:
        parts.append("@")
    return "".join(parts).replace("@", "{{ inputs.x }}")


@pytest.mark.parametrize("shell", SHELLS)
@settings(max_examples=300, deadline=None)
@given(template=shell_templates(), pid=st.sampled_from(IDS))
def test_a_cmd_the_loader_accepts_never_runs_its_values(shell: str, template: str, pid: str) -> None:
    try:
        unsafe = shell_problems(template)
    except TemplateError:
        return
    if unsafe:
        with pytest.raises(TemplateError):
            render(template, lambda _: payload(pid), Quoting.SHELL)
        return
    command = render(template, lambda _: payload(pid), Quoting.SHELL)
    with tempfile.TemporaryDirectory() as where:  # one per example: a marker must be this command's own
        subprocess.run(
            [shell, "-c", command],
            cwd=where,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        assert not list(Path(where).glob("pwned-*")), f"{shell} ran a value of {template!r}: {command!r}"
