"""Running the engine as a process: load the run, serve the control socket, run to the end."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import resource
import signal
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

from agentsup.plan import PlanError, parse_plan
from agentsup.sessions import TmuxBackend
from agentsup.supervisor.control import ControlServer
from agentsup.supervisor.engine import Engine
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.scheduler import RunOutcome
from agentsup.supervisor.store import EventStore, StoreError
from agentsup.supervisor.sweep import SessionGoneError

log = logging.getLogger("agentsup.engine")
LOCK_FILE = "engine.lock"
EXIT_LOCKED = 3
EXIT_STORE = 4
EXIT_SESSION_GONE = 5
ENGINE_LOG_BYTES = 10 * 1024 * 1024  # engine.log rotates at this size; ENGINE_LOG_KEEP old files are kept
ENGINE_LOG_KEEP = 2


def hold_engine_lock(run: RunDir) -> IO[bytes] | None:
    """The run's engine lock, held until this process ends (the kernel drops it even on SIGKILL).

    None when another engine holds it: two engines on one run would start every agent twice.
    """
    f = (run.path / LOCK_FILE).open("ab")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


async def _serve(engine: Engine, run: RunDir) -> RunOutcome:
    server = ControlServer(engine, run.control_socket)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        # Closing the terminal or tmux's SIGHUP must not kill the run's bookkeeping mid-write; stop cleanly.
        loop.add_signal_handler(sig, lambda: engine.post_stop("engine received a signal"))
    try:
        return await engine.run_until_done(on_ready=run.ready_file.touch)
    finally:
        await server.close()


def log_thread_deaths() -> None:
    """Log an exception that ends a thread (watchdog's readers, a pool's worker) to the engine's log; by
    default Python prints it to stderr, which is the engine's tmux window, where nobody reads it."""

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "a thread"
        log.error(
            "%s died of an exception; what it did is left to the sweep",
            name,
            exc_info=args.exc_value,
        )

    threading.excepthook = hook


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m agentsup.supervisor RUN_DIR", flush=True)
        return 2
    run = RunDir(Path(argv[0]).resolve())
    handler = RotatingFileHandler(run.engine_log, maxBytes=ENGINE_LOG_BYTES, backupCount=ENGINE_LOG_KEEP)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    log_thread_deaths()
    lock = hold_engine_lock(run)
    if lock is None:
        log.error("another engine is serving run %s; this one leaves it alone", run.run_id)
        return EXIT_LOCKED
    backend: TmuxBackend | None = None
    try:
        meta = run.read_meta()
        plan = parse_plan(
            run.plan_copy.read_text(),
            file=meta.plan_file,
            base_dir=Path(meta.plan_file).parent,
            overrides=meta.inputs,
        )
        run.inbox_dir.mkdir(exist_ok=True)
        store = EventStore.open(run.events_db)
        backend = TmuxBackend(meta.tmux_socket)
        engine = Engine(run, meta, plan, backend=backend, store=store, environ=run.read_environ())
        outcome = asyncio.run(_serve(engine, run))
    except PlanError:
        log.exception("the run's plan is invalid")
        return 2
    except StoreError as exc:
        # Nothing is done before it is logged, so the engine stops here; the agents go on in tmux.
        log.error(  # noqa: TRY400 -- the message says it all; a traceback would hide it
            "the event log cannot be written, so the engine stops (the log is intact up to its last "
            "transaction; the agents go on in tmux): %s. Free space (or fix the directory) and run "
            "`agentsup resume %s`",
            exc,
            run.run_id,
        )
        return EXIT_STORE
    except SessionGoneError as exc:
        log.warning("%s", exc)  # an expected end: no traceback
        return EXIT_SESSION_GONE
    except Exception:
        log.exception("engine crashed")
        raise
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
        log.info("run finished: %s (engine peak RSS %d MiB)", outcome.value, peak)
        if not meta.keep_session:
            # Close the agents' windows; the session ends with this process, the last window left.
            for pane in backend.list_panes(meta.session):
                backend.kill_window(pane.window_id)
        return 0 if outcome is RunOutcome.SUCCEEDED else 1
    finally:
        # Whatever ended the engine, its tmux control-mode client leaves with it: a client left attached
        # keeps a killed tmux server alive until it goes, and a new server cannot start meanwhile.
        if backend is not None:
            backend.close()
