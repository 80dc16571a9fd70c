"""The plan model: load, normalise and validate ``plan.toml`` (stdlib only)."""

from agentsup.plan.durations import format_duration, parse_duration
from agentsup.plan.load import load_plan, parse_plan
from agentsup.plan.model import (
    ActionKind,
    AgentSpec,
    Aggregate,
    AlertRule,
    Backoff,
    Dependency,
    DoneKind,
    DoneRule,
    EventName,
    Handler,
    OnFailure,
    Plan,
    PlanError,
    Problem,
    RunSpec,
    Severity,
    Strategy,
    When,
)
from agentsup.plan.schema import plan_schema
from agentsup.plan.sizes import format_size, parse_size

__all__ = [
    "ActionKind",
    "AgentSpec",
    "Aggregate",
    "AlertRule",
    "Backoff",
    "Dependency",
    "DoneKind",
    "DoneRule",
    "EventName",
    "Handler",
    "OnFailure",
    "Plan",
    "PlanError",
    "Problem",
    "RunSpec",
    "Severity",
    "Strategy",
    "When",
    "format_duration",
    "format_size",
    "load_plan",
    "parse_duration",
    "parse_plan",
    "parse_size",
    "plan_schema",
]
