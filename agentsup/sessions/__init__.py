"""Everything agentsup asks of tmux: sessions, agent windows, output capture, exit files, attach."""

from agentsup.sessions.backend import (
    Backend,
    BackendError,
    ExitRecord,
    LaunchSpec,
    Pane,
    TmuxNotFoundError,
)
from agentsup.sessions.exitfile import read_exit_file
from agentsup.sessions.tmux import TmuxBackend
from agentsup.sessions.wrapper import END_MARKER, render_wrapper

__all__ = [
    "END_MARKER",
    "Backend",
    "BackendError",
    "ExitRecord",
    "LaunchSpec",
    "Pane",
    "TmuxBackend",
    "TmuxNotFoundError",
    "read_exit_file",
    "render_wrapper",
]
