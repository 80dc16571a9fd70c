#!/usr/bin/env python3
"""Leave `sleep 1000` behind as a proper daemon: fork, setsid, fork again, stdio on /dev/null, SIGTERM
ignored (only SIGKILL ends it). Writes the daemon's pid to argv[1] (renamed into place), then returns."""

import os
import signal
import sys
from pathlib import Path

pid_file = Path(sys.argv[1])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        tmp = pid_file.with_name(pid_file.name + ".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.rename(pid_file)
        os.execvp("sleep", ["sleep", "1000"])  # noqa: S606 -- the daemon is this very process, replaced
    os._exit(0)
os.wait()
