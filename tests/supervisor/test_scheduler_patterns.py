"""The scheduler's pattern rules: pools, throttle caps, and ``m.workers`` dependencies on dynamic agents."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from agentsup.plan.model import AgentSpec, Dependency, Plan, When
from agentsup.supervisor.runstate import RunState
from agentsup.supervisor.scheduler import Hold, Skip, Start, schedule
from agentsup.supervisor.states import AgentState
from tests.supervisor.planbuild import make_plan
from tests.supervisor.test_scheduler import Sim, starts

S = AgentState


def _with(plan: Plan, specs: dict[str, AgentSpec], pools: dict[str, int] | None = None) -> Plan:
    agents = {**plan.agents, **specs}
    run = dataclasses.replace(plan.run, pools=MappingProxyType(pools or dict(plan.run.pools)))
    return dataclasses.replace(plan, run=run, agents=MappingProxyType(agents))


def _pooled(plan: Plan, pool: str, *names: str) -> dict[str, AgentSpec]:
    return {n: dataclasses.replace(plan.agents[n], pool=pool) for n in names}


def test_pool_caps_its_members_and_leaves_others_free() -> None:
    base = make_plan({"l1": [], "l2": [], "l3": [], "x1": [], "x2": []})
    plan = _with(base, _pooled(base, "llm", "l1", "l2", "l3"), pools={"llm": 1})
    sim = Sim(plan)
    assert starts(sim.step()) == ["l1", "x1", "x2"]
    assert sim.state("l2") is S.WAITING
    sim.finish("l1")
    assert starts(sim.step()) == ["l2"]


def test_pool_and_run_cap_both_hold() -> None:
    base = make_plan({"l1": [], "l2": [], "x1": [], "x2": []}, max_parallel=2)
    plan = _with(base, _pooled(base, "llm", "l1", "l2"), pools={"llm": 2})
    assert starts(Sim(plan).step()) == ["l1", "l2"]


def test_throttle_cap_lowers_the_run_cap() -> None:
    plan = make_plan({"a": [], "b": [], "c": []}, max_parallel=3)
    run = RunState.for_agents(plan.agents)
    assert [a for a in schedule(plan, run, 0.0, cap=1).actions if isinstance(a, Start)] == [Start("a", 1)]
    assert {type(a) for a in schedule(plan, run, 0.0, cap=1).actions} == {Start, Hold}
    assert len(schedule(plan, run, 0.0, cap=5).actions) == 3  # a throttle never raises the cap


def _master_plan() -> Plan:
    base = make_plan({"master": [], "synth": []})
    synth = dataclasses.replace(base.agents["synth"], after=(Dependency("master", workers=True),))
    return _with(base, {"synth": synth})


def _add_worker(sim: Sim, name: str, parent: str) -> None:
    spec = AgentSpec(name=name, cmd="true", parent=parent, worker="w")
    sim.plan = _with(sim.plan, {name: spec})


def test_workers_dependency_waits_for_master_and_every_worker() -> None:
    sim = Sim(_master_plan())
    assert starts(sim.step()) == ["master"]
    sim.finish("master")
    _add_worker(sim, "master/a", "master")
    _add_worker(sim, "master/b", "master")
    assert starts(sim.step()) == ["master/a", "master/b"]
    sim.finish("master/a")
    assert starts(sim.step()) == []
    _add_worker(sim, "master/b/deep", "master/b")  # a nested master spawns on its own success
    sim.finish("master/b")
    assert starts(sim.step()) == ["master/b/deep"]
    assert sim.state("synth") is S.PENDING
    sim.finish("master/b/deep")
    assert starts(sim.step()) == ["synth"]


def test_workers_dependency_without_workers_is_just_the_master() -> None:
    sim = Sim(_master_plan())
    sim.step()
    sim.finish("master")
    assert starts(sim.step()) == ["synth"]


def test_a_failed_worker_skips_the_dependent() -> None:
    sim = Sim(_master_plan())
    sim.step()
    sim.finish("master")
    _add_worker(sim, "master/a", "master")
    sim.step()
    sim.finish("master/a", S.FAILED)
    d = sim.step()
    assert Skip("synth", 'upstream "master/a" failed') in d.actions


def test_workers_finished_accepts_failed_workers() -> None:
    sim = Sim(_master_plan())
    synth = dataclasses.replace(
        sim.plan.agents["synth"], after=(Dependency("master", When.FINISHED, workers=True),)
    )
    sim.plan = _with(sim.plan, {"synth": synth})
    sim.step()
    sim.finish("master")
    _add_worker(sim, "master/a", "master")
    sim.step()
    sim.finish("master/a", S.FAILED)
    assert starts(sim.step()) == ["synth"]
