"""The engine process: ``python -m agentsup.supervisor RUN_DIR``, run as the command of the run's
``supervisor`` tmux window by ``agentsup start``."""

from __future__ import annotations

import sys

from agentsup.supervisor.process import main

sys.exit(main(sys.argv[1:]))
