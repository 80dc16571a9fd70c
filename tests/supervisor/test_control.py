"""The control socket of a real engine: started by ``agentsup start --detach`` on an isolated tmux server,
spoken to with raw sockets and with ControlClient."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.control import MAX_REQUEST
from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, isolated_agentsup
from tests.tmuxenv import wait_until

pytestmark = [pytest.mark.tmux, pytest.mark.e2e]

# reader: appends each line it reads from the pane to got.txt; holder: runs until its ``go`` file exists;
# later: pending behind holder. on_failure = "continue" so a killed agent does not end the run.
PLAN = """
[run]
name = "ctl"
on_failure = "continue"

[agents.reader]
cmd = 'while IFS= read -r line; do printf "%s\\n" "$line" >> "$AGENTSUP_OUT/got.txt"; done'

[agents.holder]
cmd = 'while [ ! -e "$AGENTSUP_OUT/../go" ]; do sleep 0.05; done'

[agents.later]
after = ["holder"]
cmd = 'echo later ran'
"""

TIMEOUT = 20.0
INITIAL = {"reader": "running", "holder": "running", "later": "pending"}


def _start(agentsup: Agentsup, root: Path) -> Path:
    """Start run ``c1`` and wait until reader and holder run and later is pending; its control socket."""
    plan = root / "plan.toml"
    plan.write_text(PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", "c1")
    wait_until(lambda: _states(agentsup) == INITIAL, timeout=TIMEOUT, message="reader and holder running")
    return agentsup.run_dir("c1") / "control.sock"


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    with isolated_agentsup(tmp_path, state_name="s") as tool:  # short: socket paths stay under 108 bytes
        yield tool


@pytest.fixture
def run(agentsup: Agentsup, tmp_path: Path) -> Path:
    """A fresh run of its own, for a test that changes it."""
    return _start(agentsup, tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agentsup, Path]]:
    """One run for the tests that only ask and get refused: none of them may change its state."""
    root = tmp_path_factory.mktemp("shared")
    with isolated_agentsup(root, state_name="s") as tool:
        yield tool, _start(tool, root)


def _agents(agentsup: Agentsup) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in agentsup.status_json("c1")["agents"]}


def _states(agentsup: Agentsup) -> dict[str, str]:
    return {name: str(a["state"]) for name, a in _agents(agentsup).items()}


def _status(client: ControlClient) -> dict[str, Any]:
    status = client.request("status")["status"]
    assert isinstance(status, dict)
    return status


class Conn:
    """A raw connection to the control socket: bytes out, JSON lines in, every read bounded in time."""

    def __init__(self, path: Path, timeout: float = TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, obj: Any) -> None:
        self.send(json.dumps(obj).encode() + b"\n")

    def read(self) -> dict[str, Any] | None:
        line = self.file.readline()
        if not line:
            return None
        assert line.endswith(b"\n"), line
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        return obj

    def reply(self) -> dict[str, Any]:
        obj = self.read()
        assert obj is not None, "the engine closed the connection without a reply"
        return obj

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def connect() -> Iterator[Callable[[Path], Conn]]:
    """Open raw connections; all are closed after the test."""
    conns: list[Conn] = []

    def make(path: Path) -> Conn:
        conns.append(Conn(path))
        return conns[-1]

    yield make
    for c in conns:
        c.close()


Connect = Callable[[Path], Conn]
Shared = tuple[Agentsup, Path]


def _event(msg: dict[str, Any]) -> Event:
    assert "event" in msg, msg
    return Event.from_json(msg["event"])


def _read_until(conn: Conn, seen: list[Event], pred: Callable[[Event], bool]) -> Event:
    """Read stream messages into ``seen`` until an event satisfies ``pred``; return that event."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ev = _event(conn.reply())
        seen.append(ev)
        if pred(ev):
            return ev
    pytest.fail("the awaited event never came")


def _state_to(agent: str, to: str) -> Callable[[Event], bool]:
    return lambda ev: ev.kind is EventKind.AGENT_STATE and ev.agent == agent and ev.data["to"] == to


def _assert_gapless(events: list[Event], first: int) -> None:
    assert [e.seq for e in events] == list(range(first, first + len(events)))


# ---- the socket and its requests (one shared run; nothing here changes it) -----------------------


def test_run_dir_is_0700_and_socket_0600(shared: Shared) -> None:
    _, sock = shared
    mode = sock.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


