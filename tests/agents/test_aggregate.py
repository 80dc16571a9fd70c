"""The aggregate agent: its launch argv, and each strategy over real result files and a real context file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from agentsup.agents import AggregatePreset, ShellPreset, preset_for, run_aggregate
from agentsup.plan import AgentSpec
from agentsup.plan.model import Aggregate, Strategy
from agentsup.supervisor.events import JSON

AGG = "agg"
MISSING = object()  # a source that wrote no result.json


class Run:
    """Upstream agents' output directories, and a context file for ``agg`` in the shape the engine writes
    (agentsup/supervisor/agentfiles.py: ``{"upstreams": {NAME: {"state": ..., "out_dir": ..., ...}}}``)."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "run"
        self.upstreams: dict[str, dict[str, JSON]] = {}

    def out_dir(self, name: str) -> Path:
        return self.root / "agents" / name / "out"

    def source(
        self, name: str, result: object = MISSING, *, state: str = "succeeded", raw: bool = False
    ) -> None:
        out = self.out_dir(name)
        out.mkdir(parents=True)
        if result is not MISSING:
            text = result if raw and isinstance(result, str) else json.dumps(result)
            (out / "result.json").write_text(text, encoding="utf-8", errors="surrogateescape")
        self.upstreams[name] = {
            "name": name,
            "state": state,
            "exit_code": 0 if state == "succeeded" else 1,
            "duration": 0.5,
            "out_dir": str(out),
            "files": ["result.json"] if result is not MISSING else [],
        }

    def aggregate(
        self,
        strategy: Strategy,
        sources: list[str] | None = None,
        *,
        field: str | None = None,
        confidence: str = "confidence",
        require_all: bool = False,
    ) -> tuple[int, str, dict[str, JSON]]:
        context = self.root / "agents" / AGG / "context.json"
        context.parent.mkdir(parents=True, exist_ok=True)
        context.write_text(json.dumps({"agent": AGG, "attempt": 1, "upstreams": self.upstreams}))
        code, summary = run_aggregate(
            strategy,
            list(self.upstreams) if sources is None else sources,
            field=field,
            confidence=confidence,
            require_all=require_all,
            context=context,
            out_dir=self.out_dir(AGG),
        )
        return code, summary, self.result()

    def result(self) -> dict[str, JSON]:
        data = json.loads((self.out_dir(AGG) / "result.json").read_text())
        assert isinstance(data, dict)
        return data


def _objects(value: JSON) -> list[dict[str, JSON]]:
    assert isinstance(value, list)
    assert all(isinstance(x, dict) for x in value)
    return [x for x in value if isinstance(x, dict)]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


# --- the preset ---------------------------------------------------------------------------------------


CLI = (sys.executable, "-m", "agentsup", "aggregate")


def _spec(agg: Aggregate, **env: str) -> AgentSpec:
    return AgentSpec(name="combine", aggregate=agg, env=MappingProxyType(env))


def test_preset_argv_with_every_option() -> None:
    agg = Aggregate(("a", "b-2", "c_3"), Strategy.WEIGHTED, field="points", confidence="w", require_all=True)
    launch = AggregatePreset().launch(_spec(agg), {})
    assert launch.argv == (
        *CLI, "--strategy", "weighted", "--field", "points", "--confidence", "w", "--require-all",
        "a", "b-2", "c_3",
    )  # fmt: skip


def test_preset_argv_with_defaults() -> None:
    launch = AggregatePreset().launch(_spec(Aggregate(("x",), Strategy.FUSION)), {})
    assert launch.argv == (*CLI, "--strategy", "fusion", "--confidence", "confidence", "x")


def test_preset_env_merges_with_agentsup_variables_winning() -> None:
    spec = _spec(Aggregate(("x",), Strategy.FUSION), MODE="fast", AGENTSUP_OUT="/plan/override")
    launch = AggregatePreset().launch(spec, {"AGENTSUP_OUT": "/run/out", "AGENTSUP_AGENT": "combine"})
    assert dict(launch.env) == {"MODE": "fast", "AGENTSUP_OUT": "/run/out", "AGENTSUP_AGENT": "combine"}


def test_preset_refuses_an_agent_without_aggregate() -> None:
    with pytest.raises(ValueError, match="no aggregate table"):
        AggregatePreset().launch(AgentSpec(name="a", cmd="true"), {})


def test_registry_picks_the_preset() -> None:
    assert isinstance(preset_for(_spec(Aggregate(("x",), Strategy.VOTE, field="f"))), AggregatePreset)
    assert isinstance(preset_for(AgentSpec(name="a", cmd="true")), ShellPreset)
    assert AggregatePreset.name == "aggregate"


# --- vote -----------------------------------------------------------------------------------------------


