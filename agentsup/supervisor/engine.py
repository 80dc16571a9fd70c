"""The engine: the only writer of a run's state.

It is an actor. Watchers, timers, spawn threads and control clients post messages; one coroutine takes them
one at a time, appends the events they cause to the log (committed before anything is acted on), folds
them into the run state and asks the pure scheduler what to do next. tmux and files are reached only
through thread pools, never on the loop itself; the log's appends run on the loop, which waits for each
commit anyway (docs/design.md, "The engine").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from agentsup.agents import PresetError, preset_for
from agentsup.plan.model import AgentSpec, DoneKind, Plan, When
from agentsup.plan.templates import TemplateError
from agentsup.sessions import Backend, BackendError, LaunchSpec, Pane
from agentsup.supervisor import (
    clidriver,
    idle,
    monitoring,
    outcomes,
    reactions,
    reading,
    resume,
    stopping,
    sweep,
)
from agentsup.supervisor import messages as m
from agentsup.supervisor.agentfiles import (
    UpstreamFacts,
    agent_environment,
    make_agent_dirs,
    named_agents,
    prepare_agent,
)
from agentsup.supervisor.commands import CommandError, execute, external_event
from agentsup.supervisor.dynamic import (
    scope_from_added,
    spec_from_added,
)
from agentsup.supervisor.events import JSON, Event, EventKind, EventSpec
from agentsup.supervisor.fswatch import COMPLETE_FILES, WRITES, FileWatch
from agentsup.supervisor.output import OutputTail
from agentsup.supervisor.resources import ResourceSampler, available_memory
from agentsup.supervisor.rundir import RunDir, RunMeta
from agentsup.supervisor.runstate import RunState
from agentsup.supervisor.scheduler import Decision, Hold, RunOutcome, Skip, Start, schedule
from agentsup.supervisor.states import ACTIVE, TERMINAL, AgentState, Source, check_transition
from agentsup.supervisor.store import EventStore
from agentsup.supervisor.worktrees import REPO_ENV, WorktreeError, agent_worktree

log = logging.getLogger("agentsup.engine")
T = TypeVar("T")
# Launches per spawn lane job (each Spawned is posted as soon as tmux answered, batch or not).
SPAWN_BATCH = 16
S = AgentState
# The kinds whose effect lives beside the fold (see Engine._learn), read again by a resumed engine.
_LEARNED = frozenset(
    {
        EventKind.AGENT_ADDED,
        EventKind.HANDLER_FIRED,
        EventKind.THROTTLE,
        EventKind.COMMAND,
        EventKind.EXTERNAL,
    }
)


@dataclass(frozen=True)
class EngineOptions:
    grace: float = 5.0  # seconds between SIGTERM and SIGKILL when stopping an agent
    sweep_interval: float = 2.0  # reconcile sweep period while agents are active
    io_threads: int = 8


def _lanes(io_threads: int) -> tuple[ThreadPoolExecutor, ...]:
    """The engine's thread pools: the I/O pool (tmux commands, stops waiting out their grace period,
    sweeps, samples); reads of agents' files (output, exit, done), so an exit is not read behind a burst of
    spawns or stops; spawns, one at a time, as preparing an agent's files is Python work and threads doing
    it at once fight over the GIL with everything else (500 agents at cap 100, exit -> logged p50 100-165
    ms with spawns on the 8 I/O threads, 55-70 ms on two, 15-25 ms on one; docs/design.md); SQLite reads."""
    return (
        ThreadPoolExecutor(io_threads, thread_name_prefix="agentsup-io"),
        ThreadPoolExecutor(1, thread_name_prefix="agentsup-read"),
        ThreadPoolExecutor(1, thread_name_prefix="agentsup-spawn"),
        ThreadPoolExecutor(1, thread_name_prefix="agentsup-db"),
    )


class Engine:
    def __init__(
        self,
        run: RunDir,
        meta: RunMeta,
        plan: Plan,
        *,
        backend: Backend,
        store: EventStore,
        environ: dict[str, str],
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.run, self.meta, self.plan, self.backend, self.store = run, meta, plan, backend, store
        self.environ = environ
        self.options = options or EngineOptions()
        self.clock, self.rand = clock, rand
        self.state = RunState.fold(list(plan.agents), store.iter_all())
        self.outcome: RunOutcome | None = None
        self.paused = False
        self._queue: asyncio.Queue[m.Message] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io, self._reads, self._spawns, self._db = _lanes(self.options.io_threads)
        self._history: EventStore | None = None  # read-only connection, opened and used on the db thread
        self._paths: dict[
            str, tuple[str, int, str]
        ] = {}  # file path -> (agent, attempt, "exit"|"done"|"out")
        self._tails: dict[str, OutputTail] = {}
        self._reading: set[str] = set()
        self._dirty: set[str] = set()
        self._pending_exit: dict[str, m.Exited] = {}  # exits waiting for their final output read
        self._settle_by: dict[str, float] = {}  # when an exited agent's log is read as it is, at the latest
        self._settle_timer: dict[str, asyncio.TimerHandle] = {}  # reads it again after EXIT_SETTLE of quiet
        self._early_done: dict[str, str] = {}  # done-pattern lines read while the agent was starting
        self._early: dict[str, list[m.AgentMessage]] = {}  # exit and done-file messages while it was starting
        self._capped: set[tuple[str, int]] = set()  # attempts whose output.log reached max_log
        # event_log_full: events.db is over max_event_log, so alerts below critical are counted, not logged.
        self.event_log_full, self.alerts_unlogged = False, 0
        self._exited: set[tuple[str, int]] = {
            (e.agent, int(str(e.data.get("attempt", 0))))
            for e in store.read(kinds=[EventKind.AGENT_EXIT])
            if e.agent is not None
        }
        self._dead_seen: set[tuple[str, int]] = set()
        self._stop_reason: dict[str, str] = {}  # agent -> "user" | "timeout" | "restart"
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self.watchers: set[asyncio.Queue[Event | None]] = set()  # subscribers showing CPU and memory
        self.sweeps_unsampled = monitoring.SLOW_SWEEPS  # sweeps since the last resource sample (first: now)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._watch = FileWatch([(run.panes_dir, WRITES), (run.inbox_dir, COMPLETE_FILES)], self._on_file)
        self._inbox_taken: set[str] = set()  # inbox files read, not yet removed
        self._inbox_logged: set[str | None] = set()  # identities of inbox files logged (see _learn)
        self.base_plan = plan
        self.scopes: dict[str, dict[str, JSON]] = {}  # a dynamic agent's task / event
        self._fired: set[tuple[int, int]] = set()  # (handler index, trigger seq)
        self._unhandled: list[Event] = []  # logged, not yet offered to the handlers
        self._throttle: tuple[int, float | None] | None = None  # (cap, until)
        self._sampler = ResourceSampler()
        self._sampling = False
        self._over: dict[str, set[str]] = {}  # limits each agent is over now
        self._memory_short = False
        self.last_output: dict[str, float] = {}  # agents with idle_after: when they last printed
        self.cli: dict[str, clidriver.CLISession] = {}  # agent CLIs' current attempts
        self._downstream: tuple[Plan, dict[str, list[str]], frozenset[str] | None] | None = None
        self._last_decision: tuple[tuple[int, bool, int | None], Decision] | None = None
        for ev in store.read(kinds=[*_LEARNED]):
            self._learn(ev)

    # ---- plumbing -------------------------------------------------------------------------------

    def _learn(self, ev: Event) -> None:
        """What the engine keeps beside the fold: dynamic specs, fired handlers, the throttle."""
        d = ev.data
        if ev.kind is EventKind.AGENT_ADDED:
            spec = spec_from_added(self.base_plan, d)
            self.plan = dataclasses.replace(
                self.plan, agents=MappingProxyType({**self.plan.agents, spec.name: spec})
            )
            self.scopes[spec.name] = scope_from_added(d)
        elif ev.kind is EventKind.HANDLER_FIRED:
            handler, trigger = d.get("handler"), d.get("trigger")
            if isinstance(handler, int) and isinstance(trigger, int):
                self._fired.add((handler, trigger))
        elif ev.kind is EventKind.THROTTLE:
            cap, until = d.get("max_parallel"), d.get("until")
            if isinstance(cap, int):
                self._throttle = (cap, float(until) if isinstance(until, int | float) else None)
        elif ev.kind is EventKind.COMMAND and d.get("command") in ("pause", "resume"):
            self.paused = d.get("command") == "pause"
        elif ev.kind is EventKind.EXTERNAL and isinstance(file := d.get("file"), str):
            self._inbox_logged.add(file)

    def _cap(self) -> tuple[int | None, float | None]:
        """The throttle's cap while it lasts, and when it ends."""
        if self._throttle is None:
            return None, None
        cap, until = self._throttle
        if until is not None and until <= self.clock():
            self._throttle = None
            return None, None
        return cap, until

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the engine is not running")
        return self._loop

    def post(self, msg: m.Message) -> None:
        """Thread-safe: hand a message to the engine's loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, msg)

    def _background(
        self,
        fn: Callable[[], T],
        then: Callable[[T], m.Message] | None = None,
        *,
        lane: Literal["io", "read", "spawn"] = "io",
    ) -> None:
        """Run blocking ``fn`` on the I/O pool, or on the lane for reading agents' files or for spawning;
        post ``then(result)`` when it returns."""
        pool = {"io": self._io, "read": self._reads, "spawn": self._spawns}[lane]
        fut = self.loop.run_in_executor(pool, fn)

        def done(f: asyncio.Future[T]) -> None:
            self._tasks.discard(f)
            if f.cancelled():
                return
            if (exc := f.exception()) is not None:
                # Expected failures are turned into messages by ``fn``; anything else is a bug, and
                # the engine stops on it rather than wait forever for a message that never comes.
                self._queue.put_nowait(m.Crashed(exc))
            elif then is not None:
                self._queue.put_nowait(then(f.result()))

        self._tasks.add(fut)
        fut.add_done_callback(done)

    async def record(self, specs: Iterable[EventSpec]) -> list[Event]:
        """Append events in one transaction, then fold and publish them. Nothing is acted on before this."""
        now = self.clock()
        items = [(k, a, s, d, now) for k, a, s, d in specs]
        # On the loop: the actor waits for the commit before anything else either way, and a hop to a thread
        # and back costs two wake-ups, which on a machine saturated by agents take milliseconds each.
        before = self.state.last_seq
        events = self.store.append_many(items)
        if (last := self._last_decision) is not None and last[0][0] == before and self._unschedulable(events):
            self._last_decision = ((events[-1].seq, *last[0][1:]), last[1]) if events else last
        for ev in events:
            self.state.apply(ev)
            self._learn(ev)
            self._unhandled.append(ev)
            for q in list(self._subscribers):
                if q.qsize() > 50_000:  # a client that stopped reading is dropped, not buffered forever
                    self._subscribers.discard(q)
                    q.put_nowait(None)
                else:
                    q.put_nowait(ev)
        return events

    def _state_event(self, agent: str, to: AgentState, source: Source, **data: JSON) -> EventSpec:
        rec = self.state.agents[agent]
        check_transition(agent, rec.state, to)
        payload: dict[str, JSON] = {"from": rec.state.value, "to": to.value, "attempt": rec.attempts}
        payload.update({k: v for k, v in data.items() if v is not None})
        return (EventKind.AGENT_STATE, agent, source.value, payload)

    async def transition(
        self, agent: str, to: AgentState, source: Source, before: Iterable[EventSpec] = (), **data: JSON
    ) -> None:
        await self.record([*before, self._state_event(agent, to, source, **data)])

    # ---- lifecycle ------------------------------------------------------------------------------

    async def run_until_done(self, on_ready: Callable[[], None] | None = None) -> RunOutcome:
        self._loop = asyncio.get_running_loop()
        self.backend.connect(self.meta.session)  # starts nothing yet: the first tmux command does
        if self.state.finished is not None:  # resumed after the end: nothing to do, nothing to log
            self.outcome = self.state.finished
            return self.outcome
        resuming = self.state.last_seq > 0
        if not resuming:
            await self.record(
                [
                    (
                        EventKind.RUN_STARTED,
                        None,
                        Source.ENGINE.value,
                        {
                            "plan": str(self.plan.path),
                            "run_dir": str(self.run.path),
                            "agents": list[JSON](self.plan.agents),
                        },
                    )
                ]
            )
        self._watch.start()
        if resuming:
            await resume.take_over(self)
        # Admission applies to the very first agents too.
        if self.plan.run.min_free_memory is not None and (
            held := monitoring.admission(self, await self.in_io(available_memory))
        ):
            await self.record(held)
        for path in await self.in_io(lambda: sorted(self.run.inbox_dir.glob("*.json"))):
            self._take_inbox(path)
        sweeper = asyncio.create_task(self._sweep_loop())
        if on_ready is not None:
            on_ready()
        try:
            await self._main()
        finally:
            sweeper.cancel()
            self._watch.stop()
        if self.outcome is None:
            raise RuntimeError("the engine stopped before the run finished")
        return self.outcome

    async def _main(self) -> None:
        while True:
            await reactions.offer_to_handlers(self)
            cap, until = self._cap()
            held = self.paused or self._memory_short
            decision = self._decide(held, cap)
            if await self._apply(decision):
                continue  # actions changed state: decide again before waiting
            if decision.outcome is not None and not self._pending_exit and not self._unhandled:
                await self._finish(decision.outcome)
                return
            wake = min((t for t in (decision.wake_at, until) if t is not None), default=None)
            timeout = None if wake is None else max(0.0, wake - self.clock())
            try:
                msg = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                continue
            await self._handle(msg)
            while not self._queue.empty():  # drain a burst before scheduling again
                await self._handle(self._queue.get_nowait())

    def _unschedulable(self, events: Sequence[Event]) -> bool:
        """Whether the events, not folded yet, leave every input of ``schedule()`` as it was: a pane that
        opened (its agent was active and stays so; only a first run matters, to a dependency on its start),
        an alert. The scheduler's last answer then stands, and one spawn no longer costs one pass over every
        agent (0.2-0.4 ms with 500)."""
        for ev in events:
            if ev.kind is EventKind.ALERT or ev.kind is EventKind.AGENT_SPAWNED:
                continue
            if (
                ev.kind is EventKind.AGENT_STATE
                and ev.agent is not None
                and ev.data.get("from") == S.STARTING.value
                and ev.data.get("to") == S.RUNNING.value
                and (self.state.agents[ev.agent].ever_ran or self._start_unawaited(ev.agent))
            ):
                continue
            return False
        return True

    def _start_unawaited(self, agent: str) -> bool:
        awaited = self._reverse_after()[1]
        return awaited is not None and agent not in awaited

    def _decide(self, held: bool, cap: int | None) -> Decision:
        """``schedule()``; or its last answer, when that started nothing and nothing it reads has changed
        since: no event folded (the plan's dynamic agents come with events too), the same hold and cap,
        and its wake time not reached. Most messages (output read, a tick, a screen seen) change nothing,
        and the scheduler reads every agent."""
        now = self.clock()
        key = (self.state.last_seq, held, cap)
        if (last := self._last_decision) is not None and last[0] == key:
            wake = last[1].wake_at
            if wake is None or now < wake:
                return last[1]
        decision = schedule(self.plan, self.state, now, paused=held, cap=cap)
        self._last_decision = None if decision.actions else (key, decision)
        return decision

    async def _apply(self, decision: Decision) -> bool:
        specs: list[EventSpec] = []
        starts: list[Start] = []
        for action in decision.actions:
            if isinstance(action, Skip):
                specs.append(
                    self._state_event(action.agent, S.SKIPPED, Source.SCHEDULER, reason=action.reason)
                )
            elif isinstance(action, Hold):
                if self.state.agents[action.agent].state is S.PENDING:
                    specs.append(self._state_event(action.agent, S.WAITING, Source.SCHEDULER))
            elif isinstance(action, Start):
                starts.append(action)
        if specs:
            await self.record(specs)
        if starts:
            await self._start_all(starts)
        return bool(specs or starts)

    async def _finish(self, outcome: RunOutcome) -> None:
        # Work under way ends first: a `stop --reverse` still taking its layers down one after the other.
        # Until the outcome is set, a client that subscribes meanwhile still gets the run's end.
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.outcome = outcome
        await self.record([(EventKind.RUN_FINISHED, None, Source.ENGINE.value, {"state": outcome.value})])
        for q in list(self._subscribers):
            q.put_nowait(None)
        # Agents that declared themselves done may still run: stop them so nothing outlives the run. A
        # stopped run also loses what any of its agents left behind (a daemon that detached itself).
        panes = await self.loop.run_in_executor(self._io, self.backend.list_panes, self.meta.session)
        # A pane whose exit is recorded is ending by itself (tmux may not show it dead yet): leave it be.
        live = [p for p in panes if not p.dead and (p.agent, p.attempt) not in self._exited]
        markers = [
            stopping.attempt_marker(self.run, p.agent, p.attempt) for p in live if p.agent and p.attempt
        ]
        if outcome is RunOutcome.STOPPED:
            markers.append(stopping.run_marker(self.run))
        if live or markers:
            also = stopping.finder([p.pid for p in live], markers)
            await self.in_io(partial(self.backend.stop_all, live, self.options.grace, also))

    # ---- starting agents ------------------------------------------------------------------------

    async def _start_all(self, starts: Sequence[Start]) -> None:
        """Log the starts' intents in one transaction, then open their panes."""
        specs: list[EventSpec] = []
        for start in starts:
            agent, attempt = start.agent, start.attempt
            self._stop_reason.pop(agent, None)  # a reason given to an earlier attempt
            self._early.pop(agent, None)
            specs.append((EventKind.AGENT_SPAWN, agent, Source.SCHEDULER.value, {"attempt": attempt}))
            specs.append(self._state_event(agent, S.STARTING, Source.SCHEDULER, attempt=attempt))
        await self.record(specs)
        for start in starts:
            self.watch_attempt(start.agent, start.attempt)
        self.spawn_all([(start.agent, start.attempt) for start in starts])
        if ahead := self._next_in_line(starts):
            self._background(partial(make_agent_dirs, self.run, ahead))

    def _next_in_line(self, starts: Sequence[Start]) -> list[str]:
        """The agents waiting on the ones starting now, not started yet: their directories are made now, off
        the path from an upstream's exit to their start (a new directory costs 0.2-0.6 ms on some file
        systems, and an agent has four). Not every waiting agent at the run's start: with hundreds of them
        that burst of directories slowed the first agents' exits being noticed (p99 55 -> 150 ms)."""
        down, _ = self._reverse_after()
        waiting = {S.PENDING, S.WAITING}
        return sorted(
            {n for st in starts for n in down.get(st.agent, ()) if self.state.agents[n].state in waiting}
        )

    def _reverse_after(self) -> tuple[dict[str, list[str]], frozenset[str] | None]:
        """The plan's ``after`` the other way round (each agent's dependents), and the agents some agent
        waits on to start (``when = "started"``; None: any, a worker group's start is awaited). Computed
        once per plan."""
        if self._downstream is None or self._downstream[0] is not self.plan:
            down: dict[str, list[str]] = {}
            awaited: set[str] | None = set()
            for name, spec in self.plan.agents.items():
                for dep in spec.after:
                    down.setdefault(dep.agent, []).append(name)
                    if dep.when is When.STARTED and awaited is not None:
                        awaited = None if dep.workers else awaited | {dep.agent}
            self._downstream = (self.plan, down, None if awaited is None else frozenset(awaited))
        return self._downstream[1], self._downstream[2]

    def watch_attempt(self, agent: str, attempt: int, offset: int = 0) -> None:
        """Map the attempt's exit, done and output files to it; read its output from ``offset`` on."""
        run, spec = self.run, self.plan.agents[agent]
        output_log = run.output_log(agent, attempt)
        self._tails[agent] = OutputTail(
            output_log, spec.alerts, spec.done.pattern, offset=offset, cap=self.plan.run.max_log
        )
        self._paths[str(run.exit_file(agent, attempt))] = (agent, attempt, "exit")
        self._paths[str(output_log)] = (agent, attempt, "out")
        self._paths[str(run.done_file(agent, attempt))] = (agent, attempt, "done")
        if spec.is_cli:
            self._paths[str(run.hooks_file(agent, attempt))] = (agent, attempt, "hook")
            clidriver.new_session(self, agent, attempt)

    def spawn(self, agent: str, attempt: int) -> None:
        """Open the attempt's pane on the I/O pool; its intent is already logged."""
        self.spawn_all([(agent, attempt)])

    def spawn_all(self, attempts: Sequence[tuple[str, int]]) -> None:
        """Open the attempts' panes on the spawn lane, SPAWN_BATCH to a job: each job prepares its agents'
        files and asks tmux for each window as soon as its launch is ready. Each pane's Spawned is posted as
        soon as tmux answered; the intents are already logged."""
        launchers = [self._launcher(agent, attempt) for agent, attempt in attempts]
        for first in range(0, len(launchers), SPAWN_BATCH):
            self._background(partial(self._spawn_batch, launchers[first : first + SPAWN_BATCH]), lane="spawn")

    def _spawn_batch(self, launchers: Sequence[Callable[[], LaunchSpec | m.SpawnFailed]]) -> None:
        """A spawn lane job: prepare the launches one by one, each window asked for as soon as its launch is
        ready (tmux opens it while the next is prepared), and each Spawned posted as soon as tmux answered."""
        taken: list[LaunchSpec] = []
        posted: set[int] = set()

        def prepared() -> Iterator[LaunchSpec]:
            for launcher in launchers:
                launch = launcher()
                if isinstance(launch, LaunchSpec):
                    taken.append(launch)
                    yield launch
                else:
                    self.post(launch)

        def post(ls: LaunchSpec, pane: Pane | BackendError) -> None:
            posted.add(id(ls))
            if isinstance(pane, BackendError):
                self.post(m.SpawnFailed(ls.agent, ls.attempt, str(pane)))
            else:
                self.post(m.Spawned(ls.agent, ls.attempt, pane))

        ready = prepared()
        try:
            self.backend.spawn_many(self.meta.session, ready, on_result=post)
        except (BackendError, OSError) as exc:
            for _ in ready:  # the rest are prepared, and fail with the same error
                pass
            for ls in taken:
                if id(ls) not in posted:
                    post(ls, BackendError(str(exc)))

    def _launcher(self, agent: str, attempt: int) -> Callable[[], LaunchSpec | m.SpawnFailed]:
        """What the attempt's pane runs, prepared on the I/O pool from what is read here, on the loop."""
        spec = self.plan.agents[agent]
        run = self.run
        env = agent_environment(run, agent, attempt)
        caller = self.environ
        upstreams = [self._upstream_facts(name) for name in self._upstream_names(spec)]
        extra: dict[str, JSON] = {
            "run": {"id": run.run_id, "name": self.plan.run.name},
            "inputs": dict(self.plan.inputs),
            **self.scopes.get(agent, {}),
        }
        workdir = self.plan.run.workdir
        repo = self.plan.run.repo

        def prepare() -> LaunchSpec | m.SpawnFailed:
            try:
                rendered = prepare_agent(run, spec, attempt, upstreams, extra)
                if rendered.prompt is not None:
                    env["AGENTSUP_PROMPT"] = rendered.prompt
                if rendered.is_cli:
                    launch = clidriver.prepare_launch(run, rendered, attempt, env)
                else:
                    launch = preset_for(rendered).launch(rendered, env)
                cwd = spec.cwd or workdir
                unset: tuple[str, ...] = ()
                if spec.worktree:  # the same worktree for every attempt: a retry goes on from there
                    cwd = agent_worktree(repo or workdir, run.path, agent)
                    # Variables that would point its git at the main repository, as the caller's may.
                    unset = tuple(sorted(REPO_ENV - launch.env.keys()))
                return LaunchSpec(
                    run=run.run_id,
                    agent=agent,
                    attempt=attempt,
                    argv=launch.argv,
                    cwd=cwd,
                    # the caller's, then the plan's, then AGENTSUP_*
                    env={**{k: v for k, v in caller.items() if k not in unset}, **launch.env},
                    unset=unset,
                    script=run.script(agent, attempt),
                    exit_file=run.exit_file(agent, attempt),
                    output_log=run.output_log(agent, attempt),
                    started_marker=run.started_marker(agent, attempt),
                )
            except TemplateError as exc:
                return m.SpawnFailed(agent, attempt, f"template: {exc}")
            except (PresetError, ValueError) as exc:
                return m.SpawnFailed(agent, attempt, f"preset {spec.preset}: {exc}")
            except WorktreeError as exc:
                return m.SpawnFailed(agent, attempt, f"worktree: {exc}")
            except (BackendError, OSError) as exc:
                return m.SpawnFailed(agent, attempt, str(exc))

        return prepare

    def _upstream_facts(self, name: str) -> UpstreamFacts:
        rec = self.state.agents[name]
        duration = (
            rec.ended_at - rec.started_at if rec.ended_at is not None and rec.started_at is not None else None
        )
        log = self.run.output_log(name, rec.attempts) if rec.attempts else None
        return UpstreamFacts(name, rec.state.value, rec.exit_code, duration, self.run.out_dir(name), log)

    def _upstream_names(self, spec: AgentSpec) -> list[str]:
        """Its ``after`` agents (a master's whole worker group for ``m.workers``), then any other agent its
        templates name (a [workers] template may name any agent)."""
        names: list[str] = []
        for dep in spec.after:
            group = self.plan.worker_group(dep.agent) if dep.workers else [dep.agent]
            names += [n for n in group if n not in names and n in self.state.agents]
        named = named_agents(spec.cmd, spec.prompt, *(spec.argv or ()))
        return names + [n for n in named if n not in names and n in self.state.agents]

    # ---- messages -------------------------------------------------------------------------------

    async def _handle(self, msg: m.Message) -> None:
        match msg:
            case m.Tick():
                pass
            case m.EventLogSize():
                await reading.on_event_log_size(self, msg.size)
            case m.Crashed():
                raise msg.error
            case m.IdleCheck():
                await idle.check(self, msg)
            case m.Sampled():
                await monitoring.on_sampled(self, msg)
            case m.InboxSeen():
                self._take_inbox(msg.path)
            case m.InboxFile():
                await self._on_inbox(msg)
            case m.Command():
                await self._command(msg)
            case m.Call():
                await self._call(msg)
            case m.Swept():
                await sweep.reconcile(self, msg)
            case _:
                rec = self.state.agents.get(msg.agent)
                if rec is not None and msg.attempt == rec.attempts:  # else: about an earlier attempt
                    await self._handle_agent(msg, rec.state)

    async def _handle_agent(self, msg: m.AgentMessage, state: AgentState) -> None:
        match msg:
            case m.Spawned():
                await self.handle_spawned(msg, look=False)
            case m.SpawnFailed() if state is S.STARTING:
                self._early.pop(msg.agent, None)
                await outcomes.fail(self, msg.agent, Source.BACKEND, f"could not start: {msg.error}")
            case m.DoneFileSeen() if state is S.STARTING:
                self._early.setdefault(msg.agent, []).append(msg)  # judged once the pane is in the books
            case m.Exited():
                await outcomes.on_exited(self, msg)
            case m.DoneFileSeen() if (
                state in ACTIVE - {S.STARTING} and self.plan.agents[msg.agent].done.kind is DoneKind.FILE
            ):
                self._disarm(msg.agent)
                await outcomes.succeed(self, msg.agent, Source.DONE_FILE, reason="done file written")
            case m.OutputGrew():
                self._read_output(msg.agent, msg.attempt, final=False)
                clidriver.poke(self, msg.agent)
            case m.PipeEnded():
                reading.on_pipe_ended(self, msg)
            case (
                m.HookGrew()
                | m.HooksRead()
                | m.ScreenSeen()
                | m.CLIGaveUp()
                | m.CLINote()
                | m.CLIAnswered()
                | m.QuietDone()
            ):
                await clidriver.handle(self, msg)
            case m.OutputRead():
                await self._on_output(msg)
            case m.TimedOut() if state in ACTIVE:
                self.stop_agent(msg.agent, "timeout")
            case m.StopDone():
                sweep.sweep_now(self)

    async def handle_spawned(self, msg: m.Spawned, *, look: bool = True) -> None:
        """The attempt's pane exists: it runs. What its files said while it was starting (an exit, a done
        file) is handled now; ``look``: read the files too (a resumed engine heard nothing meanwhile)."""
        rec = self.state.agents[msg.agent]
        if rec.state is not S.STARTING:
            return
        p = msg.pane
        spawned: EventSpec = (
            EventKind.AGENT_SPAWNED,
            msg.agent,
            Source.BACKEND.value,
            {"attempt": msg.attempt, "window_id": p.window_id, "pane_id": p.pane_id, "pid": p.pid},
        )
        await self.transition(msg.agent, S.RUNNING, Source.BACKEND, before=[spawned])
        early = self._early.pop(msg.agent, [])
        if (line := self._early_done.pop(msg.agent, None)) is not None:  # printed before it was running
            await outcomes.succeed(self, msg.agent, Source.PATTERN, reason=line[:200])
            await self._replay(msg.agent, msg.attempt, early, look)
            return
        self.arm_timeout(msg.agent, msg.attempt, None)
        if msg.agent in self._stop_reason:  # killed while it was starting
            self.stop_agent(msg.agent, self._stop_reason[msg.agent])
        idle.arm(self, msg.agent, msg.attempt)
        await clidriver.on_running(self, msg.agent, msg.attempt)
        await self._replay(msg.agent, msg.attempt, early, look)

    async def _replay(self, agent: str, attempt: int, early: list[m.AgentMessage], look: bool) -> None:
        """Handle what came while the attempt was starting; with ``look``, look at its files too."""
        if look:
            self.check_files(agent, attempt)
        for msg in early:
            await self._handle(msg)

    def check_files(self, agent: str, attempt: int) -> None:
        """Look at the attempt's done, output and exit files now, as if inotify had just announced them."""
        run = self.run

        def look() -> list[m.Message]:
            found: list[m.Message] = []
            if run.done_file(agent, attempt).exists():
                found.append(m.DoneFileSeen(agent, attempt))
            found.append(m.OutputGrew(agent, attempt))
            if (exited := sweep.exit_message(agent, attempt, run.exit_file(agent, attempt))) is not None:
                found.append(exited)
            return found

        def post_all(msgs: list[m.Message]) -> m.Message:
            for msg in msgs:
                self._queue.put_nowait(msg)
            return m.Tick()

        self._background(look, post_all, lane="read")

    def _take_inbox(self, path: Path) -> None:
        """Read a dropped event file once, however many inotify events announce it."""
        if str(path) in self._inbox_taken:
            return
        self._inbox_taken.add(str(path))
        self._background(partial(sweep.inbox_message, path), lambda msg: msg)

    async def _on_inbox(self, msg: m.InboxFile) -> None:
        """Log the dropped event, then remove its file (a crash in between re-reads it on resume)."""
        if msg.problem is not None:
            log.warning("%s", msg.problem)
        elif msg.ident in self._inbox_logged:
            log.info("inbox file %s was logged before the engine restarted; removing it", msg.path.name)
        elif msg.path.exists():
            await self.record([external_event(msg.name, msg.data, "inbox", msg.ident)])
        await self.in_io(partial(msg.path.unlink, missing_ok=True))
        self._inbox_taken.discard(str(msg.path))

    def arm_timeout(self, agent: str, attempt: int, started_at: float | None) -> None:
        """Time the attempt out ``timeout`` seconds after it started (now, when ``started_at`` is None)."""
        timeout = self.plan.agents[agent].timeout
        if timeout is None:
            return
        left = timeout if started_at is None else max(0.0, started_at + timeout - self.clock())
        self._timers[agent] = self.loop.call_later(left, self._queue.put_nowait, m.TimedOut(agent, attempt))

    def _disarm(self, agent: str) -> None:
        if (t := self._timers.pop(agent, None)) is not None:
            t.cancel()

    # ---- output ---------------------------------------------------------------------------------

    def _read_output(self, agent: str, attempt: int, final: bool) -> None:
        tail = self._tails.get(agent)
        if tail is None:
            return
        if agent in self._reading:
            self._dirty.add(agent)
            return
        self._reading.add(agent)
        exiting = not final and agent in self._pending_exit
        self._background(
            partial(reading.read_tail, tail, agent, attempt, final, exiting), lambda msg: msg, lane="read"
        )

    async def _on_output(self, msg: m.OutputRead) -> None:
        await reading.on_output(self, msg)

    def _on_file(self, path: str, created: bool) -> None:
        """watchdog's thread: map a path to the agent it belongs to."""
        hit = self._paths.get(path)
        if hit is None:
            if path.endswith(".json") and Path(path).parent == self.run.inbox_dir:
                self.post(m.InboxSeen(Path(path)))
            return
        agent, attempt, what = hit
        if what == "out":
            if not created:  # created empty by the spawn: its writes come as writes
                self.post(m.OutputGrew(agent, attempt))
        elif what == "done":
            self.post(m.DoneFileSeen(agent, attempt))
        elif what == "hook":
            self.post(m.HookGrew(agent, attempt))
        elif (exited := sweep.exit_message(agent, attempt, Path(path))) is not None:
            self.post(exited)

    # ---- stopping, sweeping ---------------------------------------------------------------------

    def pane_of(self, agent: str) -> Pane | None:
        rec = self.state.agents[agent]
        if rec.pid is None or rec.window_id is None or rec.pane_id is None:
            return None
        return Pane(rec.window_id, rec.pane_id, rec.pid, False, None, self.run.run_id, agent, rec.attempts)

    def stop_agent(self, agent: str, reason: str) -> None:
        """Stop an agent's processes (its pane's group and what left it, see ``stopping``); the first reason
        given decides what its exit means."""
        self._stop_reason.setdefault(agent, reason)
        pane = self.pane_of(agent)
        if pane is None or self.state.agents[agent].state is S.STARTING:
            return  # handle_spawned stops it once the pane exists
        attempt = self.state.agents[agent].attempts
        also = stopping.finder([pane.pid], [stopping.attempt_marker(self.run, agent, attempt)])
        self._background(
            partial(self.backend.stop, pane, self.options.grace, also), lambda _: m.StopDone(agent, attempt)
        )

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.sweep_interval)
            self._background(partial(reading.event_log_size, self.run), m.EventLogSize)
            if any(r.state in ACTIVE for r in self.state.agents.values()):
                sweep.sweep_now(self)
                if monitoring.sample_due(self):
                    monitoring.sample_now(self)
            elif self._memory_short:  # nothing runs, agents wait for memory: keep looking
                monitoring.sample_now(self)

    # ---- control commands -----------------------------------------------------------------------

    def subscribe(self, usage: bool = False) -> tuple[asyncio.Queue[Event | None], dict[str, JSON], int]:
        """Register a subscriber: its queue, a snapshot and the seq the snapshot reflects, atomically.
        ``usage``: it shows CPU and memory, so they are sampled every sweep while it is there."""
        q: asyncio.Queue[Event | None] = asyncio.Queue()
        if self.outcome is None:
            self._subscribers.add(q)
            if usage:
                self.watchers.add(q)
        else:
            q.put_nowait(None)
        return q, self.state.status_json(self.run.run_id), self.state.last_seq

    async def read_events(self, after: int, upto: int) -> list[Event]:
        events = await self.loop.run_in_executor(self._db, partial(self._history_read, after))
        return [e for e in events if e.seq <= upto]

    def _history_read(self, after: int) -> list[Event]:
        """The log after ``after``, through a read-only connection of the store thread's own: a long read
        (a client catching up on a large run) holds no lock the loop's appends wait for."""
        if self._history is None:
            self._history = EventStore.open_readonly(self.store.path)
        return self._history.read(after=after)

    def unsubscribe(self, q: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(q)
        self.watchers.discard(q)

    async def _command(self, cmd: m.Command) -> None:
        try:
            reply = await execute(self, cmd.request)
        except CommandError as exc:
            reply = {"ok": False, "error": str(exc)}
        except BackendError as exc:  # tmux refused (a pane gone mid-send, text too long for it)
            reply = {"ok": False, "error": f"tmux: {exc}"}
        if not cmd.reply.done():
            cmd.reply.set_result(reply)

    def post_stop(self, reason: str) -> None:
        """Stop the run as if a client asked (safe from signal handlers on the loop)."""
        self._queue.put_nowait(m.Command({"cmd": "stop", "reason": reason}, self.loop.create_future()))

    async def in_actor(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` on the engine's loop between two messages (for tasks beside the loop, such as an
        agent CLI's driver, that must not change state while a message is being handled)."""
        result: asyncio.Future[T] = self.loop.create_future()
        self.post(m.Call(fn, result))
        return await result

    async def _call(self, msg: m.Call) -> None:
        try:
            value = await msg.fn()
        except Exception as exc:  # noqa: BLE001 (it is the caller's: in_actor raises it there)
            if not msg.result.done():
                msg.result.set_exception(exc)
            return
        if not msg.result.done():
            msg.result.set_result(value)

    async def in_io(self, fn: Callable[[], T]) -> T:
        """Run blocking ``fn`` on the I/O pool and wait for it."""
        return await self.loop.run_in_executor(self._io, fn)

    async def in_db(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store's own thread (SQLite connections stay on one thread)."""
        return await self.loop.run_in_executor(self._db, fn)

    def active_agents(self) -> list[str]:
        return [a for a, r in self.state.agents.items() if r.state in ACTIVE]

    def not_started(self) -> list[str]:
        return [a for a, r in self.state.agents.items() if r.state not in ACTIVE | TERMINAL]