def test_status_answers_with_the_status_json(shared: Shared, connect: Connect) -> None:
    agentsup, sock = shared
    conn = connect(sock)
    conn.request({"id": 7, "cmd": "status"})
    reply = conn.reply()
    assert (reply["id"], reply["ok"]) == (7, True)
    status = reply["status"]
    assert (status["run"], status["state"]) == ("c1", "running")
    assert {a["name"]: a["state"] for a in status["agents"]} == INITIAL
    # The CLI adds the last resource sample (usage.json) to each agent; the rest is the same fold.
    sampled = ("cpu_percent", "rss", "processes")
    cli = agentsup.status_json("c1")
    for agent in cli["agents"]:
        for key in sampled:
            agent.pop(key, None)
    assert status == cli


def test_control_client_status(shared: Shared) -> None:
    _, sock = shared
    with ControlClient(sock) as client:
        first = client.request("status")
        second = client.request("status")
    assert (first["id"], second["id"]) == (1, 2)
    assert first["status"] == second["status"]


def test_an_unknown_command_lists_the_known_ones(shared: Shared, connect: Connect) -> None:
    conn = connect(shared[1])
    conn.request({"id": "x", "cmd": "explode"})
    reply = conn.reply()
    assert (reply["id"], reply["ok"]) == ("x", False)
    assert "unknown command 'explode'" in reply["error"]
    for known in ("status", "kill", "restart", "send", "stop", "pause", "resume", "subscribe"):
        assert known in reply["error"]


def test_a_request_without_cmd_is_refused(shared: Shared, connect: Connect) -> None:
    conn = connect(shared[1])
    conn.request({"id": 1})
    reply = conn.reply()
    assert reply["ok"] is False
    assert "unknown command" in reply["error"]


def test_a_malformed_line_is_refused_and_the_connection_stays_usable(
    shared: Shared, connect: Connect
) -> None:
    conn = connect(shared[1])
    conn.send(b'{"cmd": "status",,,\n')
    bad = conn.reply()
    conn.request({"id": 2, "cmd": "status"})
    good = conn.reply()
    assert bad["ok"] is False
    assert bad["error"].startswith("malformed request")
    assert (good["id"], good["ok"], good["status"]["run"]) == (2, True, "c1")


@pytest.mark.parametrize("line", [b"[1, 2]", b'"status"', b"42", b"null"])
def test_a_json_line_that_is_not_an_object_is_refused(shared: Shared, connect: Connect, line: bytes) -> None:
    conn = connect(shared[1])
    conn.send(line + b"\n")
    bad = conn.reply()
    conn.request({"id": 3, "cmd": "status"})
    good = conn.reply()
    assert bad["ok"] is False
    assert "a request is a JSON object" in bad["error"]
    assert good["ok"] is True


def test_an_oversized_line_is_refused_and_the_engine_still_answers(shared: Shared, connect: Connect) -> None:
    _, sock = shared
    conn = connect(sock)
    try:
        conn.send(b"x" * (MAX_REQUEST + 4096))
        answer = conn.read()
    except (BrokenPipeError, ConnectionResetError):
        answer = None  # the engine closed on us mid-send: also a refusal
    if answer is not None:
        assert answer["ok"] is False
        assert f"over {MAX_REQUEST} bytes" in answer["error"]
        try:
            rest = conn.read()
        except ConnectionResetError:
            rest = None
        assert rest is None  # the engine closed the connection after the error
    with ControlClient(sock) as client:
        assert _status(client)["run"] == "c1"


def test_a_request_without_its_newline_is_never_carried_out(shared: Shared, connect: Connect) -> None:
    agentsup, sock = shared
    conn = connect(sock)
    conn.send(b'{"id": 1, "cmd": "kill", "agent": "holder"}')  # complete JSON, but the line never ends
    conn.close()
    conn = connect(sock)
    conn.send(b'{"id": 2, "cmd": "kill", "ag')
    conn.close()
    with ControlClient(sock) as client:
        assert _status(client)["state"] == "running"
    assert _states(agentsup) == INITIAL
    assert not any(e.kind is EventKind.COMMAND for e in agentsup.events("c1"))


def test_twenty_clients_at_once_each_get_their_status(shared: Shared, connect: Connect) -> None:
    conns = [connect(shared[1]) for _ in range(20)]
    for i, c in enumerate(conns):
        c.request({"id": i, "cmd": "status"})
    replies = [c.reply() for c in conns]
    assert [r["id"] for r in replies] == list(range(20))
    assert all(r["ok"] is True and r["status"]["run"] == "c1" for r in replies)
    assert len({json.dumps(r["status"], sort_keys=True) for r in replies}) == 1