def test_vote_majority_and_tally(run: Run) -> None:
    run.source("a", {"verdict": "reject"})
    run.source("b", {"verdict": "approve", "why": "fine"})
    run.source("c", {"verdict": "approve"})
    run.source("d", {"verdict": {"x": 1, "y": [1, 2]}})
    run.source("e", {"verdict": {"y": [1, 2], "x": 1}})  # the same value: canonical JSON, keys sorted
    run.source("f", {"verdict": "approve"})
    code, summary, result = run.aggregate(Strategy.VOTE, field="verdict")
    assert code == 0
    assert result == {
        "strategy": "vote",
        "field": "verdict",
        "value": "approve",
        "tally": [
            {"value": "approve", "count": 3, "sources": ["b", "c", "f"]},
            {"value": {"x": 1, "y": [1, 2]}, "count": 2, "sources": ["d", "e"]},
            {"value": "reject", "count": 1, "sources": ["a"]},
        ],
        "tie": False,
        "tied": [],
        "used": ["a", "b", "c", "d", "e", "f"],
        "left_out": [],
    }
    assert summary.splitlines()[0] == 'vote on "verdict": "approve" with 3 of 6 votes'


def test_vote_tie_picks_the_first_in_source_order(run: Run) -> None:
    run.source("a", {"n": 2})
    run.source("b", {"n": 1})
    run.source("c", {"n": 1})
    run.source("d", {"n": 2})
    run.source("e", {"n": 3})
    code, summary, result = run.aggregate(Strategy.VOTE, field="n")
    assert code == 0
    assert result["value"] == 2
    assert result["tie"] is True
    assert result["tied"] == [2, 1]
    assert result["tally"] == [
        {"value": 2, "count": 2, "sources": ["a", "d"]},
        {"value": 1, "count": 2, "sources": ["b", "c"]},
        {"value": 3, "count": 1, "sources": ["e"]},
    ]
    assert "a tie between 2, 1: the first in source order wins" in summary


def test_vote_distinguishes_json_types(run: Run) -> None:
    run.source("a", {"v": 1})
    run.source("b", {"v": "1"})
    run.source("c", {"v": True})
    run.source("d", {"v": None})
    run.source("e", {"v": True})
    _, _, result = run.aggregate(Strategy.VOTE, field="v")
    assert result["value"] is True
    assert [t["value"] for t in _objects(result["tally"])] == [True, 1, "1", None]


def test_vote_leaves_out_what_it_cannot_use(run: Run) -> None:
    run.source("ok", {"v": "x"})
    run.source("crashed", {"v": "y"}, state="failed")
    run.source("silent")
    run.source("garbled", '{"v": "y",\n  oops}', raw=True)
    run.source("listy", ["v"])
    run.source("other", {"w": "y"})
    run.source("nan", '{"v": NaN}', raw=True)
    run.source("binary", "\udcff", raw=True)
    code, summary, result = run.aggregate(Strategy.VOTE, [*run.upstreams, "stranger"], field="v")
    out = run.out_dir
    assert code == 0
    assert result["value"] == "x"
    assert result["used"] == ["ok"]
    assert result["left_out"] == [
        {"source": "crashed", "reason": 'it did not succeed (state "failed")'},
        {"source": "silent", "reason": f"it wrote no result.json ({out('silent') / 'result.json'})"},
        {
            "source": "garbled",
            "reason": f"{out('garbled') / 'result.json'} is not valid JSON: line 2 column 3: "
            "Expecting property name enclosed in double quotes",
        },
        {"source": "listy", "reason": "result.json is not an object"},
        {"source": "other", "reason": 'result.json has no field "v"'},
        {"source": "nan", "reason": f"{out('nan') / 'result.json'} is not valid JSON: NaN is not JSON"},
        {
            "source": "binary",
            "reason": f"{out('binary') / 'result.json'} is not valid JSON: 'utf-8' codec can't decode byte "
            "0xff in position 0: invalid start byte",
        },
        {"source": "stranger", "reason": "not in the context file (is it an upstream of this agent?)"},
    ]
    assert 'left out crashed: it did not succeed (state "failed")' in summary.splitlines()


def test_vote_require_all_fails_when_a_source_is_left_out(run: Run) -> None:
    run.source("a", {"v": 1})
    run.source("b", {"v": 1}, state="lost")
    code, summary, result = run.aggregate(Strategy.VOTE, field="v", require_all=True)
    assert code == 1
    assert result == {
        "strategy": "vote",
        "value": None,
        "used": ["a"],
        "left_out": [{"source": "b", "reason": 'it did not succeed (state "lost")'}],
        "error": "require_all is set and 1 of 2 sources were left out",
    }
    assert (
        summary.splitlines()[0]
        == "aggregate (vote) failed: require_all is set and 1 of 2 sources were left out"
    )


