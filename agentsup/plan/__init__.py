"""The plan model: load, normalise and validate ``plan.toml`` (stdlib only)."""

from agentsup.plan.durations import format_duration, parse_duration
from agentsup.plan.load import load_plan, parse_plan
from agentsup.plan.model import (
    AgentSpec,
    AlertRule,
    Backoff,
    Dependency,
    DoneKind,
    DoneRule,
    OnFailure,
    Plan,
    PlanError,
    Problem,
    RunSpec,
    Severity,
    When,
)
from agentsup.plan.schema import plan_schema

__all__ = [
    "AgentSpec",
    "AlertRule",
    "Backoff",
    "Dependency",
    "DoneKind",
    "DoneRule",
    "OnFailure",
    "Plan",
    "PlanError",
    "Problem",
    "RunSpec",
    "Severity",
    "When",
    "format_duration",
    "load_plan",
    "parse_duration",
    "parse_plan",
    "plan_schema",
]