def test_subscribe_after_a_seq_sends_only_the_events_after_it(shared: Shared, connect: Connect) -> None:
    agentsup, sock = shared
    log = agentsup.events("c1")
    after = len(log) // 2
    sub = connect(sock)
    sub.request({"cmd": "subscribe", "after": after})
    head = sub.reply()
    assert head["seq"] == len(log)
    seen: list[Event] = []
    _read_until(sub, seen, lambda ev: ev.seq == head["seq"])
    assert [e.to_json() for e in seen] == [e.to_json() for e in log[after:]]


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        ({"cmd": "kill", "agent": "nobody"}, "no agent 'nobody' in this run (agents: reader, holder, later)"),
        ({"cmd": "restart", "agent": "nobody"}, "no agent 'nobody' in this run"),
        ({"cmd": "send", "agent": "nobody", "text": "x"}, "no agent 'nobody' in this run"),
        ({"cmd": "kill"}, "this command needs an agent name ('agent')"),
        ({"cmd": "kill", "agent": 3}, "this command needs an agent name ('agent')"),
        ({"cmd": "restart", "agent": "later"}, "agent 'later' has not run yet (it is pending)"),
        ({"cmd": "send", "agent": "later", "text": "x"}, "agent 'later' has no live pane (it is pending)"),
        ({"cmd": "send", "agent": "reader"}, "'send' needs 'text'"),
        ({"cmd": "send", "agent": "reader", "text": "a\u0000b"}, "'send' needs 'text'"),
        ({"cmd": "send", "agent": "reader", "text": "x" * (256 * 1024 + 1)}, "at most 262144 bytes"),
    ],
    ids=[
        "kill-unknown",
        "restart-unknown",
        "send-unknown",
        "kill-no-agent",
        "kill-agent-not-a-string",
        "restart-pending",
        "send-pending",
        "send-no-text",
        "send-nul",
        "send-too-long",
    ],
)
def test_refused_commands_say_why(
    shared: Shared, connect: Connect, request_args: dict[str, Any], message: str
) -> None:
    agentsup, sock = shared
    conn = connect(sock)
    conn.request({"id": 9, **request_args})
    reply = conn.reply()
    assert (reply["id"], reply["ok"]) == (9, False)
    assert message in reply["error"]
    assert _states(agentsup) == INITIAL
    assert not (agentsup.run_dir("c1") / "agents" / "reader" / "out" / "got.txt").exists()


# ---- subscribe (a run of its own each) -----------------------------------------------------------


def test_subscribe_from_zero_replays_the_log_then_streams_live_until_the_end(
    agentsup: Agentsup, run: Path, connect: Connect
) -> None:
    sub = connect(run)
    sub.request({"id": "s", "cmd": "subscribe", "after": 0})
    head = sub.reply()
    assert (head["id"], head["ok"]) == ("s", True)
    assert {a["name"]: a["state"] for a in head["snapshot"]["agents"]} == INITIAL
    seen: list[Event] = []
    _read_until(sub, seen, lambda ev: ev.seq == head["seq"])
    assert seen[0].kind is EventKind.RUN_STARTED
    _assert_gapless(seen, 1)

    # Live: a user command, an agent it stops, then the run's stop.
    with ControlClient(run) as client:
        client.request("send", agent="reader", text="live line")
        sent = _read_until(sub, seen, lambda ev: ev.kind is EventKind.COMMAND)
        assert (sent.agent, sent.data["command"], sent.data["text"]) == ("reader", "send", "live line")
        client.request("kill", agent="reader")
        stopped = _read_until(sub, seen, _state_to("reader", "stopped"))
        assert stopped.source == "user"
        client.request("stop")  # holder still runs: the run ends because of the stop

    while (msg := sub.reply()).get("end") is not True:
        seen.append(_event(msg))
    assert msg["outcome"] == "stopped"
    assert sub.read() is None  # the stream ends with the run
    _assert_gapless(seen, 1)
    assert seen[-1].kind is EventKind.RUN_FINISHED
    assert [e.to_json() for e in seen] == [e.to_json() for e in agentsup.events("c1")]


def test_subscribe_without_after_streams_only_live_events(run: Path, connect: Connect) -> None:
    sub = connect(run)
    sub.request({"cmd": "subscribe"})
    head = sub.reply()
    with ControlClient(run) as client:
        client.request("kill", agent="holder")
    seen: list[Event] = []
    _read_until(sub, seen, _state_to("holder", "stopped"))
    _assert_gapless(seen, head["seq"] + 1)


