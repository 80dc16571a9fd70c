"""The tmux backend: one tmux command list per operation, on agentsup's own socket.

A list goes to the engine's control-mode client (:mod:`agentsup.sessions.controlmode`) when there is one,
else to a tmux process (``tmux -L SOCKET cmd ; cmd …``). No tmux library: libtmux's object API costs several
tmux calls per operation and races windows whose command exits at once, and its ``Server.cmd``, the only
part that was used, is a process call whose import cost every agentsup command 0.05 s.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agentsup.sessions import controlmode
from agentsup.sessions.backend import BackendError, LaunchSpec, Pane, TmuxNotFoundError
from agentsup.sessions.controlmode import ControlClient, ControlClientError, Reply
from agentsup.sessions.probe import INSTALL_ADVICE, TmuxFeatures, TmuxVersion, features_of, parse_version
from agentsup.sessions.wrapper import render_wrapper

SUPERVISOR_WINDOW = "supervisor"
TAG_RUN = "@agentsup_run"
TAG_AGENT = "@agentsup_agent"
TAG_ATTEMPT = "@agentsup_attempt"

# Tabs cannot appear in tag values (checked at spawn) nor in ids and numbers; window names are left out.
_PANE_FIELDS = (
    "#{window_id}",
    "#{pane_id}",
    "#{pane_pid}",
    "#{pane_dead}",
    "#{pane_dead_status}",
    "#{pane_dead_signal}",
    "#{" + TAG_RUN + "}",
    "#{" + TAG_AGENT + "}",
    "#{" + TAG_ATTEMPT + "}",
    "#{pid}",
)
_PANE_FORMAT = "\t".join(_PANE_FIELDS)
_SPAWNED = "#{window_id} #{pane_id} #{pane_pid}"

_SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_WINDOW_ID = re.compile(r"@[0-9]+\Z")
_PANE_ID = re.compile(r"%[0-9]+\Z")
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z|[^\s;]\Z")  # Enter, C-c, BTab, y, 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What tmux says when the target, or the whole server, no longer exists (or is dying as it is asked).
_GONE = ("can't find", "no such", "no server running", "error connecting to", "server exited", "lost server")

# Windows asked of tmux at once by spawn_many. tmux opens a window in 3-5 ms here, during which it reads no
# pane: with 100 asked at once, the end markers of the agents that had ended already reached their logs
# 19 ms after the exit file (p50; p90 57 ms), and bench/'s detection p99 was 57-66 ms; 14-18 ms with one
# window in flight, 16-24 ms with two. Each round trip costs tmux a pass of its event loop, which grows
# with the panes: two windows in flight opened 500 about as fast as all at once, one 0.4 s slower.
SPAWN_IN_FLIGHT = 2

_STOP_POLL = 0.02
_KILL_WAIT = 1.0
_RECONNECT_AFTER = 1.0  # seconds between attempts to bring back an ended control-mode client

Commands = Sequence[Sequence[str]]


def _tmux_arg(value: str) -> str:
    """``value`` as one literal tmux argument.

    tmux's argv parser takes an argument ending in ``;`` as a command separator and ``\\;`` as a
    literal ``;``; nothing else in an argument is special to the parser.
    """
    if value.endswith(";"):
        return value[:-1] + "\\;"
    return value


def _format_literal(value: str) -> str:
    """``value`` for an argument tmux expands as a format (``-n``, ``-c``, ``pipe-pane``'s command)."""
    return value.replace("#", "##")


def _batch(*commands: Sequence[str]) -> list[str]:
    """One argv running ``commands`` in order; tmux stops the list at the first failing command."""
    argv: list[str] = []
    for command in commands:
        if argv:
            argv.append(";")
        argv.extend(_tmux_arg(arg) for arg in command)
    return argv


def _check_session_name(session: str) -> None:
    if not _SESSION_NAME.match(session):
        raise BackendError(
            f"invalid tmux session name {session!r}: use letters, digits, '_' and '-', starting with a "
            "letter or digit (tmux expands '#' and reserves ':' and '.' in names)"
        )


def _check_id(kind: str, value: str, pattern: re.Pattern[str]) -> None:
    if not pattern.match(value):
        raise BackendError(f"invalid tmux {kind} id {value!r}")


def _check_tag(name: str, value: str) -> None:
    if not value or _CONTROL.search(value):
        raise BackendError(f"invalid {name} {value!r}: must be non-empty without control characters")


def _check_no_nul(what: str, value: str) -> None:
    if "\0" in value:
        raise BackendError(f"{what} contains a NUL character, which no process argument can carry")


def _is_gone(errors: Sequence[str]) -> bool:
    return any(marker in line for line in errors for marker in _GONE)


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _write_script(path: Path, text: str) -> None:
    """Create the script; when one of that name exists (an attempt spawned again on resume), write a new
    file and rename it over the old one: a shell still reading the old script keeps its own copy."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    except FileExistsError:
        pass
    else:  # one file system operation instead of two, on the path to every agent's start
        with os.fdopen(fd, "w", encoding="utf-8") as script:
            os.fchmod(script.fileno(), 0o700)
            script.write(text)
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w", encoding="utf-8") as script:
        os.fchmod(script.fileno(), 0o700)
        script.write(text)
    tmp.replace(path)


class TmuxBackend:
    """The :class:`~agentsup.sessions.backend.Backend` on a local tmux server (``tmux -L socket_name``).

    Thread-safe: spawn may be called from several worker threads at once.

    Each operation is one tmux command list: a tmux process per list, or, once :meth:`connect` was called,
    a line to a persistent control-mode client (:mod:`agentsup.sessions.controlmode`) for the operations
    on that session's panes, falling back to a process whenever the client cannot take the line.
    """

    def __init__(self, socket_name: str, tmux_bin: str | None = None) -> None:
        resolved = shutil.which(tmux_bin or "tmux")
        if resolved is None:
            where = f"{tmux_bin!r} was not found" if tmux_bin else "tmux was not found on PATH"
            raise TmuxNotFoundError(f"{where}: {INSTALL_ADVICE}")
        self.socket_name = socket_name
        self.tmux_bin = resolved
        self._lock = threading.Lock()
        self._next_index: dict[str, int] = {}
        self._control_session: str | None = None
        self._control: ControlClient | None = None
        self._control_tried = 0.0  # monotonic time of the last attempt to start a client
        self._control_lock = threading.Lock()
        # Refuses a tmux agentsup cannot work with (TmuxTooOldError), before anything is created.
        self.features: TmuxFeatures = features_of(self.probe_version(), resolved)

    # -- running tmux -------------------------------------------------------------------------------

    def connect(self, session: str) -> None:
        """Send the commands on ``session``'s panes through a control-mode client from now on.

        Nothing is started here: the client is started by the first command that can use it, and started
        again (at most once a second) after it ended. A tmux without the client flags (before 3.2) keeps
        using a process per command.
        """
        _check_session_name(session)
        with self._control_lock:
            if session != self._control_session and self._control is not None:
                self._control.close()
                self._control = None
            self._control_session = session if self.features.control_flags else None

    def close(self) -> None:
        """End the control-mode client, if any; the backend goes on with a process per command."""
        with self._control_lock:
            client, self._control, self._control_session = self._control, None, None
        if client is not None:
            client.close()

    def _client(self) -> ControlClient | None:
        """The live control-mode client, started (again) if need be; None: use a process per command."""
        with self._control_lock:
            session = self._control_session
            if session is None:
                return None
            if self._control is not None:
                if self._control.alive:
                    return self._control
                self._control = None
            if time.monotonic() - self._control_tried < _RECONNECT_AFTER:
                return None
            self._control_tried = time.monotonic()
            try:
                self._control = ControlClient(self.tmux_bin, self.socket_name, session, os.environ)
            except (ControlClientError, OSError):
                return None  # the session is gone, or tmux refused: a process per command meanwhile
            return self._control

    def _tmux(self, commands: Commands, *, control: bool = True) -> Reply:
        """Run one command list; through the control-mode client when ``control`` and there is one."""
        client = self._client() if control else None
        if client is not None and controlmode.can_send(commands):
            try:
                return client.run(commands)
            except ControlClientError:
                pass  # it ended before the line was written: a process runs it instead
        try:
            proc = subprocess.run(  # stdin stays the caller's, as for any tmux command typed
                [self.tmux_bin, "-L", self.socket_name, *_batch(*commands)],
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="backslashreplace",
                check=False,
            )
        except OSError as exc:  # removed or made unrunnable since the backend found it
            raise TmuxNotFoundError(f"{self.tmux_bin} could not be run ({exc}): {INSTALL_ADVICE}") from exc
        stdout = proc.stdout.split("\n")
        while stdout and not stdout[-1]:  # the output's final newline, and blank lines before it
            stdout.pop()
        return Reply(proc.returncode, stdout, [line for line in proc.stderr.split("\n") if line])

    def _run(self, commands: Commands, what: str, *, control: bool = True) -> list[str]:
        proc = self._tmux(commands, control=control)
        if proc.returncode != 0:
            raise BackendError(f"tmux could not {what}: {_errors(proc)}")
        return proc.stdout

    def _run_unless_gone(self, commands: Commands, what: str, *, control: bool = True) -> list[str] | None:
        """Like ``_run``, but None when the target or the server does not exist."""
        proc = self._tmux(commands, control=control)
        if proc.returncode == 0:
            return proc.stdout
        if _is_gone(proc.stderr):
            return None
        raise BackendError(f"tmux could not {what}: {_errors(proc)}")

    def probe_version(self) -> TmuxVersion:
        """What the tmux binary says it is (``tmux -V``: no server is asked)."""
        try:
            argv = [self.tmux_bin, f"-L{self.socket_name}", "-V"]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise TmuxNotFoundError(f"{self.tmux_bin} could not be run: {INSTALL_ADVICE}") from exc
        if proc.returncode != 0:
            raise BackendError(f"tmux could not report its version: {proc.stderr.strip() or proc.returncode}")
        return TmuxVersion.parse(proc.stdout.strip())

    def tmux_version(self) -> tuple[int, int] | None:
        """The (major, minor) version of the tmux binary; None for development builds."""
        return parse_version(self.probe_version().text)

    def socket_path(self) -> Path:
        """Where this server's socket is, computed as tmux does (``$TMUX_TMPDIR`` or /tmp)."""
        base = os.environ.get("TMUX_TMPDIR") or "/tmp"
        return Path(os.path.realpath(Path(base) / f"tmux-{os.getuid()}")) / self.socket_name

    # -- sessions -----------------------------------------------------------------------------------

    def create_session(self, session: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        """Create ``session`` whose first window, ``supervisor``, runs ``argv`` (exec'd, no shell)."""
        command = ["new-session", "-d", "-s", session, "-n", SUPERVISOR_WINDOW, "-x", "200", "-y", "50"]
        with_flags = self.features.session_env
        command += self._supervisor_args(session, argv, cwd, env, env_flags=with_flags)
        # Before tmux 3.2 (no new-session -e) the session gets the environment -e would have given it.
        target = f"={session}"
        session_env = [] if with_flags else [["set-environment", "-t", target, k, v] for k, v in env.items()]
        # A user's destroy-unattached would kill the detached session at once.
        options = ["set-option", "-t", f"={session}:", "destroy-unattached", "off"]
        self._run([command, *session_env, options], f"create session {session!r}", control=False)
        with self._lock:
            self._next_index.pop(session, None)

    def reopen_supervisor(self, session: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        """Run ``argv`` in a new ``supervisor`` window of ``session``, or in a new session if it is gone."""
        if not self.has_session(session):
            self.create_session(session, argv, cwd, env)
            return
        command = ["new-window", "-d", "-t", f"={session}:", "-n", SUPERVISOR_WINDOW]
        command += self._supervisor_args(session, argv, cwd, env, env_flags=True)
        self._run([command], f"open the supervisor window of session {session!r}", control=False)

    @staticmethod
    def _supervisor_args(
        session: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, env_flags: bool
    ) -> list[str]:
        """``-c``, the environment (``-e``, or ``env(1)`` before argv without ``env_flags``), then argv."""
        _check_session_name(session)
        if not argv:
            raise BackendError(f"session {session!r}: empty argv for the supervisor window")
        cwd_text = str(Path(cwd).absolute())
        _check_no_nul("supervisor cwd", cwd_text)
        args = ["-c", _format_literal(cwd_text)]
        for name, value in env.items():
            if not name or "=" in name:
                raise BackendError(f"session {session!r}: invalid environment variable name {name!r}")
            _check_no_nul(f"supervisor env {name}", value)
        for arg in argv:
            _check_no_nul("supervisor argv", arg)
        if env_flags:
            for name, value in env.items():
                args += ["-e", f"{name}={value}"]
        elif env:
            if "=" in argv[0]:  # env(1) would take it for one more variable
                raise BackendError(f"session {session!r}: cannot run {argv[0]!r} through env(1)")
            argv = ["/usr/bin/env", *(f"{name}={value}" for name, value in env.items()), *argv]
        # With more than one argument tmux >= 3.0 execs argv directly; a lone one would go through sh -c.
        return args + (["--", *argv] if len(argv) > 1 else ["--", "/bin/sh", "-c", 'exec "$0"', argv[0]])

    def has_session(self, session: str) -> bool:
        _check_session_name(session)
        return self._tmux([["has-session", "-t", f"={session}"]], control=False).returncode == 0

    def has_supervisor(self, session: str) -> bool:
        """Whether the session has a ``supervisor`` window (it closes when the engine exits)."""
        _check_session_name(session)
        proc = self._tmux([["list-windows", "-t", f"={session}", "-F", "#{window_name}"]], control=False)
        return proc.returncode == 0 and SUPERVISOR_WINDOW in proc.stdout

    def kill_session(self, session: str) -> None:
        """Kill the session and every pane in it; no error when it (or the server) is already gone."""
        _check_session_name(session)
        # Not through the control-mode client: it is attached to the session and ends with it.
        self._run_unless_gone(
            [["kill-session", "-t", f"={session}"]], f"kill session {session!r}", control=False
        )
        with self._lock:
            self._next_index.pop(session, None)

    # -- agent windows ------------------------------------------------------------------------------

    def _window_indexes(self, session: str) -> list[int]:
        lines = self._run(
            [["list-windows", "-t", f"={session}", "-F", "#{window_index}"]], f"list windows of {session!r}"
        )
        return [int(line) for line in lines if line.isdigit()]

    def _allocate_index(self, session: str, *, refresh: bool) -> int:
        with self._lock:
            if refresh or session not in self._next_index:
                used = self._window_indexes(session)
                first_free = max(used, default=-1) + 1
                self._next_index[session] = max(self._next_index.get(session, 0), first_free)
            index = self._next_index[session]
            self._next_index[session] = index + 1
            return index

    def _spawn_commands(self, session: str, index: int, launch: LaunchSpec) -> list[list[str]]:
        # Without an explicit target, commands after `new-window -d` act on the session's current window.
        target = f"={session}:{index}"
        # exec: the pipe is one process (cat), not a shell waiting on it.
        pipe = f"exec cat >> {shlex.quote(str(Path(launch.output_log).absolute()))}"
        name = _format_literal(launch.agent)
        script = str(Path(launch.script).absolute())
        return [
            ["new-window", "-d", "-P", "-F", _SPAWNED, "-t", target, "-n", name, "--", "/bin/sh", script],
            ["set-option", "-w", "-t", target, "remain-on-exit", "on"],
            ["set-option", "-w", "-t", target, TAG_RUN, launch.run],
            ["set-option", "-w", "-t", target, TAG_AGENT, launch.agent],
            ["set-option", "-w", "-t", target, TAG_ATTEMPT, str(launch.attempt)],
            ["pipe-pane", "-t", target, _format_literal(pipe)],
        ]

    def spawn(self, session: str, launch: LaunchSpec) -> Pane:
        """Write the wrapper and open a tagged window running it, in one tmux command list.

        No first byte is lost: tmux runs a whole command list before its event loop reads any pane, so
        ``pipe-pane`` is attached before the new pane's output is read, however fast the agent writes.
        """
        result = self.spawn_many(session, [launch])[0]
        if isinstance(result, BackendError):
            raise result
        return result

    def spawn_many(
        self,
        session: str,
        launches: Iterable[LaunchSpec],
        on_result: Callable[[LaunchSpec, Pane | BackendError], None] | None = None,
    ) -> list[Pane | BackendError]:
        """:meth:`spawn` for several launches: each one's pane, or the error that kept it from starting, in
        the order taken. ``on_result`` is called with each launch's result as soon as it is known.

        Launches are taken one at a time: the work of a lazy iterable (preparing the next agent) overlaps
        tmux's (opening the windows asked for). At most SPAWN_IN_FLIGHT windows are asked for at a time: tmux
        runs every command a client has queued before it reads any pane, so windows asked for all at once
        held the output of the agents already running, and the end markers of those that ended, for as long
        as tmux took to open them all."""
        _check_session_name(session)
        client = self._client()
        results: list[Pane | BackendError] = []
        asked: deque[tuple[int, LaunchSpec, _Asked]] = deque()

        def settle(slot: int, launch: LaunchSpec, result: Pane | BackendError) -> None:
            results[slot] = result
            if on_result is not None:
                on_result(launch, result)

        def answered(keep: int) -> None:
            while asked and (len(asked) > keep or asked[0][2].done()):
                slot, launch, ask = asked.popleft()
                reply = ask.reply()
                if reply.returncode != 0 and any("in use" in line for line in reply.stderr):
                    # Someone else (a user, another backend) took the index: re-read the session once.
                    index = self._allocate_index(session, refresh=True)
                    reply = self._tmux(self._spawn_commands(session, index, launch))
                settle(slot, launch, _spawned(session, launch, reply))

        for launch in launches:
            results.append(BackendError("not started"))  # replaced below
            try:
                _write_launch(launch)
            except BackendError as exc:
                settle(len(results) - 1, launch, exc)
                continue
            except OSError as exc:
                error = BackendError(f"could not write the wrapper of agent {launch.agent!r}: {exc}")
                settle(len(results) - 1, launch, error)
                continue
            answered(keep=SPAWN_IN_FLIGHT - 1)
            commands = self._spawn_commands(session, self._allocate_index(session, refresh=False), launch)
            asked.append((len(results) - 1, launch, self._ask(client, commands)))
        answered(keep=0)
        return results

    def _ask(self, client: ControlClient | None, commands: Commands) -> _Asked:
        """Send ``commands`` without waiting when the control-mode client can take them (else run them
        now)."""
        if client is not None and controlmode.can_send(commands):
            try:
                (waiting,) = client.submit([commands])
            except ControlClientError:
                pass  # it ended before the line was written: a process runs it instead
            else:
                return _Asked(waiting.done.is_set, partial(client.wait, waiting))
        reply = self._tmux(commands, control=False)
        return _Asked(lambda: True, lambda: reply)

    def list_panes(self, session: str) -> list[Pane]:
        """Every tagged agent pane of the session, alive or dead, in one call; [] without a session."""
        _check_session_name(session)
        rows = self._pane_rows(session)
        if any(row.unreaped for row in rows):
            # Debian's tmux (libutempter) can miss a SIGCHLD and leave a dead pane's process unreaped,
            # so without a status, until another child exits; a SIGCHLD makes it reap (tmux #311).
            _nudge_reaper(rows[0].server_pid)
            rows = self._pane_rows(session)
        return [row.pane for row in rows if row.pane.run is not None]

    def _pane_rows(self, session: str) -> list[_PaneRow]:
        lines = self._run_unless_gone(
            [["list-panes", "-s", "-t", f"={session}", "-F", _PANE_FORMAT]], f"list panes of {session!r}"
        )
        return [_PaneRow.parse(line) for line in lines or []]

    def capture(self, pane_id: str, lines: int = 50) -> str:
        """The visible screen plus up to ``lines`` of history, wrapped lines joined."""
        _check_id("pane", pane_id, _PANE_ID)
        out = self._run(
            [["capture-pane", "-p", "-J", "-t", pane_id, "-S", f"-{max(lines, 0)}"]], f"capture {pane_id}"
        )
        return "\n".join(out)

    def send_text(self, pane_id: str, text: str, enter: bool = True) -> None:
        """Type ``text`` literally (one line) or paste it (several lines), then Enter if asked."""
        _check_id("pane", pane_id, _PANE_ID)
        _check_no_nul("text to send", text)
        if "\n" in text or "\r" in text:
            self._paste(pane_id, text)
        elif text:
            self._run([["send-keys", "-l", "-t", pane_id, "--", text]], f"type into {pane_id}")
        if enter:
            self._run([["send-keys", "-t", pane_id, "Enter"]], f"press Enter in {pane_id}")

    def paste(self, pane_id: str, text: str) -> None:
        _check_id("pane", pane_id, _PANE_ID)
        _check_no_nul("text to paste", text)
        if text:
            self._paste(pane_id, text)

    def send_keys(self, pane_id: str, keys: Sequence[str]) -> None:
        _check_id("pane", pane_id, _PANE_ID)
        for key in keys:
            if not _KEY_NAME.fullmatch(key):
                raise BackendError(f"not a key name tmux knows: {key!r}")
        if keys:
            self._run([["send-keys", "-t", pane_id, key] for key in keys], f"press keys in {pane_id}")

    def _paste(self, pane_id: str, text: str) -> None:
        buffer = f"agentsup-{uuid.uuid4().hex}"
        fd, name = tempfile.mkstemp(prefix="agentsup-paste-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as tmp:
                tmp.write(text)
            # -p: bracketed paste when the application asked for it; -d: drop the buffer afterwards.
            self._run(
                [
                    ["load-buffer", "-b", buffer, _format_literal(name)],
                    ["paste-buffer", "-p", "-d", "-b", buffer, "-t", pane_id],
                ],
                f"paste into {pane_id}",
            )
        finally:
            Path(name).unlink(missing_ok=True)

    def stop(self, pane: Pane, grace: float, also: Callable[[], Iterable[int]] | None = None) -> None:
        """SIGTERM the pane's process group (and ``also()``), wait up to ``grace`` s, SIGKILL what is left."""
        self.stop_all([pane], grace, also)

    def stop_all(
        self, panes: Sequence[Pane], grace: float, also: Callable[[], Iterable[int]] | None = None
    ) -> None:
        """Stop the panes' process groups and the processes ``also()`` names, all at once.

        SIGTERM to each group and each of those processes, up to ``grace`` s for all of them to end, then
        SIGKILL to the groups and to what ``also()`` names *then* (catching processes started meanwhile).
        ``also`` finds what left the group: a ``setsid`` daemon, a re-parented grandchild.
        """
        leaders = {p.pid for p in panes}

        def outside() -> set[int]:  # a group member gets the group's signal once, not twice
            return {pid for pid in (also() if also else ()) if _group_of(pid) not in leaders}

        server_pid = self._server_pid()
        groups = {g for g in leaders if _signal_group(g, signal.SIGTERM)}
        others = {pid for pid in outside() if _signal_pid(pid, signal.SIGTERM)}
        groups, others = _wait_all_gone(groups, others, grace, server_pid)
        if not groups and not others:
            return
        groups = {g for g in groups if _signal_group(g, signal.SIGKILL)}
        others = {pid for pid in {*others, *outside()} if _signal_pid(pid, signal.SIGKILL)}
        # SIGKILL is delivered asynchronously; a short bounded wait lets callers see them gone.
        _wait_all_gone(groups, others, _KILL_WAIT, server_pid)

    def _server_pid(self) -> int | None:
        lines = self._run_unless_gone([["display-message", "-p", "#{pid}"]], "report its pid")
        return int(lines[0]) if lines and lines[0].isdigit() else None

    def close_dead_pane(self, pane_id: str) -> bool:
        """Close the pane if it is dead, and say True: tmux will write nothing more into its ``pipe-pane``,
        which ends once its ``cat`` has written what the pipe still holds. True also when the pane is gone;
        False while it lives.

        tmux marks a pane dead only after it has handed the pipe every byte it read from the pane
        (``window_pane_destroy_ready``), and reads nothing from a dead pane; it also refuses to close a
        dead pane's pipe, so the pane goes, and the pipe with it."""
        _check_id("pane", pane_id, _PANE_ID)
        what = f"read the state of pane {pane_id}"
        # display-message prints an empty line for a pane that is gone, so the pane names itself.
        shown = self._run_unless_gone(
            [["display-message", "-p", "-t", pane_id, "#{pane_id} #{pane_dead}"]], what
        )
        state = shown[0] if shown else ""
        if state == f"{pane_id} 0":
            return False
        if state == f"{pane_id} 1":
            self._run_unless_gone([["kill-pane", "-t", pane_id]], f"close pane {pane_id}")
        return True

    def kill_window(self, window_id: str) -> None:
        """Close an agent window; no error when it is already gone."""
        _check_id("window", window_id, _WINDOW_ID)
        self._run_unless_gone([["kill-window", "-t", window_id]], f"kill window {window_id}")

    def attach_command(self, session: str, window_id: str | None, inside_tmux: str | None) -> list[str]:
        """The argv that puts the user's terminal on ``window_id`` (or the session).

        Inside this same server the client is switched; inside another server the attach is nested
        (``env -u TMUX``, since tmux refuses to attach from inside tmux).
        """
        _check_session_name(session)
        if window_id is not None:
            _check_id("window", window_id, _WINDOW_ID)
        base = [self.tmux_bin, "-L", self.socket_name]
        if inside_tmux and self._is_this_server(inside_tmux):
            return [*base, "switch-client", "-t", window_id or f"={session}"]
        attach = [*base]
        if window_id is not None:
            attach += ["select-window", "-t", window_id, ";"]
        attach += ["attach-session", "-t", f"={session}"]
        return ["env", "-u", "TMUX", *attach] if inside_tmux else attach

    def _is_this_server(self, tmux_env: str) -> bool:
        theirs = tmux_env.split(",", 1)[0]
        return bool(theirs) and os.path.realpath(theirs) == os.path.realpath(self.socket_path())


@dataclass(frozen=True)
class _Asked:
    """A command list sent: whether its reply is in, and the reply (waiting for it)."""

    done: Callable[[], bool]
    reply: Callable[[], Reply]


@dataclass(frozen=True)
class _PaneRow:
    """One ``list-panes`` row: the pane, plus what the reaping workaround needs."""

    pane: Pane
    unreaped: bool
    server_pid: int | None

    @classmethod
    def parse(cls, line: str) -> _PaneRow:
        fields = line.split("\t")
        if len(fields) != len(_PANE_FIELDS):
            raise BackendError(f"unexpected list-panes row from tmux: {line!r}")
        window_id, pane_id, pid, dead, status, dead_signal, run, agent, attempt, server_pid = fields
        is_dead = dead == "1"
        pane = Pane(
            window_id=window_id,
            pane_id=pane_id,
            pid=int(pid),
            dead=is_dead,
            # tmux marks a pane dead at pty EOF and learns its status only once it reaps the process:
            # dead_status may lag behind dead, and stays None after a fatal signal.
            dead_status=_int_or_none(status) if is_dead else None,
            run=run or None,
            agent=agent or None,
            attempt=_int_or_none(attempt),
        )
        # pane_dead_signal exists from tmux 3.3; before that a killed pane also looks unreaped.
        unreaped = is_dead and not status and not dead_signal
        return cls(pane=pane, unreaped=unreaped, server_pid=_int_or_none(server_pid))


def _nudge_reaper(server_pid: int | None) -> None:
    if server_pid is None:
        return
    try:
        os.kill(server_pid, signal.SIGCHLD)
    except ProcessLookupError:
        return


def _wait_all_gone(
    groups: Collection[int], pids: Collection[int], timeout: float, server_pid: int | None
) -> tuple[set[int], set[int]]:
    """Poll until the process groups and the processes are gone, up to ``timeout`` s; the groups and the
    processes still there. One seen gone is forgotten at once: its id is free, and a machine opening
    hundreds of windows wraps around pid_max (32768 here) within seconds, so it may name a newcomer by
    the time the wait ends. Before, the wait looked at every id again each time, and a stop's SIGKILL
    reached the next bench case's windows that had reused them."""
    groups, pids = set(groups), set(pids)
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        groups = {g for g in groups if _signal_group(g, 0)}
        pids = {p for p in pids if _signal_pid(p, 0)}
        if (not groups and not pids) or time.monotonic() >= deadline:
            return groups, pids
        # The wrapper is tmux's child: a zombie keeps the group alive until tmux reaps it.
        _nudge_reaper(server_pid)
        time.sleep(_STOP_POLL)


def _write_launch(launch: LaunchSpec) -> None:
    """Check the launch's tags and paths, write its wrapper, create its output log."""
    _check_tag("run", launch.run)
    _check_tag("agent", launch.agent)
    script = Path(launch.script).absolute()
    log = Path(launch.output_log).absolute()
    _check_no_nul("script path", str(script))
    _check_no_nul("output log path", str(log))
    text = render_wrapper(launch)
    for path in (script, Path(launch.exit_file).absolute(), log):
        path.parent.mkdir(parents=True, exist_ok=True)
    _write_script(script, text)
    # Exists from spawn on, so watchers need not wait for the pipe's shell to open it: a downstream agent
    # handed this path reads it even when tmux never started the pipe (a pane that died at once).
    log.touch()


def _spawned(session: str, launch: LaunchSpec, reply: Reply) -> Pane | BackendError:
    """The pane a spawn's reply names (new-window's ``-P`` line), or why there is none."""
    fields = reply.stdout[0].split(" ") if reply.returncode == 0 and reply.stdout else []
    if len(fields) != 3 or not fields[2].isdigit():
        what = f"open a window for agent {launch.agent!r} in session {session!r}"
        return BackendError(f"tmux could not {what}: {_errors(reply)}")
    window_id, pane_id, pid = fields
    return Pane(
        window_id=window_id,
        pane_id=pane_id,
        pid=int(pid),
        dead=False,
        dead_status=None,
        run=launch.run,
        agent=launch.agent,
        attempt=launch.attempt,
    )


def _errors(proc: Reply) -> str:
    return "; ".join(proc.stderr) or f"exit status {proc.returncode}"


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_pid(pid: int, signum: int) -> bool:
    """Send ``signum`` to one process; False when it no longer exists or is not ours to signal (``sudo``)."""
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise BackendError(f"not allowed to signal process group {pgid}: {exc}") from exc
    return True