def test_vote_require_all_passes_when_every_source_is_used(run: Run) -> None:
    run.source("a", {"v": 1})
    run.source("b", {"v": 2})
    code, _, result = run.aggregate(Strategy.VOTE, field="v", require_all=True)
    assert (code, result["value"], result["tie"]) == (0, 1, True)


def test_vote_without_a_field_fails(run: Run) -> None:
    run.source("a", {"v": 1})
    code, summary, result = run.aggregate(Strategy.VOTE)
    assert code == 1
    assert result["error"] == "vote needs a field to vote on (--field)"
    assert summary.startswith("aggregate (vote) failed: vote needs a field")


# --- weighted -------------------------------------------------------------------------------------------


def test_weighted_average(run: Run) -> None:
    run.source("a", {"score": 8, "confidence": 0.5})
    run.source("b", {"score": 4.0, "confidence": 1.5, "extra": "ignored"})
    run.source("c", {"score": 100, "confidence": 0})
    code, summary, result = run.aggregate(Strategy.WEIGHTED)
    assert code == 0
    assert result == {
        "strategy": "weighted",
        "field": "score",
        "confidence": "confidence",
        "value": 5.0,  # (8*0.5 + 4*1.5 + 100*0) / 2
        "total_weight": 2.0,
        "zero_weight": False,
        "contributions": [
            {"source": "a", "score": 8.0, "confidence": 0.5, "contribution": 4.0},
            {"source": "b", "score": 4.0, "confidence": 1.5, "contribution": 6.0},
            {"source": "c", "score": 100.0, "confidence": 0.0, "contribution": 0.0},
        ],
        "used": ["a", "b", "c"],
        "left_out": [],
    }
    assert summary.splitlines()[0] == 'weighted "score": 5 (total weight 2)'


def test_weighted_named_fields(run: Run) -> None:
    run.source("a", {"points": 1, "w": 3})
    run.source("b", {"points": 5, "w": 1})
    code, _, result = run.aggregate(Strategy.WEIGHTED, field="points", confidence="w")
    assert (code, result["value"], result["field"], result["confidence"]) == (0, 2.0, "points", "w")


def test_weighted_leaves_out_non_numbers_and_negative_weights(run: Run) -> None:
    run.source("good", {"score": 3, "confidence": 1})
    run.source("boolean", {"score": True, "confidence": 1})
    run.source("text", {"score": 1, "confidence": "high"})
    run.source("negative", {"score": 1, "confidence": -0.5})
    run.source("unweighted", {"score": 1})
    run.source("huge", '{"score": 1e400, "confidence": 1}', raw=True)
    run.source("null", {"score": None, "confidence": 1})
    code, _, result = run.aggregate(Strategy.WEIGHTED)
    assert (code, result["value"], result["used"]) == (0, 3.0, ["good"])
    assert result["left_out"] == [
        {"source": "boolean", "reason": '"score" is not a number (true)'},
        {"source": "text", "reason": '"confidence" is not a number ("high")'},
        {"source": "negative", "reason": '"confidence" is negative'},
        {"source": "unweighted", "reason": 'result.json has no field "confidence"'},
        {"source": "huge", "reason": '"score" is too large (Infinity)'},
        {"source": "null", "reason": '"score" is not a number (null)'},
    ]


def test_unreadable_and_odd_sources_are_left_out(run: Run) -> None:
    run.source("good", {"score": 3, "confidence": 1})
    run.source("big-int", '{"score": 1' + "0" * 400 + ', "confidence": 1}', raw=True)
    run.source("deep", "[" * 200_000 + "]" * 200_000, raw=True)
    run.source("dir")
    (run.out_dir("dir") / "result.json").mkdir()
    run.upstreams["no-out"] = {"name": "no-out", "state": "succeeded"}
    code, _, result = run.aggregate(Strategy.WEIGHTED)
    assert (code, result["value"], result["used"]) == (0, 3.0, ["good"])
    reasons = {x["source"]: str(x["reason"]) for x in _objects(result["left_out"])}
    assert reasons["big-int"] == '"score" is too large (1' + "0" * 400 + ")"
    assert reasons["deep"] == f"{run.out_dir('deep') / 'result.json'} is not valid JSON: nested too deeply"
    assert reasons["dir"].startswith(f"cannot read {run.out_dir('dir') / 'result.json'}: [Errno 21]")
    assert reasons["no-out"] == "the context file gives no output directory"
    assert list(reasons) == ["big-int", "deep", "dir", "no-out"]


