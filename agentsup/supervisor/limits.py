"""Resource limits: which samples cross an agent's ``max_rss`` / ``max_cpu`` / ``kill_over_rss``. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from agentsup.plan.model import AgentSpec, Severity
from agentsup.supervisor.resources import Usage


@dataclass(frozen=True)
class Crossing:
    """A limit an agent went over; alerts fire when it goes over, not on every sample while it stays."""

    metric: str  # "rss" | "cpu" | "kill_rss"
    severity: Severity
    value: float
    limit: float
    kill: bool

    @property
    def line(self) -> str:
        if self.metric == "cpu":
            return f"CPU {self.value:.0f}% over max_cpu {self.limit:.0f}%"
        what = "kill_over_rss" if self.kill else "max_rss"
        return f"RSS {_mb(self.value)} over {what} {_mb(self.limit)}"


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def crossings(spec: AgentSpec, usage: Usage) -> list[Crossing]:
    """Every limit ``usage`` is over now."""
    over: list[Crossing] = []
    if spec.kill_over_rss is not None and usage.rss > spec.kill_over_rss:
        over.append(Crossing("kill_rss", Severity.CRITICAL, usage.rss, spec.kill_over_rss, kill=True))
    if spec.max_rss is not None and usage.rss > spec.max_rss:
        over.append(Crossing("rss", Severity.WARNING, usage.rss, spec.max_rss, kill=False))
    if spec.max_cpu is not None and usage.cpu_percent > spec.max_cpu:
        over.append(Crossing("cpu", Severity.WARNING, usage.cpu_percent, spec.max_cpu, kill=False))
    return over


def new_crossings(spec: AgentSpec, usage: Usage, already: set[str]) -> list[Crossing]:
    """The crossings not already reported; ``already`` is updated to what is over now."""
    now = crossings(spec, usage)
    fresh = [c for c in now if c.metric not in already]
    already.clear()
    already.update(c.metric for c in now)
    return fresh
