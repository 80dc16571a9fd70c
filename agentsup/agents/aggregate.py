"""The aggregate agent: ``agentsup aggregate …`` combines its sources' ``result.json`` files in its own pane.

``AggregatePreset`` translates an agent with ``aggregate`` set into that command; ``run_aggregate`` is
what the command does. It reads the context file the engine wrote for the agent (each upstream's state
and output directory) and each source's ``OUT_DIR/result.json``, combines them by the plan's strategy and
writes ``result.json`` into its own output directory. Sources it cannot use are reported and left out,
or fail it when ``require_all`` is set.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from agentsup.agents.base import Launch
from agentsup.plan import AgentSpec
from agentsup.plan.model import Strategy

# The same shape as agentsup.supervisor.events.JSON, which this layer may not import.
JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

RESULT_FILE = "result.json"
SUCCEEDED = "succeeded"  # the upstream state whose result is used (AgentState.SUCCEEDED)
DEFAULT_SCORE_FIELD = "score"


class AggregatePreset:
    """Runs ``python -m agentsup aggregate`` with the plan's strategy and sources (names never start with
    "-", so they follow the options safely)."""

    name = "aggregate"

    def launch(self, spec: AgentSpec, env: Mapping[str, str]) -> Launch:
        agg = spec.aggregate
        if agg is None:  # the registry picks this preset only for aggregate agents
            raise ValueError(f"agent {spec.name!r} has no aggregate table")
        argv = [sys.executable, "-m", "agentsup", "aggregate", "--strategy", agg.strategy.value]
        if agg.field is not None:
            argv += ["--field", agg.field]
        argv += ["--confidence", agg.confidence]
        if agg.require_all:
            argv.append("--require-all")
        argv += agg.sources
        return Launch(argv=tuple(argv), env={**spec.env, **env})


class _UnusableError(Exception):
    """A source's result cannot be used; the message is the reason, as reported."""


@dataclass(frozen=True)
class _Used:
    source: str
    result: JSON


def _canonical(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> JSON:
    raise ValueError(f"{name} is not JSON")


def _load_json(path: Path) -> JSON:
    """Parsed JSON; ValueError/OSError with a readable message otherwise."""
    text = path.read_text(encoding="utf-8")
    try:
        data: JSON = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"line {e.lineno} column {e.colno}: {e.msg}") from e
    except RecursionError as e:
        raise ValueError("nested too deeply") from e
    return data


def _upstreams(context: Path) -> Mapping[str, JSON]:
    try:
        data = _load_json(context)
    except FileNotFoundError:
        raise _UnusableError(f"no context file {context}") from None
    except (OSError, ValueError) as e:
        raise _UnusableError(f"cannot read the context file {context}: {e}") from e
    ups = data.get("upstreams") if isinstance(data, dict) else None
    if not isinstance(ups, dict):
        raise _UnusableError(f'the context file {context} has no "upstreams" object')
    return ups


def _read_source(name: str, upstreams: Mapping[str, JSON]) -> JSON:
    facts = upstreams.get(name)
    if not isinstance(facts, dict):
        raise _UnusableError("not in the context file (is it an upstream of this agent?)")
    state = facts.get("state")
    if state != SUCCEEDED:
        raise _UnusableError(f"it did not succeed (state {json.dumps(state)})")
    out_dir = facts.get("out_dir")
    if not isinstance(out_dir, str):
        raise _UnusableError("the context file gives no output directory")
    path = Path(out_dir) / RESULT_FILE
    try:
        return _load_json(path)
    except FileNotFoundError:
        raise _UnusableError(f"it wrote no {RESULT_FILE} ({path})") from None
    except OSError as e:
        raise _UnusableError(f"cannot read {path}: {e}") from e
    except ValueError as e:  # UnicodeDecodeError among them
        raise _UnusableError(f"{path} is not valid JSON: {e}") from e


def _field(result: JSON, field: str) -> JSON:
    if not isinstance(result, dict):
        raise _UnusableError(f"{RESULT_FILE} is not an object")
    if field not in result:
        raise _UnusableError(f'{RESULT_FILE} has no field "{field}"')
    return result[field]


