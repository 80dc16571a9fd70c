"""Which tmux agentsup accepts and what it adapts to, from ``tmux -V``; the pre-3.2 session environment."""

from __future__ import annotations

import dataclasses

import pytest

from agentsup.sessions.probe import TmuxTooOldError, TmuxVersion, features_of
from tests.tmuxenv import DEFAULT_SESSION, TmuxEnv, wait_until


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("tmux 3.3a", (3, 3)),
        ("tmux 3.0-rc5", (3, 0)),
        ("tmux 3.10", (3, 10)),
        ("tmux next-3.5", (3, 4)),  # on its way to 3.5: 3.4's features at least
        ("tmux next-4.0", (3, 9)),
        ("tmux master", None),  # a git build without a number: the newest
        ("tmux 2.9", (2, 9)),
        ("tmux openbsd-7.4", (3, 3)),  # OpenBSD's release, not tmux's
        ("tmux openbsd-6.6", (2, 9)),
        ("tmux openbsd-9.9", (3, 5)),  # newer than agentsup knows of
        ("tmux openbsd-5.9", (2, 7)),
        ("tmux 3.3a\n", (3, 3)),
    ],
)
def test_version_text_to_the_release_whose_features_it_has(
    text: str, at_least: tuple[int, int] | None
) -> None:
    assert TmuxVersion.parse(text).at_least == at_least


@pytest.mark.parametrize(
    ("text", "session_env", "dead_signal"),
    [
        ("tmux 3.0a", False, False),  # Ubuntu 20.04
        ("tmux 3.1c", False, False),  # Debian 11
        ("tmux 3.2a", True, False),  # Ubuntu 22.04, RHEL 9
        ("tmux 3.3a", True, True),  # Debian 12
        ("tmux 3.5a", True, True),
        ("tmux next-3.3", True, False),
        ("tmux master", True, True),
        ("tmux openbsd-6.9", True, False),
        ("tmux openbsd-7.5", True, True),
    ],
)
def test_features_degrade_by_version(text: str, session_env: bool, dead_signal: bool) -> None:
    features = features_of(TmuxVersion.parse(text), "/usr/bin/tmux")
    assert (features.session_env, features.dead_signal) == (session_env, dead_signal)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("tmux 2.9", "tmux 2.9"),
        ("tmux 2.9a", "tmux 2.9"),
        ("tmux 1.8", "tmux 1.8"),
        ("tmux next-3.0", "tmux next-3.0 (as far as features go, tmux 2.9)"),
        ("tmux openbsd-6.6", "tmux openbsd-6.6 (as far as features go, tmux 2.9)"),
    ],
)
def test_a_tmux_older_than_3_0_is_refused_saying_why(text: str, shown: str) -> None:
    with pytest.raises(TmuxTooOldError) as caught:
        features_of(TmuxVersion.parse(text), "/opt/bin/tmux")
    message = str(caught.value)
    assert message.startswith(f"/opt/bin/tmux is {shown}; agentsup needs tmux >= 3.0: ")
    assert "new-window -e" in message
    assert "apt install tmux" in message


@pytest.mark.tmux
@pytest.mark.parametrize("session_env", [True, False], ids=["new-session -e", "before 3.2"])
def test_the_supervisor_and_the_session_get_the_environment_either_way(
    tmux_env: TmuxEnv, session_env: bool
) -> None:
    backend = tmux_env.backend()
    # The installed tmux is >= 3.2; the other path is what a 3.0 or 3.1 would take, run on this one.
    backend.features = dataclasses.replace(backend.features, session_env=session_env)
    seen = tmux_env.root / "seen"
    script = 'printf "%s|%s" "$PROBE_A" "$PROBE_B" > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 600'
    env = {"PROBE_A": "a value; with=signs", "PROBE_B": "#{not_a_format}"}

    backend.create_session(DEFAULT_SESSION, ["/bin/sh", "-c", script, str(seen)], tmux_env.root, env)

    wait_until(seen.exists, message="the supervisor window's command to run")
    assert seen.read_text() == "a value; with=signs|#{not_a_format}"
    shown = tmux_env.tmux("show-environment", "-t", f"={DEFAULT_SESSION}").stdout.splitlines()
    assert {"PROBE_A=a value; with=signs", "PROBE_B=#{not_a_format}"} <= set(shown)
