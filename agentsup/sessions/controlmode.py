"""A persistent tmux control-mode client: tmux commands without a process per command.

A tmux command run as a subprocess costs a fork and an exec of the tmux client, about 4 ms here; a line
written to a control-mode client (``tmux -C attach``) costs the server's work alone, about 0.05 ms. The
engine sends every command that targets its session through one such client.

The protocol (tmux(1), CONTROL MODE): each line written is a command list, parsed as a line of a
configuration file. tmux answers each command it runs with one block, ``%begin TIME NUMBER FLAGS``, the
command's output lines, then ``%end …`` or ``%error …`` with the same TIME and NUMBER. A failing command ends
its list: the commands after it run not at all and get no block. A line that does not parse gets one
``%error`` block. Lines outside blocks are notifications (``%window-add``, ``%exit``…) and are skipped; the
client asks for no pane output (``no-output``) and leaves window sizes alone (``ignore-size``), both client
flags from tmux 3.2.

So a line of ``k`` commands is answered by ``k`` ``%end`` blocks, or by fewer blocks of which the last is an
``%error``. Replies come in the order the lines were written, which is how they are matched to callers.
"""

from __future__ import annotations

import re
import subprocess
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# What a reply says when the client ended before answering; the backend's "gone" test matches "lost server".
LOST = "lost server: the tmux control-mode client ended before it answered"
START_TIMEOUT = 10.0  # seconds for the client to attach and answer its first command
REPLY_TIMEOUT = 120.0  # seconds a command may take before the client is taken for hung and closed

_SAFE = re.compile(r"[A-Za-z0-9_@:=./,+-][A-Za-z0-9_@%:=./,+-]*\Z")


def quote(arg: str) -> str:
    """``arg`` as one literal word of tmux's command parser.

    In single quotes the parser replaces nothing (no ``$VAR``, ``~``, ``\\`` escapes, ``#`` comments, and a
    trailing ``;`` stays literal); a single quote itself is closed, given in double quotes, and reopened.
    Newlines cannot be given at all: a line is one command list (see :func:`can_send`).
    """
    if _SAFE.match(arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def can_send(commands: Sequence[Sequence[str]]) -> bool:
    """Whether ``commands`` fit on one control-mode line (no argument holds a line break)."""
    return not any("\n" in arg or "\r" in arg for command in commands for arg in command)


def command_line(commands: Sequence[Sequence[str]]) -> str:
    """One control-mode line running ``commands`` in order, as one command list."""
    return " ; ".join(" ".join(quote(arg) for arg in command) for command in commands)


@dataclass(frozen=True)
class Reply:
    """What a command list answered: as a tmux subprocess would give it (output, errors, status)."""

    returncode: int
    stdout: list[str]
    stderr: list[str]


@dataclass
class _Waiting:
    """A line written and not yet answered in full."""

    commands: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    failed: bool = False
    answered: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self) -> None:
        self.done.set()

    def reply(self) -> Reply:
        return Reply(1 if self.failed else 0, self.stdout, self.stderr)


class ControlClientError(Exception):
    """The client could not be started, or ended; the message says why."""