def test_weighted_zero_total_weight_is_reported_not_divided(run: Run) -> None:
    run.source("a", {"score": 7, "confidence": 0})
    run.source("b", {"score": 9, "confidence": 0.0})
    code, summary, result = run.aggregate(Strategy.WEIGHTED)
    assert code == 1
    assert result["value"] is None
    assert result["zero_weight"] is True
    assert result["total_weight"] == 0.0
    assert result["used"] == ["a", "b"]
    error = 'the total weight ("confidence") is 0, so there is no weighted "score"'
    assert result["error"] == error
    assert summary.splitlines()[0] == f"aggregate (weighted) failed: {error}"


def test_weighted_overflow_is_reported(run: Run) -> None:
    run.source("a", {"score": 1e300, "confidence": 1e300})
    code, _, result = run.aggregate(Strategy.WEIGHTED)
    assert (code, result["value"], result["error"]) == (1, None, "the weighted sum overflows")


# --- fusion ---------------------------------------------------------------------------------------------


def test_fusion_merges_and_lists_conflicts(run: Run) -> None:
    run.source("a", {"title": "A", "tags": ["x"], "meta": {"k": 1, "j": 2}})
    run.source("b", {"title": "B", "size": 3, "meta": {"j": 2, "k": 1}})
    run.source("c", {"size": 4, "title": "A", "only_c": None})
    code, summary, result = run.aggregate(Strategy.FUSION)
    assert code == 0
    assert result == {
        "strategy": "fusion",
        "value": {"title": "A", "tags": ["x"], "meta": {"k": 1, "j": 2}, "size": 3, "only_c": None},
        "conflicts": {
            "title": [
                {"source": "a", "value": "A"},
                {"source": "b", "value": "B"},
                {"source": "c", "value": "A"},
            ],
            "size": [{"source": "b", "value": 3}, {"source": "c", "value": 4}],
        },
        "used": ["a", "b", "c"],
        "left_out": [],
    }
    assert summary.splitlines()[:3] == [
        "fusion of 3 results: 5 keys, 2 in conflict (the first source's value kept)",
        'conflict "title": a "A"; b "B"; c "A"',
        'conflict "size": b 3; c 4',
    ]


def test_fusion_leaves_out_non_objects(run: Run) -> None:
    run.source("a", [1, 2])
    run.source("b", {"k": 1})
    run.source("c", "text")
    code, _, result = run.aggregate(Strategy.FUSION)
    assert (code, result["value"], result["conflicts"]) == (0, {"k": 1}, {})
    assert result["left_out"] == [
        {"source": "a", "reason": "result.json is not an object"},
        {"source": "c", "reason": "result.json is not an object"},
    ]


# --- failures of the whole aggregate --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
def test_no_usable_source_fails(strategy: Strategy, run: Run) -> None:
    run.source("a", state="failed")
    run.source("b")
    code, summary, result = run.aggregate(strategy, field="v")
    assert code == 1
    assert result["value"] is None
    assert result["used"] == []
    assert [x["source"] for x in _objects(result["left_out"])] == ["a", "b"]
    error = "no usable source: none of the 2 gave a usable result"
    assert result["error"] == error
    assert summary.splitlines()[0] == f"aggregate ({strategy.value}) failed: {error}"


def test_missing_context_fails(tmp_path: Path) -> None:
    ctx = tmp_path / "nope.json"
    code, summary = run_aggregate(
        Strategy.FUSION, ["a"], field=None, confidence="c", require_all=False, context=ctx, out_dir=tmp_path
    )
    assert code == 1
    assert summary.splitlines()[0] == f"aggregate (fusion) failed: no context file {ctx}"
    assert json.loads((tmp_path / "result.json").read_text())["error"] == f"no context file {ctx}"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{", "cannot read the context file {ctx}: line 1 column 2: Expecting property name"),
        ('{"upstreams": []}', 'the context file {ctx} has no "upstreams" object'),
        ("[]", 'the context file {ctx} has no "upstreams" object'),
    ],
)
def test_bad_context_fails(text: str, error: str, tmp_path: Path) -> None:
    ctx = tmp_path / "context.json"
    ctx.write_text(text)
    code, _ = run_aggregate(
        Strategy.FUSION, ["a"], field=None, confidence="c", require_all=False, context=ctx, out_dir=tmp_path
    )
    assert code == 1
    assert str(json.loads((tmp_path / "result.json").read_text())["error"]).startswith(error.format(ctx=ctx))


def test_result_is_replaced_atomically(run: Run) -> None:
    run.source("a", {"k": 1})
    out = run.out_dir(AGG)
    out.mkdir(parents=True)
    (out / "result.json").write_text("stale")
    code, summary, result = run.aggregate(Strategy.FUSION)
    assert (code, result["value"]) == (0, {"k": 1})
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]  # no temporary file left behind
    assert summary.splitlines()[-1] == f"wrote {out / 'result.json'}"
