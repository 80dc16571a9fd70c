"""inotify (through watchdog) on a run's watched files, turned into calls on the engine's loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

# Only writes matter. Opens and reads must stay out of the inotify mask: the engine reads the files it
# watches, and seeing its own reads would feed back into more reads.
WRITES: list[type[FileSystemEvent]] = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent]
# Whole files only: closed after writing, or renamed into place (a file seen on creation may be empty).
COMPLETE_FILES: list[type[FileSystemEvent]] = [FileClosedEvent, FileMovedEvent]


class _Handler(FileSystemEventHandler):
    def __init__(self, notify: Callable[[str, bool], None], wanted: list[type[FileSystemEvent]]) -> None:
        self._notify = notify
        self._wanted = tuple(wanted)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or type(event) not in self._wanted:
            return
        # A rename (the wrapper's atomic exit.json) reports the new name as dest_path.
        path = event.dest_path or event.src_path
        self._notify(path if isinstance(path, str) else path.decode(), type(event) is FileCreatedEvent)


class FileWatch:
    """Calls ``notify(path, created)`` from watchdog's thread for every file created (``created``, also a
    file renamed in from a directory not watched), written or renamed into place directly in one of
    ``roots`` (not below them).

    The callee filters; inotify may also miss events (queue overflow), which the engine's reconcile
    sweep covers.
    """

    def __init__(
        self, roots: Sequence[tuple[Path, list[type[FileSystemEvent]]]], notify: Callable[[str, bool], None]
    ) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        for root, wanted in roots:
            handler = _Handler(notify, wanted)
            self._observer.schedule(handler, str(root), recursive=False, event_filter=wanted)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