class ControlClient:
    """``tmux -L SOCKET -C attach -t =SESSION`` with a reader thread matching replies to the lines sent.

    Thread-safe: any thread may call :meth:`run` and :meth:`run_many`. Once the client has ended (the
    session or the server went away, or a reply took longer than REPLY_TIMEOUT), every call raises
    ControlClientError at once, and calls waiting for a reply get one with :data:`LOST` as its error.
    """

    def __init__(self, tmux_bin: str, socket_name: str, session: str, environ: Mapping[str, str]) -> None:
        self.session = session
        # A client started from inside tmux must not be taken for a nested attach.
        env = {k: v for k, v in environ.items() if k not in ("TMUX", "TMUX_PANE")}
        self._proc = subprocess.Popen(
            [tmux_bin, "-L", socket_name, "-C", "attach-session", "-t", f"={session}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the caller's terminal is not the client's
        )
        self._lock = threading.Lock()  # the waiting lines and the ended flag
        # Held across a write, so lines reach tmux in the order they were queued; never held by the reader,
        # which drains tmux's replies while a writer waits for room in the pipe.
        self._write_lock = threading.Lock()
        self._waiting: deque[_Waiting] = deque()
        self._ended = False
        self._attached = threading.Event()  # tmux says the client is attached: commands may come
        self._synced = threading.Event()  # the handshake's answer was read: later blocks are ours
        self._nonce = f"agentsup-control-{uuid.uuid4().hex}"
        self._reader = threading.Thread(target=self._read, name="agentsup-tmux-control", daemon=True)
        self._reader.start()
        try:
            self._handshake()
        except ControlClientError:
            self.close()
            raise

    @property
    def alive(self) -> bool:
        return not self._ended

    def _handshake(self) -> None:
        # A line read before the attach is done runs without a client ("no current client"): wait for the
        # attach's own reply (or its %session-changed). What tmux sends before the answer to the line below
        # is skipped.
        if not self._attached.wait(START_TIMEOUT):
            raise ControlClientError(f"tmux control-mode client for {self.session!r} did not attach")
        self._write(f"refresh-client -f no-output,ignore-size ; display-message -p {self._nonce}\n")
        if not self._synced.wait(START_TIMEOUT):
            raise ControlClientError(f"tmux control-mode client for {self.session!r} did not answer")
        if self._ended:
            raise ControlClientError(f"tmux control-mode client for {self.session!r} ended at once")

    def run(self, commands: Sequence[Sequence[str]]) -> Reply:
        """Run one command list and wait for its reply."""
        return self.run_many([commands])[0]

    def run_many(self, lists: Sequence[Sequence[Sequence[str]]]) -> list[Reply]:
        """Run several command lists, written at once (one write), and wait for all their replies."""
        return [self.wait(waiting) for waiting in self.submit(lists)]

    def submit(self, lists: Sequence[Sequence[Sequence[str]]]) -> list[_Waiting]:
        """Write several command lists at once without waiting; :meth:`wait` gives each one's reply."""
        waits = [_Waiting(len(commands)) for commands in lists]
        text = "".join(command_line(commands) + "\n" for commands in lists)
        with self._write_lock:
            with self._lock:
                if self._ended:
                    raise ControlClientError(f"tmux control-mode client for {self.session!r} has ended")
                self._waiting.extend(waits)
            try:
                self._write(text)
            except (OSError, ValueError) as exc:  # ValueError: closed meanwhile by close()
                self._end()
                raise ControlClientError(f"tmux control-mode client for {self.session!r}: {exc}") from exc
        return waits

    def wait(self, waiting: _Waiting) -> Reply:
        """The reply to a line :meth:`submit` wrote."""
        if not waiting.done.wait(REPLY_TIMEOUT):
            self.close()  # hung: every waiting caller gets LOST
        return waiting.reply()

    def _write(self, text: str) -> None:
        stdin = self._proc.stdin
        if stdin is None:
            raise OSError("no pipe to the tmux client")
        stdin.write(text.encode("utf-8", "surrogateescape"))
        stdin.flush()

    # -- the reader thread ------------------------------------------------------------------------------

    def _read(self) -> None:
        stdout = self._proc.stdout
        block: list[str] | None = None
        guard = ""
        try:
            for raw in stdout or ():
                line = raw.decode("utf-8", "replace").rstrip("\n").removesuffix("\r")
                if block is None:
                    words = line.split(" ")
                    if words[0] == "%begin" and len(words) >= 3:
                        block, guard = [], words[2]
                    elif words[0] == "%session-changed":
                        self._attached.set()
                    continue  # a notification
                words = line.split(" ")
                if words[0] in ("%end", "%error") and len(words) >= 3 and words[2] == guard:
                    self._answer(block, failed=words[0] == "%error")
                    block = None
                else:
                    block.append(line)
        finally:
            self._end()

    def _answer(self, output: list[str], *, failed: bool) -> None:
        if not self._attached.is_set():  # the first reply is the attach's own
            self._attached.set()
            return
        if not self._synced.is_set():
            if self._nonce in output:
                self._synced.set()
            return
        with self._lock:
            if not self._waiting:
                return  # a block nobody asked for
            waiting = self._waiting[0]
            (waiting.stderr if failed else waiting.stdout).extend(output)
            waiting.answered += 1
            waiting.failed = failed
            if failed or waiting.answered >= waiting.commands:
                self._waiting.popleft()
                waiting.finish()

    def _end(self) -> None:
        with self._lock:
            self._end_locked()
        self._attached.set()  # a handshake waiting for an answer that will not come
        self._synced.set()

    def _end_locked(self) -> None:
        self._ended = True
        while self._waiting:
            waiting = self._waiting.popleft()
            waiting.failed = True
            waiting.stderr.append(LOST)
            waiting.finish()

    def close(self) -> None:
        """End the client (it detaches; the session goes on) and fail what still waits for a reply."""
        with self._lock:
            self._end_locked()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()  # tmux's control client exits when its input ends
        except OSError:
            pass
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=2.0)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


__all__ = ["LOST", "ControlClient", "ControlClientError", "Reply", "can_send", "command_line", "quote"]