def test_control_client_subscribe_yields_events_then_the_outcome(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as sub, ControlClient(run) as client:
        snapshot, stream = sub.subscribe(after=0)
        assert snapshot["run"] == "c1"
        client.request("stop")
        items = list(stream)
    *events, outcome = items
    assert outcome == "stopped"
    assert [e.to_json() for e in events if isinstance(e, Event)] == [
        e.to_json() for e in agentsup.events("c1")
    ]
    assert all(isinstance(e, Event) for e in events)


# ---- commands on agents (a run of its own each) --------------------------------------------------


def test_send_types_the_text_into_the_agent(agentsup: Agentsup, run: Path) -> None:
    got = agentsup.run_dir("c1") / "agents" / "reader" / "out" / "got.txt"
    with ControlClient(run) as client:
        assert client.request("send", agent="reader", text="first line")["ok"] is True
        wait_until(lambda: got.exists() and got.read_text() == "first line\n", timeout=TIMEOUT)
        client.request("send", agent="reader", text="$(touch pwned) `id` 'q'")
        wait_until(lambda: got.read_text().count("\n") == 2, timeout=TIMEOUT)
    assert got.read_text() == "first line\n$(touch pwned) `id` 'q'\n"
    assert not (agentsup.run_dir("c1") / "agents" / "reader" / "pwned").exists()


def test_send_without_enter_leaves_the_line_open(agentsup: Agentsup, run: Path) -> None:
    got = agentsup.run_dir("c1") / "agents" / "reader" / "out" / "got.txt"
    with ControlClient(run) as client:
        client.request("send", agent="reader", text="one ", enter=False)
        client.request("send", agent="reader", text="two")
    wait_until(lambda: got.exists() and got.read_text() == "one two\n", timeout=TIMEOUT)


def test_kill_stops_the_agent_and_restart_runs_it_again(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        assert client.request("kill", agent="holder")["ok"] is True
        wait_until(lambda: _agents(agentsup)["holder"]["state"] == "stopped", timeout=TIMEOUT)
        holder = _agents(agentsup)["holder"]
        assert (holder["source"], holder["attempts"]) == ("user", 1)
        assert client.request("restart", agent="holder")["ok"] is True
    wait_until(lambda: _agents(agentsup)["holder"]["state"] == "running", timeout=TIMEOUT)
    assert _agents(agentsup)["holder"]["attempts"] == 2
    (agentsup.run_dir("c1") / "agents" / "holder" / "go").touch()
    wait_until(lambda: _agents(agentsup)["holder"]["state"] == "succeeded", timeout=TIMEOUT)


def test_restarting_a_killed_upstream_lets_its_dependent_run(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        client.request("kill", agent="holder")
        wait_until(lambda: _states(agentsup)["holder"] == "stopped", timeout=TIMEOUT)
        client.request("restart", agent="holder")
    wait_until(lambda: _states(agentsup)["holder"] == "running", timeout=TIMEOUT)
    (agentsup.run_dir("c1") / "agents" / "holder" / "go").touch()
    wait_until(lambda: _states(agentsup)["holder"] == "succeeded", timeout=TIMEOUT)
    with ControlClient(run) as client:
        client.request("kill", agent="reader")  # the last one running: the run ends and later settles
    wait_until(lambda: agentsup.status_json("c1")["state"] != "running", timeout=TIMEOUT)
    assert _states(agentsup)["later"] == "succeeded"


def test_restart_of_a_running_agent_starts_a_new_attempt(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        assert client.request("restart", agent="holder")["ok"] is True
    wait_until(
        lambda: _agents(agentsup)["holder"]["attempts"] == 2 and _states(agentsup)["holder"] == "running",
        timeout=TIMEOUT,
    )


def test_kill_of_a_pending_agent_stops_it_before_it_runs(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        client.request("kill", agent="later")
    wait_until(lambda: _states(agentsup)["later"] == "stopped", timeout=TIMEOUT)
    later = _agents(agentsup)["later"]
    assert (later["source"], later["attempts"], later["ever_ran"]) == ("user", 0, False)


def test_commands_on_a_stopped_agent_say_it_is_stopped(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        client.request("kill", agent="reader")
        wait_until(lambda: _states(agentsup)["reader"] == "stopped", timeout=TIMEOUT)
        with pytest.raises(ControlError, match=r"agent 'reader' is not running \(it is stopped\)"):
            client.request("kill", agent="reader")
        with pytest.raises(ControlError, match=r"agent 'reader' has no live pane \(it is stopped\)"):
            client.request("send", agent="reader", text="too late")


def test_stop_ends_the_run_with_every_agent_stopped(agentsup: Agentsup, run: Path) -> None:
    with ControlClient(run) as client:
        assert client.request("stop")["ok"] is True
    wait_until(lambda: agentsup.status_json("c1")["state"] == "stopped", timeout=TIMEOUT)
    assert set(_states(agentsup).values()) == {"stopped"}
    wait_until(lambda: not run.exists(), timeout=TIMEOUT, message="the control socket to go with the engine")
