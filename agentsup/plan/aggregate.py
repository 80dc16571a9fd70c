"""``aggregate``: the keys of an agent that combines its sources' ``result.json`` files, and their checks."""

from __future__ import annotations

from typing import Any

from agentsup.plan.locate import KeyPath
from agentsup.plan.model import Aggregate, Strategy
from agentsup.plan.types import ArrayOf, Boolean, Choice, Key, Name, Report, Table, Text, Values, quote

AGG_FROM = Key(
    "from",
    ArrayOf(Name(), nonempty=True),
    "Agents whose result.json files are combined; each is a dependency with when = 'finished'.",
    required=True,
)
AGG_STRATEGY = Key(
    "strategy",
    Choice(Strategy),
    "'vote' (the most common value of field), 'weighted' (sum of field * confidence over the sum of "
    "confidence) or 'fusion' (the objects merged, conflicting keys listed).",
    required=True,
)
AGG_FIELD = Key(
    "field",
    Text(nonempty=True),
    "vote: the result field voted on (required); weighted: the score field (default 'score').",
)
AGG_CONFIDENCE = Key(
    "confidence",
    Text(nonempty=True),
    "weighted: the result field weighting each score.",
    default="confidence",
)
AGG_REQUIRE_ALL = Key(
    "require_all",
    Boolean(),
    "Fail when any source failed or left no usable result.",
    default=False,
)
AGGREGATE = Table((AGG_FROM, AGG_STRATEGY, AGG_FIELD, AGG_CONFIDENCE, AGG_REQUIRE_ALL))

# The strategies each optional key is used by.
_AGG_USED_BY: dict[Key[Any], tuple[Strategy, ...]] = {
    AGG_FIELD: (Strategy.VOTE, Strategy.WEIGHTED),
    AGG_CONFIDENCE: (Strategy.WEIGHTED,),
}


def build_aggregate(values: Values, at: KeyPath, report: Report) -> Aggregate | None:
    """The aggregate, once ``from`` and ``strategy`` are valid, even if other keys are not: its sources
    are still checked as dependencies (the plan is rejected anyway)."""
    sources = values.get(AGG_FROM)
    strategy = values.get(AGG_STRATEGY)
    first: dict[str, int] = {}
    for i, source in enumerate(sources or ()):
        if source in first:
            report((*at, "from", i), f"duplicate source {quote(source)} (already at from[{first[source]}])")
        first.setdefault(source, i)
    for key, strategies in _AGG_USED_BY.items():
        if strategy is not None and values.has(key) and strategy not in strategies:
            used_by = " or ".join(quote(s.value) for s in strategies)
            report((*at, key.name), f"only used by strategy = {used_by}")
    if strategy is Strategy.VOTE and not values.has(AGG_FIELD):
        report(at, 'missing required key "field" for strategy = "vote": the result field voted on')
    if sources is None or strategy is None:
        return None
    field = values.get(AGG_FIELD)
    return Aggregate(
        sources=sources,
        strategy=strategy,
        field="score" if field is None and strategy is Strategy.WEIGHTED else field,
        confidence=values.get(AGG_CONFIDENCE) or "confidence",
        require_all=values.get(AGG_REQUIRE_ALL) or False,
    )
