"""The engine's resource watch: sample every agent's process tree, alert on limits, hold on low memory.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, EventKind, EventSpec
from agentsup.supervisor.limits import new_crossings
from agentsup.supervisor.resources import available_memory
from agentsup.supervisor.states import ACTIVE, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine


SLOW_SWEEPS = 5  # with nobody needing fresh figures, resources are sampled every 5th sweep (10 s)


def sample_due(engine: Engine) -> bool:
    """Whether this sweep samples resources: every sweep while limits are watched (an agent's max_rss,
    max_cpu or kill_over_rss, the run's min_free_memory) or a dashboard shows the figures; otherwise every
    SLOW_SWEEPS-th, for `agentsup status`. The sample reads every process on the machine (on Linux about
    15 us each), still the largest part of an idle engine's own work."""
    engine.sweeps_unsampled += 1
    plan = engine.plan
    needed = (
        engine.watchers
        or plan.run.min_free_memory is not None
        or any(
            (spec := plan.agents[name]).max_rss is not None
            or spec.max_cpu is not None
            or spec.kill_over_rss is not None
            for name in engine.active_agents()
        )
    )
    if needed or engine.sweeps_unsampled >= SLOW_SWEEPS:
        engine.sweeps_unsampled = 0
        return True
    return False


def sample_now(engine: Engine) -> None:
    if engine._sampling:
        return
    engine._sampling = True
    roots = {a: r.pid for a, r in engine.state.agents.items() if r.state in ACTIVE and r.pid is not None}
    sampler, usage_file = engine._sampler, engine.run.path / "usage.json"

    def sample() -> m.Message:
        usage = sampler.sample(roots)
        tmp = usage_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({a: dataclasses.asdict(u) for a, u in usage.items()}))
        tmp.replace(usage_file)
        return m.Sampled(usage, available_memory())

    engine._background(sample, lambda msg: msg)


async def on_sampled(engine: Engine, msg: m.Sampled) -> None:
    """Resource alerts on crossing a limit, kill_over_rss, and admission control on free memory."""
    engine._sampling = False
    specs: list[EventSpec] = []
    for agent, usage in msg.usage.items():
        rec = engine.state.agents.get(agent)
        if rec is None or rec.state not in ACTIVE:
            continue
        for c in new_crossings(engine.plan.agents[agent], usage, engine._over.setdefault(agent, set())):
            data: dict[str, JSON] = {
                "attempt": rec.attempts,
                "severity": c.severity.value,
                "rule": c.metric,
                "line": c.line,
                "resource": True,
                "value": c.value,
                "limit": c.limit,
            }
            specs.append((EventKind.ALERT, agent, Source.ENGINE.value, data))
            if c.kill:
                engine.stop_agent(agent, f"resource: {c.line}")
    specs += admission(engine, msg.available)
    if specs:
        await engine.record(specs)


def admission(engine: Engine, available: int) -> list[EventSpec]:
    """Hold new agents while available memory is under ``[run] min_free_memory``; log each change."""
    floor = engine.plan.run.min_free_memory
    short = floor is not None and available < floor
    if short == engine._memory_short:
        return []
    engine._memory_short = short
    line = "memory available again: admitting agents"
    if short and floor is not None:
        line = f"available memory {available / 1e6:.0f} MB under min_free_memory {floor / 1e6:.0f} MB: "
        line += "holding new agents"
    data: dict[str, JSON] = {
        "severity": "warning" if short else "info",
        "rule": "min_free_memory",
        "line": line,
        "resource": True,
        "value": available,
        "limit": floor,
    }
    return [(EventKind.ALERT, None, Source.ENGINE.value, data)]
