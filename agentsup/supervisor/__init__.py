"""The engine: states, pure scheduler, event log, watchers, control server. Imports no Textual."""
