"""How often the engine samples resources: every sweep while someone needs fresh figures, else every 5th."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from agentsup.plan.model import Plan
from agentsup.supervisor.monitoring import SLOW_SWEEPS, sample_due
from tests.supervisor.planbuild import make_plan

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine


def engine_of(plan: Plan, *, watchers: int = 0) -> Engine:
    """The parts of an engine that sample_due reads, as a running engine has them at start."""
    fake = SimpleNamespace(
        plan=plan,
        watchers={object() for _ in range(watchers)},
        sweeps_unsampled=SLOW_SWEEPS,
        active_agents=lambda: list(plan.agents),
    )
    return cast("Engine", fake)


def samples(engine: Engine, sweeps: int) -> list[int]:
    return [n for n in range(1, sweeps + 1) if sample_due(engine)]


def test_an_unwatched_run_samples_at_its_first_sweep_then_every_fifth() -> None:
    assert samples(engine_of(make_plan({"a": [], "b": []})), 12) == [1, 6, 11]


def test_a_dashboard_gets_fresh_figures_every_sweep() -> None:
    assert samples(engine_of(make_plan({"a": []}), watchers=1), 4) == [1, 2, 3, 4]


def test_limits_are_watched_every_sweep() -> None:
    plan = make_plan({"a": [], "b": []})
    limited = dataclasses.replace(plan.agents["b"], kill_over_rss=1 << 30)
    plan = dataclasses.replace(plan, agents={"a": plan.agents["a"], "b": limited})
    assert samples(engine_of(plan), 4) == [1, 2, 3, 4]
    floor = dataclasses.replace(make_plan({"a": []}), run=dataclasses.replace(plan.run, min_free_memory=1))
    assert samples(engine_of(floor), 3) == [1, 2, 3]
