"""What the installed tmux can do, decided from what ``tmux -V`` prints. Pure: nothing here runs tmux.

agentsup needs tmux 3.0: ``new-window -e`` (the supervisor window's environment on ``resume``) and running a
window's argv without a shell when it has several arguments (an agent pane runs ``/bin/sh WRAPPER``) both
came with it. Three later features are used when present and worked around when not:

- 3.2 ``new-session -e``: before it, the supervisor's environment goes through ``env(1)`` on its command
  line and ``set-environment`` on the session, which is what ``-e`` does.
- 3.2 control-mode client flags (``refresh-client -f no-output,ignore-size``): with them the engine sends
  its tmux commands through one persistent control-mode client (:mod:`agentsup.sessions.controlmode`);
  before them, through one tmux process per command.
- 3.3 ``#{pane_dead_signal}``: before it, a pane killed by a signal looks like one tmux has not reaped yet,
  which costs the backend a SIGCHLD nudge to the server and nothing else.

Everything else agentsup asks of tmux is older than 3.0: exact targets (``=name``, 2.1), ``@user`` options
(1.8), ``#{pid}`` (2.1), ``pipe-pane``, ``display-message -p``, ``remain-on-exit``, ``#{pane_dead_status}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentsup.sessions.backend import BackendError

MINIMUM = (3, 0)
SESSION_ENV = (3, 2)
DEAD_SIGNAL = (3, 3)
CONTROL_FLAGS = (3, 2)
INSTALL_ADVICE = "install tmux >= 3.0, e.g. `apt install tmux` / `brew install tmux`"
WHY_MINIMUM = (
    "it passes a window its environment with `new-window -e` and runs a window's command without a shell, "
    "both new in tmux 3.0"
)

_NUMBER = re.compile(r"([0-9]+)\.([0-9]+)")
_OPENBSD = re.compile(r"openbsd-([0-9]+)\.([0-9]+)")
_NEXT = re.compile(r"next-([0-9]+)\.([0-9]+)")
# OpenBSD's base tmux says the OpenBSD release, not tmux's. Each maps to the last tmux release made before
# that OpenBSD release (tmux is developed in OpenBSD's tree, so the base tmux has at least its features).
_OPENBSD_TMUX = {
    (6, 5): (2, 8),
    (6, 6): (2, 9),
    (6, 7): (3, 1),
    (6, 8): (3, 1),
    (6, 9): (3, 2),
    (7, 0): (3, 2),
    (7, 1): (3, 2),
    (7, 2): (3, 3),
    (7, 3): (3, 3),
    (7, 4): (3, 3),
    (7, 5): (3, 4),
    (7, 6): (3, 5),
}
_NEWEST_KNOWN = (3, 5)


class TmuxTooOldError(BackendError):
    """The installed tmux lacks something agentsup cannot work without."""


def parse_version(text: str) -> tuple[int, int] | None:
    """The first (major, minor) ``tmux -V`` printed, as printed; None when it has none (``tmux master``)."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class TmuxVersion:
    """What ``tmux -V`` said, and the tmux release whose features the build has at least."""

    text: str
    at_least: tuple[int, int] | None  # None: a build from tmux's git without a number: as new as they come

    @classmethod
    def parse(cls, text: str) -> TmuxVersion:
        """``tmux 3.3a``, ``tmux 3.0-rc5``, ``tmux next-3.5``, ``tmux master``, ``tmux openbsd-7.4``."""
        text = text.strip()
        if (match := _OPENBSD.search(text)) is not None:
            release = (int(match.group(1)), int(match.group(2)))
            if release in _OPENBSD_TMUX:
                return cls(text, _OPENBSD_TMUX[release])
            return cls(text, _NEWEST_KNOWN if release > max(_OPENBSD_TMUX) else (2, 7))
        if (match := _NEXT.search(text)) is not None:
            # The development of X.Y: it has what the release before X.Y had, maybe not yet X.Y's features.
            major, minor = int(match.group(1)), int(match.group(2))
            return cls(text, (major, minor - 1) if minor > 0 else (major - 1, 9))
        return cls(text, parse_version(text))

    def has(self, feature: tuple[int, int]) -> bool:
        return self.at_least is None or self.at_least >= feature

    def describe(self) -> str:
        """``tmux 2.9`` for a release; what it printed, and the release it stands for, for other builds."""
        if self.at_least is None:
            return self.text
        number = f"{self.at_least[0]}.{self.at_least[1]}"
        if _OPENBSD.search(self.text) or _NEXT.search(self.text):
            return f"{self.text} (as far as features go, tmux {number})"
        return f"tmux {number}"


@dataclass(frozen=True)
class TmuxFeatures:
    """The features agentsup adapts to; a tmux lacking a required one is refused by :func:`features_of`."""

    version: TmuxVersion
    session_env: bool  # new-session -e (3.2)
    dead_signal: bool  # #{pane_dead_signal} (3.3)
    control_flags: bool  # control-mode client flags no-output and ignore-size (3.2)


def features_of(version: TmuxVersion, binary: str) -> TmuxFeatures:
    """What ``binary`` (reporting ``version``) can do; TmuxTooOldError when agentsup cannot work with it."""
    if not version.has(MINIMUM):
        raise TmuxTooOldError(
            f"{binary} is {version.describe()}; agentsup needs tmux >= {MINIMUM[0]}.{MINIMUM[1]}: "
            f"{WHY_MINIMUM}; {INSTALL_ADVICE}"
        )
    return TmuxFeatures(
        version,
        session_env=version.has(SESSION_ENV),
        dead_signal=version.has(DEAD_SIGNAL),
        control_flags=version.has(CONTROL_FLAGS),
    )
