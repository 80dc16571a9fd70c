"""The dashboard in a browser: textual-serve runs a command per browser session and relays its screen.

Each page opened starts its own ``agentsup tui RUN`` process, with Textual's web driver, fed through a
websocket; closing the page ends that process, and stopping the server ends them all. None of it touches
the run, which goes on in tmux.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from textual_serve.server import Server


def serve(argv: Sequence[str], *, host: str, port: int, title: str) -> None:
    """Serve ``argv``'s Textual app on http://HOST:PORT/ until SIGINT or SIGTERM; raises OSError when the
    address cannot be bound."""
    # textual-serve runs its command through a shell, and tells the page to reach it at host:port.
    Server(shlex.join(argv), host=host, port=port, title=title).serve()
