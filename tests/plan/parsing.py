"""Helpers shared by the plan tests: parse a dedented plan text, or collect its problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agentsup.plan import Plan, PlanError, parse_plan

BASE = Path("/srv/project")


def parse(text: str) -> Plan:
    return parse_plan(textwrap.dedent(text), file="plan.toml", base_dir=BASE)


def problems_of(text: str) -> list[str]:
    """The problems ``text`` is reported with, as ``str(Problem)``; fails if it loads."""
    try:
        parse(text)
    except PlanError as e:
        return [str(p) for p in e.problems]
    raise AssertionError("the plan loaded without problems")
