"""The agent-CLI presets: launch data per mode, hooks read from recorded payloads, one-shot results judged
from recorded outputs (tests/fixtures/{hooks,oneshot}/<preset>/, made by tests/agents/record_screens.py),
and the registry with a third-party preset installed through an entry point."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import MappingProxyType

import pytest

from agentsup.agents import (
    AiderPreset,
    Approve,
    ClaudePreset,
    CLIOptions,
    CLIPreset,
    CodexPreset,
    GeminiPreset,
    HookKind,
    HookSetup,
    Keys,
    Launch,
    Mode,
    Paste,
    PresetError,
    Settle,
    ShellPreset,
    cli_preset,
    preset_named,
    preset_names,
)
from agentsup.plan import AgentSpec
from agentsup.supervisor.output import strip_ansi
from tests.llm import clis
from tests.llm.script import Script, Text
from tests.llm.server import LLMServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PRESETS: dict[str, CLIPreset] = {
    "claude": ClaudePreset(),
    "codex": CodexPreset(),
    "gemini": GeminiPreset(),
    "aider": AiderPreset(),
}
PROMPT = "-starts with a dash; has 'quotes' and $HOME"
HOOKS = HookSetup(("/opt/agent sup/bin/agentsup", "hook"), Path("/run/agentsup/r1/agents/a/config"))
HOST_ENV = {"AGENTSUP_RUN": "r1", "AGENTSUP_AGENT": "a"}


def _spec(**env: str) -> AgentSpec:
    return AgentSpec(name="a", prompt=PROMPT, env=MappingProxyType(env))


def _launch(preset: str, mode: Mode, **options: object) -> Launch:
    opts = CLIOptions(mode=mode, **options)  # type: ignore[arg-type]
    return PRESETS[preset].launch(_spec(), HOST_ENV, opts, HOOKS)


# Launch


@pytest.mark.parametrize("preset", list(PRESETS))
def test_oneshot_puts_the_prompt_last_as_one_word(preset: str) -> None:
    argv = _launch(preset, Mode.ONESHOT).argv
    assert argv[0] == preset
    assert argv.count(PROMPT) + sum(a.endswith("=" + PROMPT) for a in argv) == 1
    last = argv[-1]
    if preset in ("claude", "codex"):
        assert argv[-2:] == ("--", PROMPT)  # after "--": a prompt starting with "-" is no option
    else:
        assert last in (f"--prompt={PROMPT}", f"--message={PROMPT}")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_interactive_never_carries_the_prompt(preset: str) -> None:
    argv = _launch(preset, Mode.INTERACTIVE).argv
    assert not any(PROMPT in a for a in argv)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_oneshot_without_a_prompt_is_an_error(preset: str) -> None:
    with pytest.raises(ValueError, match="needs a prompt"):
        PRESETS[preset].launch(AgentSpec(name="a"), {}, CLIOptions(mode=Mode.ONESHOT), HOOKS)


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("mode", list(Mode))
def test_program_model_and_extra_flags(preset: str, mode: Mode) -> None:
    extra = ("--flag", "value with space")
    argv = _launch(preset, mode, program="/opt/bin/cli", model="m-1", extra=extra).argv
    assert argv[0] == "/opt/bin/cli"
    assert argv[argv.index("--model") + 1] == "m-1"
    at = argv.index("--flag")
    assert argv[at : at + 2] == extra
    if mode is Mode.ONESHOT:  # the extra flags come before the prompt, after the preset's own
        assert at < len(argv) - 1 - (preset in ("claude", "codex"))


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("mode", list(Mode))
def test_env_is_preset_defaults_then_plan_then_agentsup(preset: str, mode: Mode) -> None:
    spec = AgentSpec(
        name="a",
        prompt=PROMPT,
        env=MappingProxyType({"DISABLE_AUTOUPDATER": "0", "MINE": "1", "AGENTSUP_RUN": "plan"}),
    )
    launch = PRESETS[preset].launch(spec, HOST_ENV, CLIOptions(mode=mode), HOOKS)
    assert launch.env["MINE"] == "1"
    assert launch.env["AGENTSUP_RUN"] == "r1"
    if preset == "claude":
        assert launch.env["DISABLE_AUTOUPDATER"] == "0"  # the plan may override a default
        assert launch.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    if preset == "gemini":
        assert launch.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"


def test_claude_hooks_go_in_a_private_settings_file() -> None:
    launch = _launch("claude", Mode.INTERACTIVE)
    path = launch.argv[launch.argv.index("--settings") + 1]
    assert Path(path) == HOOKS.config_dir / "claude-settings.json"
    settings = json.loads(launch.files["claude-settings.json"])
    for event in ("Stop", "StopFailure", "PermissionRequest", "Notification"):
        (command,) = [h["command"] for group in settings["hooks"][event] for h in group["hooks"]]
        assert shlex.split(command) == [*HOOKS.command, event]


@pytest.mark.parametrize(
    ("approve", "mode"),
    [(Approve.NEVER, "dontAsk"), (Approve.ASK, "manual"), (Approve.ALWAYS, "acceptEdits")],
)
def test_claude_permission_mode(approve: Approve, mode: str) -> None:
    for run in Mode:
        argv = _launch("claude", run, approve=approve).argv
        assert argv[argv.index("--permission-mode") + 1] == mode


def test_claude_oneshot_prints_json_and_installs_no_hooks() -> None:
    launch = _launch("claude", Mode.ONESHOT)
    assert launch.argv[1:4] == ("-p", "--output-format", "json")
    assert not launch.files
    assert "--settings" not in launch.argv


def _config_value(argv: tuple[str, ...], key: str) -> object:
    """The TOML value Codex would parse from ``-c key=value``."""
    values = [argv[i + 1] for i, a in enumerate(argv) if a == "-c" and argv[i + 1].startswith(key + "=")]
    assert len(values) == 1, values
    return tomllib.loads(values[0])[key.split(".", 1)[0]]


def test_codex_interactive_hooks_are_config_flags() -> None:
    argv = _launch("codex", Mode.INTERACTIVE).argv
    assert argv[1:3] == ("--no-daemon", "--dangerously-bypass-hook-trust")
    for event in ("Stop", "PermissionRequest"):
        hooks = _config_value(argv, f"hooks.{event}")
        assert isinstance(hooks, dict)
        (command,) = [h["command"] for group in hooks[event] for h in group["hooks"]]
        assert shlex.split(command) == [*HOOKS.command, event]
    assert _config_value(argv, "check_for_update_on_startup") is False
    assert not _launch("codex", Mode.INTERACTIVE).files


@pytest.mark.parametrize(
    ("approve", "policy", "sandbox"),
    [
        (Approve.NEVER, "never", "read-only"),
        (Approve.ASK, "on-request", "read-only"),
        (Approve.ALWAYS, "never", "workspace-write"),
    ],
)
def test_codex_approvals(approve: Approve, policy: str, sandbox: str) -> None:
    argv = _launch("codex", Mode.INTERACTIVE, approve=approve).argv
    assert argv[argv.index("--ask-for-approval") + 1] == policy
    assert argv[argv.index("--sandbox") + 1] == sandbox
    oneshot = _launch("codex", Mode.ONESHOT, approve=approve).argv
    assert oneshot[1:4] == ("exec", "--json", "--skip-git-repo-check")
    assert "--ask-for-approval" not in oneshot  # exec never asks
    assert oneshot[oneshot.index("--sandbox") + 1] == sandbox


def test_gemini_hooks_go_in_a_system_defaults_file() -> None:
    launch = _launch("gemini", Mode.INTERACTIVE)
    assert (
        Path(launch.env["GEMINI_CLI_SYSTEM_DEFAULTS_PATH"])
        == HOOKS.config_dir / "gemini-system-defaults.json"
    )
    settings = json.loads(launch.files["gemini-system-defaults.json"])
    for event in ("AfterAgent", "Notification"):
        (command,) = [h["command"] for group in settings["hooks"][event] for h in group["hooks"]]
        assert shlex.split(command) == [*HOOKS.command, event]
    # A run inside CI inherits CI=true, which makes Gemini's TUI headless (it exits 42): not for its pane.
    assert (launch.env["CI"], launch.env["GITHUB_ACTIONS"]) == ("false", "false")
    oneshot = _launch("gemini", Mode.ONESHOT)
    assert "GEMINI_CLI_SYSTEM_DEFAULTS_PATH" not in oneshot.env
    assert oneshot.argv[oneshot.argv.index("--output-format") + 1] == "json"


@pytest.mark.parametrize(("approve", "mode"), [(Approve.ASK, "default"), (Approve.ALWAYS, "yolo")])
def test_gemini_approval_mode(approve: Approve, mode: str) -> None:
    argv = _launch("gemini", Mode.INTERACTIVE, approve=approve).argv
    assert argv[argv.index("--approval-mode") + 1] == mode


def test_aider_runs_unattended_and_keeps_its_history_private() -> None:
    argv = _launch("aider", Mode.INTERACTIVE).argv
    for flag in ("--no-check-update", "--no-analytics", "--no-show-release-notes", "--no-gitignore"):
        assert flag in argv
    assert "--analytics-disable" not in argv  # it would write the user's config
    assert Path(argv[argv.index("--chat-history-file") + 1]).parent == HOOKS.config_dir
    assert Path(argv[argv.index("--input-history-file") + 1]).parent == HOOKS.config_dir
    command = argv[argv.index("--notifications-command") + 1]
    assert shlex.split(command) == [*HOOKS.command, "notification"]
    assert "--yes-always" not in argv
    assert "--yes-always" in _launch("aider", Mode.ONESHOT, approve=Approve.ALWAYS).argv
    assert "--notifications-command" not in _launch("aider", Mode.ONESHOT).argv


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape", "a/../../b", ""])
def test_launch_files_stay_inside_the_config_dir(name: str) -> None:
    with pytest.raises(ValueError, match="relative path inside"):
        Launch(argv=("x",), env={}, files={name: "text"})


@pytest.mark.parametrize("preset", list(PRESETS))
def test_submit_pastes_then_waits_then_presses_enter(preset: str) -> None:
    text = "two\nlines"
    steps = PRESETS[preset].submit(text)
    assert steps[0] == Paste(text)
    assert isinstance(steps[1], Settle)
    assert steps[-1] == Keys(("Enter",))


# Hooks, from recorded payloads

# (preset, event) -> the kind its recorded payloads must give; None: nothing.
HOOK_KINDS = {
    ("claude", "Stop"): HookKind.TURN_DONE,
    ("claude", "PermissionRequest"): HookKind.NEEDS_INPUT,
    ("claude", "Notification"): HookKind.NEEDS_INPUT,
    ("claude", "StopFailure"): HookKind.RATE_LIMITED,  # the recording's only failure is a 429
    ("codex", "Stop"): HookKind.TURN_DONE,
    ("codex", "PermissionRequest"): HookKind.NEEDS_INPUT,
    ("gemini", "AfterAgent"): HookKind.TURN_DONE,
    ("gemini", "Notification"): HookKind.NEEDS_INPUT,
    ("aider", "notification"): HookKind.WAITING,
}


def _hook_fixtures() -> list[tuple[str, Path]]:
    return [(name, path) for name in PRESETS for path in sorted((FIXTURES / "hooks" / name).glob("*.json"))]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_hooks_were_recorded(preset: str) -> None:
    events = {json.loads(p.read_text())["event"] for p in (FIXTURES / "hooks" / preset).glob("*.json")}
    expected = {event for (name, event) in HOOK_KINDS if name == preset}
    if preset == "claude":  # its Notification comes only once a dialog has been open for seconds
        expected.discard("Notification")
    assert expected <= events, f"run: python -m tests.agents.record_screens {preset}"


@pytest.mark.parametrize(
    ("preset", "path"), _hook_fixtures(), ids=lambda v: v if isinstance(v, str) else v.stem
)
def test_recorded_hook_gives_its_signal(preset: str, path: Path) -> None:
    record = json.loads(path.read_text())
    signal = PRESETS[preset].hook_signal(record["event"], record["payload"])
    kind = HOOK_KINDS[(preset, record["event"])]
    assert signal is not None
    assert signal.kind is kind
    if kind is HookKind.NEEDS_INPUT:
        assert signal.text
        assert any(name in signal.text for name in ("a.txt", "b.txt")), signal.text  # the file it asks about


def test_unknown_and_uninteresting_hooks_mean_nothing() -> None:
    for preset in PRESETS.values():
        assert preset.hook_signal("SessionStart", "{}") is None
        assert preset.hook_signal("Stop-ish", "not json") is None
    idle = json.dumps({"notification_type": "idle_prompt", "message": "Claude is waiting for your input"})
    assert PRESETS["claude"].hook_signal("Notification", idle) is None


def test_claude_stop_failure_other_than_a_rate_limit_is_a_failure() -> None:
    payload = json.dumps({"error": "overloaded", "last_assistant_message": "API Error: 529"})
    signal = PRESETS["claude"].hook_signal("StopFailure", payload)
    assert signal is not None
    assert signal.kind is HookKind.FAILED
    assert signal.text == "overloaded: API Error: 529"


def test_hook_command_line_survives_the_shell() -> None:
    hooks = HookSetup(("/path with space/it's", "hook", "$(touch x)"), Path("/c"))
    assert shlex.split(hooks.command_line("Stop")) == [*hooks.command, "Stop"]


# One-shot results, from recorded runs


def _oneshot_fixtures() -> list[tuple[str, Path]]:
    return [(n, p) for n in PRESETS for p in sorted((FIXTURES / "oneshot" / n).glob("*.json"))]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_oneshot_runs_were_recorded(preset: str) -> None:
    cases = {p.stem for p in (FIXTURES / "oneshot" / preset).glob("*.json")}
    assert {"ok", "edit", "rate_limited", "bad_request"} <= cases


@pytest.mark.parametrize(
    ("preset", "path"), _oneshot_fixtures(), ids=lambda v: v if isinstance(v, str) else v.stem
)
def test_recorded_oneshot_is_judged_as_it_went(preset: str, path: Path) -> None:
    record = json.loads(path.read_text())
    output = strip_ansi(record["output"].encode()).decode()  # as the engine reads a pane's log
    verdict = PRESETS[preset].judge(record["exit_code"], output)
    assert verdict.succeeded is record["expect_success"], verdict
    assert verdict.reason
    assert verdict.rate_limited is (record["case"] == "rate_limited"), verdict


def test_a_failure_that_exits_zero_is_still_a_failure() -> None:
    """aider and Codex exit 0 after errors: the recordings that prove it, and the judges that catch it."""
    zero_failures = [
        (preset, record["case"])
        for preset, path in _oneshot_fixtures()
        if (record := json.loads(path.read_text()))["exit_code"] == 0 and not record["expect_success"]
    ]
    assert ("aider", "unreachable") in zero_failures


def test_claude_is_error_fails_a_run_that_exits_zero() -> None:
    """Its result says "subtype": "success" even for an API error; is_error is what tells."""
    output = json.loads((FIXTURES / "oneshot" / "claude" / "ok.json").read_text())["output"]
    assert '"is_error":false' in output
    errored = output.replace('"is_error":false', '"is_error":true')
    assert PRESETS["claude"].judge(0, strip_ansi(output.encode()).decode()).succeeded
    assert not PRESETS["claude"].judge(0, strip_ansi(errored.encode()).decode()).succeeded


def test_codex_judges_by_the_last_turn_event() -> None:
    completed = '{"type":"turn.completed","usage":{}}'
    failed = '{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429"}}'
    codex = PRESETS["codex"]
    assert codex.judge(0, f"{failed}\n{completed}\n").succeeded  # only the last turn event counts
    verdict = codex.judge(0, f"{completed}\n{failed}\n")
    assert not verdict.succeeded
    assert verdict.rate_limited


@pytest.mark.parametrize("preset", list(PRESETS))
def test_no_output_is_no_success(preset: str) -> None:
    assert not PRESETS[preset].judge(1, "").succeeded
    if preset != "aider":  # aider prints no result: only its error lines can fail an exit 0
        assert not PRESETS[preset].judge(0, "").succeeded


# The real CLIs, launched as the presets say


@pytest.mark.parametrize("cli", clis.ALL, ids=lambda c: c.name)
def test_oneshot_launch_runs_the_real_cli(cli: clis.AgentCLI, tmp_path: Path) -> None:
    reason = cli.missing()
    if reason is not None:
        pytest.skip(reason)
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    model = f"openai/{clis.AIDER_MODEL}" if cli is clis.AIDER else None
    options = CLIOptions(mode=Mode.ONESHOT, program=str(cli.executable), model=model)
    preset = PRESETS[cli.name]
    with LLMServer(Script([Text("Judged by the preset.")])) as llm:
        launch = preset.launch(_spec(), HOST_ENV, options, HookSetup(("true",), tmp_path / "config"))
        result = subprocess.run(
            list(launch.argv),
            cwd=work,
            env={**clis.base_env(cli.env(home, llm.url, work)), **launch.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=240,
            check=False,
        )
        assert any(r.asks(PROMPT) for r in llm.requests), result.stdout[-3000:]
    verdict = preset.judge(result.returncode, result.stdout)
    assert verdict.succeeded, f"{verdict}\n{result.stdout[-3000:]}"


# The registry


def test_built_in_presets_by_name() -> None:
    assert preset_names()[:5] == ["shell", "claude", "codex", "gemini", "aider"]
    assert isinstance(preset_named("shell"), ShellPreset)
    for name, preset in PRESETS.items():
        assert type(cli_preset(name)) is type(preset)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(PresetError, match=r'unknown preset "nope" \(known: "shell", "claude"'):
        preset_named("nope")


def test_shell_is_not_a_cli_preset() -> None:
    with pytest.raises(PresetError, match="not an agent CLI preset"):
        cli_preset("shell")


def _install(site: Path, dist: str, entry_points: str, module: str = "", code: str = "") -> None:
    """A distribution on ``site`` (a sys.path entry) the way pip leaves one: dist-info with entry points."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[agentsup.presets]\n{entry_points}\n")
    if module:
        (site / f"{module}.py").write_text(code)


