"""The JSON Schema (draft-07) of ``plan.toml``, generated from the key table, for editors (taplo, tombi)."""

from __future__ import annotations

from agentsup.plan.keys import PLAN
from agentsup.plan.types import table_schema


def plan_schema() -> dict[str, object]:
    """A new draft-07 JSON Schema of the plan; the caller may change it freely."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "agentsup plan",
        "description": "An agentsup plan: the agents to run in tmux panes and how they depend on each other.",
        **table_schema(PLAN),
    }