def _number(result: JSON, field: str) -> float:
    value = _field(result, field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _UnusableError(f'"{field}" is not a number ({_canonical(value)})')
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise _UnusableError(f'"{field}" is too large ({_canonical(value)})')
    return number


@dataclass
class _Outcome:
    result: dict[str, JSON]  # the strategy's own keys, "value" among them
    lines: list[str]  # the human summary
    error: str | None = None  # set: the aggregate failed (exit 1)


def _vote(used: Sequence[_Used], field: str) -> _Outcome:
    groups: dict[str, tuple[JSON, list[str]]] = {}  # canonical value -> (value, sources), first-seen order
    for u in used:
        value = _field(u.result, field)
        groups.setdefault(_canonical(value), (value, []))[1].append(u.source)
    order = sorted(groups.values(), key=lambda g: -len(g[1]))  # stable: ties keep first-seen order
    tally: list[JSON] = [{"value": v, "count": len(s), "sources": list[JSON](s)} for v, s in order]
    top = len(order[0][1])
    tied: list[JSON] = [v for v, s in order if len(s) == top]
    if len(tied) == 1:
        tied = []
    winner = order[0][0]
    result: dict[str, JSON] = {
        "field": field,
        "value": winner,
        "tally": tally,
        "tie": bool(tied),
        "tied": tied,
    }
    head = f'vote on "{field}": {_canonical(winner)} with {top} of {len(used)} votes'
    if tied:
        head += f"; a tie between {', '.join(_canonical(v) for v in tied)}: the first in source order wins"
    votes = "; ".join(f"{_canonical(v)} {len(s)} ({', '.join(s)})" for v, s in order)
    return _Outcome(result, [head, f"tally: {votes}"])


def _weighted(used: Sequence[_Used], field: str, confidence: str) -> _Outcome:
    rows = [(u.source, _number(u.result, field), _number(u.result, confidence)) for u in used]
    total = math.fsum(w for _, _, w in rows)
    weighted_sum = math.fsum(x * w for _, x, w in rows)
    result: dict[str, JSON] = {
        "field": field,
        "confidence": confidence,
        "value": None,
        "total_weight": total,
        "zero_weight": total == 0,
        "contributions": [
            {"source": s, "score": x, "confidence": w, "contribution": x * w} for s, x, w in rows
        ],
    }
    scores = ", ".join(f"{s} {x:g}*{w:g}" for s, x, w in rows)
    if not (math.isfinite(total) and math.isfinite(weighted_sum)):
        result["total_weight"] = None
        result["contributions"] = [{"source": s, "score": x, "confidence": w} for s, x, w in rows]
        return _Outcome(result, [f"scores: {scores}"], "the weighted sum overflows")
    if total == 0:
        error = f'the total weight ("{confidence}") is 0, so there is no weighted "{field}"'
        return _Outcome(result, [f"scores: {scores}"], error)
    value = weighted_sum / total
    result["value"] = value
    return _Outcome(
        result, [f'weighted "{field}": {value:.6g} (total weight {total:g})', f"scores: {scores}"]
    )


def _fusion(used: Sequence[_Used]) -> _Outcome:
    merged: dict[str, JSON] = {}
    seen: dict[str, list[tuple[str, JSON]]] = {}  # key -> (source, value) for every source that has it
    for u in used:
        if isinstance(u.result, dict):  # always, after _object; narrows for mypy
            for key, value in u.result.items():
                merged.setdefault(key, value)
                seen.setdefault(key, []).append((u.source, value))
    conflicts: dict[str, JSON] = {
        key: [{"source": s, "value": v} for s, v in pairs]
        for key, pairs in seen.items()
        if len({_canonical(v) for _, v in pairs}) > 1
    }
    head = f"fusion of {len(used)} results: {len(merged)} keys"
    if conflicts:
        head += f", {len(conflicts)} in conflict (the first source's value kept)"
    lines = [head] + [
        f'conflict "{key}": ' + "; ".join(f"{s} {_canonical(v)}" for s, v in seen[key]) for key in conflicts
    ]
    return _Outcome({"value": merged, "conflicts": conflicts}, lines)


def _object(result: JSON) -> None:
    if not isinstance(result, dict):
        raise _UnusableError(f"{RESULT_FILE} is not an object")


def _suitability(strategy: Strategy, field: str, confidence: str) -> Callable[[JSON], None]:
    """What a source's result must satisfy to be used, per strategy."""

    def vote(result: JSON) -> None:
        _field(result, field)

    def weighted(result: JSON) -> None:
        _number(result, field)
        if _number(result, confidence) < 0:
            raise _UnusableError(f'"{confidence}" is negative')

    return {Strategy.VOTE: vote, Strategy.WEIGHTED: weighted, Strategy.FUSION: _object}[strategy]


def _gather(
    sources: Sequence[str], check: Callable[[JSON], None], context: Path
) -> tuple[list[_Used], list[tuple[str, str]]]:
    upstreams = _upstreams(context)
    used: list[_Used] = []
    left_out: list[tuple[str, str]] = []
    for name in sources:
        try:
            result = _read_source(name, upstreams)
            check(result)
        except _UnusableError as e:
            left_out.append((name, str(e)))
        else:
            used.append(_Used(name, result))
    return used, left_out


def _write_atomically(path: Path, data: JSON) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _failed(error: str) -> _Outcome:
    return _Outcome({"value": None}, [], error)


def _combine(
    strategy: Strategy,
    sources: Sequence[str],
    *,
    field: str,  # "" only when a vote has none
    confidence: str,
    require_all: bool,
    context: Path,
) -> tuple[list[_Used], list[tuple[str, str]], _Outcome]:
    """The sources used, those left out with the reason, and the outcome."""
    if strategy is Strategy.VOTE and not field:
        return [], [], _failed("vote needs a field to vote on (--field)")
    try:
        used, left_out = _gather(sources, _suitability(strategy, field, confidence), context)
    except _UnusableError as e:
        return [], [], _failed(str(e))
    if not used:
        return used, left_out, _failed(f"no usable source: none of the {len(sources)} gave a usable result")
    if require_all and left_out:
        n = len(left_out)
        return used, left_out, _failed(f"require_all is set and {n} of {len(sources)} sources were left out")
    if strategy is Strategy.VOTE:
        outcome = _vote(used, field)
    elif strategy is Strategy.WEIGHTED:
        outcome = _weighted(used, field, confidence)
    else:
        outcome = _fusion(used)
    return used, left_out, outcome


def run_aggregate(
    strategy: Strategy,
    sources: Sequence[str],
    *,
    field: str | None,
    confidence: str,
    require_all: bool,
    context: Path,
    out_dir: Path,
) -> tuple[int, str]:
    """Combine the sources' results into ``out_dir/result.json``; return (exit code, human summary).

    Exit 0 when a value was produced; 1 when no source was usable, ``require_all`` is set and a source was
    left out, or (weighted) the total weight is 0. ``result.json`` is written in every case, with ``used``,
    ``left_out`` and, on failure, ``error``. Blocking file I/O.
    """
    if field is None and strategy is Strategy.WEIGHTED:
        field = DEFAULT_SCORE_FIELD
    used, left_out, outcome = _combine(
        strategy, sources, field=field or "", confidence=confidence, require_all=require_all, context=context
    )
    result: dict[str, JSON] = {
        "strategy": strategy.value,
        **outcome.result,
        "used": [u.source for u in used],
        "left_out": [{"source": s, "reason": r} for s, r in left_out],
    }
    lines = list(outcome.lines)
    if outcome.error is not None:
        result["error"] = outcome.error
        lines.insert(0, f"aggregate ({strategy.value}) failed: {outcome.error}")
    lines += [f"left out {s}: {r}" for s, r in left_out]
    path = out_dir / RESULT_FILE
    _write_atomically(path, result)
    lines.append(f"wrote {path}")
    return (0 if outcome.error is None else 1), "\n".join(lines)
