"""The Textual dashboard: a client of the engine and nothing else (it never imports sessions or agents)."""
