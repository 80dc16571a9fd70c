"""Each preset reads the screens recorded from its real CLI as the state their file names say.

The captures in ``tests/fixtures/screens/<preset>/<state>-N.txt`` come from tests/agents/record_screens.py,
which names them after what the scenario knew (the server held the turn, sent a file write, refused with a
429), never after what a preset reads; ``questions.json`` says what each dialog's question must name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsup.agents import AiderPreset, ClaudePreset, CLIPreset, CodexPreset, GeminiPreset, ScreenState

SCREENS = Path(__file__).resolve().parent.parent / "fixtures" / "screens"
PRESETS: dict[str, CLIPreset] = {
    "claude": ClaudePreset(),
    "codex": CodexPreset(),
    "gemini": GeminiPreset(),
    "aider": AiderPreset(),
}
# What every recording must hold; a CLI that shows no rate limit on screen would be listed here without it.
REQUIRED = {ScreenState.READY, ScreenState.BUSY, ScreenState.NEEDS_PERMISSION, ScreenState.RATE_LIMITED}
SHOWS_RESET = {"gemini"}  # "Access resets at 1:26 AM UTC."; the others show no reset time for an API key


def _state(path: Path) -> ScreenState:
    return ScreenState(path.stem.rsplit("-", 1)[0])


def _fixtures() -> list[tuple[str, Path]]:
    return [(name, path) for name in PRESETS for path in sorted((SCREENS / name).glob("*.txt"))]


def _questions(preset: str) -> dict[str, str]:
    index = SCREENS / preset / "questions.json"
    return dict(json.loads(index.read_text())) if index.exists() else {}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_state_was_recorded(preset: str) -> None:
    recorded = {_state(path) for path in (SCREENS / preset).glob("*.txt")}
    assert recorded >= REQUIRED, f"run: python -m tests.agents.record_screens {preset}"


@pytest.mark.parametrize(("preset", "path"), _fixtures(), ids=lambda v: v if isinstance(v, str) else v.stem)
def test_recorded_screen_reads_as_its_state(preset: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    screen = PRESETS[preset].read_screen(text)
    assert screen.state is _state(path), f"{path.relative_to(SCREENS)} read as {screen}"
    if screen.state is ScreenState.NEEDS_PERMISSION:
        assert screen.question, "a dialog without its question"
        for line in screen.question.splitlines():
            assert line in text, f"the question's line {line!r} is not on the screen"
        must_name = _questions(preset).get(path.name)
        assert must_name is not None, f"questions.json says nothing about {path.name}"
        assert must_name in screen.question.lower() or must_name in screen.question
    else:
        assert screen.question is None
    if screen.state is ScreenState.RATE_LIMITED and preset in SHOWS_RESET:
        assert screen.reset, "the reset time on the screen was not read"
        assert screen.reset in text
    else:
        assert screen.reset is None


def test_claude_approves_the_trust_question_by_moving_to_yes() -> None:
    """Its trust question starts on "No, exit" and has no numbers; a permission dialog starts on "Yes"."""
    claude = PRESETS["claude"]
    questions = _questions("claude")
    trust = next(SCREENS / "claude" / name for name, what in questions.items() if what == "trust")
    write = next(SCREENS / "claude" / name for name, what in questions.items() if what != "trust")
    assert claude.approve_keys(trust.read_text()) == ("Down", "Enter")
    assert claude.approve_keys(write.read_text()) == ("Enter",)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_an_answer_about_rate_limits_is_no_rate_limit(preset: str) -> None:
    text = (SCREENS / preset / "ready-2.txt").read_text(encoding="utf-8")
    assert "First answer." in text
    talk = "Handling a 429: back off when the API provider has rate limited you (usage limit reached)."
    assert PRESETS[preset].read_screen(text.replace("First answer.", talk)).state is ScreenState.READY
