"""The dashboard's view of a run: the event log folded, then the engine's live events, coalesced.

A :class:`RunFeed` owns one thread. It folds the run's event log from disk first (so a dashboard opened on
a dead engine still shows the last state), then subscribes to the engine after the last seq it folded,
and when the connection ends it keeps the state and tries again every ``retry`` seconds. The UI never sees
the fold itself: it is told *that* something changed (once per batch, through ``on_change``, which may be
called from the feed's thread) and then takes a frozen :class:`RunView` with :meth:`RunFeed.take`. It
also keeps each agent's latest events for the details panel (:meth:`RunFeed.agent_events`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.runstate import AgentRecord, RunOutcome, RunState
from agentsup.supervisor.store import EventStore, StoreError

# Events kept for the event panel between two takes; a UI that falls further behind loses the oldest.
MAX_PENDING_EVENTS = 1000
# How much history the event panel gets when the feed starts from the log.
HISTORY_EVENTS = 200
# Events kept per agent for its details panel; older ones are in `agentsup events`.
AGENT_EVENTS = 100


@dataclass(frozen=True)
class RunView:
    """One consistent picture of the run, handed to the UI thread."""

    agents: tuple[AgentRecord, ...]
    connected: bool
    finished: RunOutcome | None
    stopping: bool
    halted: bool
    paused: bool
    started_at: float | None  # the run.started event's time
    ended_at: float | None  # the run.finished event's time
    last_seq: int
    new_events: tuple[Event, ...]  # events since the previous take, oldest first
    problem: str | None  # why the engine is not reachable, while it is not
    added: Mapping[str, Mapping[str, JSON]]  # agents added during the run -> their agent.added data

    @property
    def state(self) -> str:
        """What the header says: the outcome once the run finished, else whether the engine serves it."""
        if self.finished is not None:
            return self.finished.value
        if not self.connected:
            return "connecting" if self.problem is None else "engine stopped"
        if self.stopping:
            return "stopping"
        if self.halted:
            return "halted"
        return "paused" if self.paused else "running"


class RunFeed:
    def __init__(self, run: RunDir, on_change: Callable[[], object], retry: float = 1.0) -> None:
        self.run = run
        self._on_change = on_change
        self._retry = retry
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = RunState()
        self._events: deque[Event] = deque(maxlen=MAX_PENDING_EVENTS)
        self._connected = False
        self._paused = False
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._problem: str | None = None
        self._added: Mapping[str, Mapping[str, JSON]] = MappingProxyType({})  # replaced, never mutated
        self._agent_events: dict[str, deque[Event]] = {}
        self._notified = False  # on_change was called and no take() followed yet
        self._client: ControlClient | None = None
        self._thread = threading.Thread(target=self._main, name=f"feed-{run.run_id}", daemon=True)

    # -- the UI side -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            client = self._client
        if client is not None:
            client.interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def take(self) -> RunView:
        """The current picture, with the events that arrived since the previous take."""
        with self._lock:
            self._notified = False
            new = tuple(self._events)
            self._events.clear()
            s = self._state
            return RunView(
                agents=tuple(s.agents.values()),
                connected=self._connected,
                finished=s.finished,
                stopping=s.stopping,
                halted=s.halted,
                paused=self._paused,
                started_at=self._started_at,
                ended_at=self._ended_at,
                last_seq=s.last_seq,
                new_events=new,
                problem=self._problem,
                added=self._added,
            )

    def agent_events(self, agent: str) -> tuple[Event, ...]:
        """The latest :data:`AGENT_EVENTS` events about ``agent``, oldest first."""
        with self._lock:
            return tuple(self._agent_events.get(agent, ()))

    # -- the feed's thread -----------------------------------------------------------------------------

    def _main(self) -> None:
        self._fold_log(history=True)
        while not self._stop.is_set():
            self._follow_engine()
            if self._stop.is_set():
                return
            # The engine may have logged events it could not send us before it went away.
            self._fold_log(history=False)
            self._stop.wait(self._retry)

    def _fold_log(self, *, history: bool) -> None:
        try:
            store = EventStore.open_readonly(self.run.events_db)
        except StoreError as exc:
            self._set_disconnected(str(exc))
            return
        try:
            events = list(store.iter_all(after=self._state.last_seq))
        except StoreError as exc:
            self._set_disconnected(str(exc))
            return
        finally:
            store.close()
        self._apply(events, keep=HISTORY_EVENTS if history else None)

    def _follow_engine(self) -> None:
        try:
            client = ControlClient(self.run.control_socket)
        except ControlError as exc:
            self._set_disconnected(str(exc))
            return
        with self._lock:
            self._client = client
        try:
            if self._stop.is_set():
                return
            _, stream = client.subscribe(after=self._state.last_seq, usage=True)
            self._set_connected()
            for item in stream:
                if isinstance(item, str):
                    break
                self._apply([item])
            self._set_disconnected("the engine closed the connection")
        except (ControlError, ValueError) as exc:
            # ValueError: a malformed line (json or event) means the stream cannot be trusted further.
            self._set_disconnected(str(exc))
        finally:
            with self._lock:
                self._client = None
            client.close()

    def _apply(self, events: list[Event], keep: int | None = None) -> None:
        """Fold ``events`` in, skipping those already folded (the subscription replays from the log)."""
        with self._lock:
            fresh = [ev for ev in events if not ev.seq or ev.seq > self._state.last_seq]
            if not fresh:
                return
            for ev in fresh:
                self._state.apply(ev)
                self._note(ev)
                if ev.agent is not None:
                    self._agent_events.setdefault(ev.agent, deque(maxlen=AGENT_EVENTS)).append(ev)
            self._events.extend(fresh if keep is None else fresh[-keep:])
            self._changed()

    def _note(self, ev: Event) -> None:
        """The few things the header shows that the fold does not keep."""
        if ev.kind is EventKind.RUN_STARTED and self._started_at is None:
            self._started_at = ev.ts
        elif ev.kind is EventKind.RUN_FINISHED:
            self._ended_at = ev.ts
        elif ev.kind is EventKind.COMMAND and ev.data.get("command") in ("pause", "resume"):
            self._paused = ev.data.get("command") == "pause"
        elif ev.kind is EventKind.AGENT_ADDED and isinstance(name := ev.data.get("name"), str):
            self._added = MappingProxyType({**self._added, name: ev.data})

    def _set_connected(self) -> None:
        with self._lock:
            self._connected, self._problem = True, None
            self._changed()

    def _set_disconnected(self, problem: str) -> None:
        with self._lock:
            if not self._connected and self._problem == problem:
                return
            self._connected, self._problem = False, problem
            self._changed()

    def _changed(self) -> None:
        """Tell the UI once per batch; it coalesces and takes the state when it is ready to draw."""
        if not self._notified:
            self._notified = True
            self._on_change()
