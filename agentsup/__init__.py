"""agentsup: supervise CLI agents in tmux panes."""

__version__ = "0.1.0"