THIRD_PARTY = """
from agentsup.agents.base import Launch


class EchoPreset:
    name = "echo"

    def launch(self, spec, env):
        return Launch(argv=("echo", spec.name), env=dict(env))
"""


def test_a_third_party_preset_comes_from_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        tmp_path, "agentsup_echo", "echo = agentsup_echo_mod:EchoPreset", "agentsup_echo_mod", THIRD_PARTY
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "agentsup_echo_mod", raising=False)
    assert "echo" in preset_names()
    preset = preset_named("echo")
    assert preset.launch(AgentSpec(name="x"), {}).argv == ("echo", "x")  # type: ignore[call-arg]
    with pytest.raises(PresetError, match="not an agent CLI preset"):
        cli_preset("echo")


def test_a_broken_entry_point_says_which_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, "agentsup_broken", "broken = agentsup_missing_mod:Nothing")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        PresetError, match=r'preset "broken" \(agentsup_missing_mod:Nothing from agentsup_broken'
    ):
        preset_named("broken")


def test_two_packages_with_one_preset_name_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, "agentsup_one", "twin = one_mod:Preset")
    _install(tmp_path, "agentsup_two", "twin = two_mod:Preset")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PresetError, match="more than one entry point"):
        preset_named("twin")


def test_a_built_in_name_is_not_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(
        tmp_path, "agentsup_fake", "claude = agentsup_fake_mod:EchoPreset", "agentsup_fake_mod", THIRD_PARTY
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(preset_named("claude"), ClaudePreset)
    assert preset_names().count("claude") == 1
