from __future__ import annotations

from agentsup.plan.model import AgentSpec, Severity
from agentsup.supervisor.limits import crossings, new_crossings
from agentsup.supervisor.resources import Usage

SPEC = AgentSpec(name="a", cmd="true", max_rss=100_000_000, max_cpu=80.0, kill_over_rss=500_000_000)


def test_under_every_limit_nothing_crosses() -> None:
    assert crossings(SPEC, Usage(50.0, 10_000_000, 1)) == []
    assert crossings(AgentSpec(name="b", cmd="true"), Usage(900.0, 10**12, 9)) == []


def test_each_limit_crosses_with_its_severity() -> None:
    got = {(c.metric, c.severity, c.kill) for c in crossings(SPEC, Usage(95.0, 600_000_000, 2))}
    assert got == {
        ("kill_rss", Severity.CRITICAL, True),
        ("rss", Severity.WARNING, False),
        ("cpu", Severity.WARNING, False),
    }
    (cpu,) = crossings(SPEC, Usage(95.0, 1, 1))
    assert cpu.line == "CPU 95% over max_cpu 80%"


def test_a_crossing_is_reported_once_until_it_clears() -> None:
    seen: set[str] = set()
    assert [c.metric for c in new_crossings(SPEC, Usage(95.0, 1, 1), seen)] == ["cpu"]
    assert new_crossings(SPEC, Usage(96.0, 1, 1), seen) == []
    assert new_crossings(SPEC, Usage(10.0, 1, 1), seen) == []
    assert [c.metric for c in new_crossings(SPEC, Usage(90.0, 1, 1), seen)] == ["cpu"]
