"""``agentsup hook EVENT [ARG…]``: what an agent CLI's hooks run (installed per run by its preset).

It appends one JSON line, ``{"event", "payload", "args", "at"}``, to the file ``$AGENTSUP_HOOKS`` names
(the pane gives every agent its own), and prints nothing: some CLIs read a hook's stdout as an answer.
The payload is what the CLI wrote to the hook's stdin (JSON, for Claude Code, Codex and Gemini CLI), else
the last extra argument (Codex's ``notify`` passes its JSON that way). Stdlib only and no click, so a hook
costs a Python start-up and nothing more: ``python -m agentsup hook`` skips the rest of the CLI.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

HOOKS_VARIABLE = "AGENTSUP_HOOKS"
STDIN_LIMIT = 1 << 20  # bytes of payload kept; a CLI's hook input is a few KiB
STDIN_WAIT = 2.0  # seconds to wait for a writer that keeps stdin open without writing


def read_payload(stdin: IO[bytes] | None) -> str:
    """Whatever the CLI writes to the hook's stdin, up to STDIN_LIMIT bytes; "" for a terminal."""
    if stdin is None or stdin.isatty():
        return ""
    fd, chunks, size = stdin.fileno(), [], 0
    deadline = time.monotonic() + STDIN_WAIT
    while size < STDIN_LIMIT:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:STDIN_LIMIT].decode("utf-8", "replace")


def record(event: str, args: Sequence[str], payload: str, environ: Mapping[str, str]) -> str | None:
    """Append the hook call to ``$AGENTSUP_HOOKS``; the reason it could not, or None."""
    path = environ.get(HOOKS_VARIABLE)
    if not path:
        return f"${HOOKS_VARIABLE} is not set: this runs from an agent CLI's hook inside an agentsup pane"
    if not payload and args:
        payload = args[-1]
    line = json.dumps({"event": event, "payload": payload, "args": list(args), "at": time.time()}) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as e:
        return f"cannot open {path}: {e.strerror}"
    try:
        os.write(fd, line.encode())  # one write to an O_APPEND file: lines never interleave
    except OSError as e:
        return f"cannot write {path}: {e.strerror}"
    finally:
        os.close(fd)
    return None


def main(argv: Sequence[str]) -> int:
    """``argv``: EVENT [ARG…]."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 0 if argv else 2
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    problem = record(argv[0], argv[1:], read_payload(stdin), os.environ)
    if problem is not None:
        print(f"agentsup hook: {problem}", file=sys.stderr)
        return 2
    return 0
