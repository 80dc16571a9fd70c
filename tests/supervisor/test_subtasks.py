"""A master's subtasks file: both spellings load; every problem of a bad file is reported, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsup.supervisor.subtasks import Subtask, SubtaskError, load_subtasks

WORKERS = ("test", "lint", "build")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subtasks.json"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path, max_subtasks: int = 1000) -> list[str]:
    with pytest.raises(SubtaskError) as info:
        load_subtasks(path, WORKERS, max_subtasks)
    assert str(info.value) == "\n".join(info.value.problems)
    assert info.value.path == path
    return list(info.value.problems)


GOOD = [
    {"id": "unit", "worker": "test", "input": {"files": ["a.py", "b.py"], "n": 1.5}},
    {"id": "style", "worker": "lint"},
    {"id": "pkg-1_x", "worker": "build", "input": "text", "after": ["unit", "style"]},
    {"id": "0", "worker": "test", "input": None, "after": []},
]
EXPECTED = (
    Subtask("unit", "test", {"files": ["a.py", "b.py"], "n": 1.5}, ()),
    Subtask("style", "lint", None, ()),
    Subtask("pkg-1_x", "build", "text", ("unit", "style")),
    Subtask("0", "test", None, ()),
)


@pytest.mark.parametrize("spelling", ["list", "object"])
def test_good_file_both_spellings(spelling: str, tmp_path: Path) -> None:
    data = GOOD if spelling == "list" else {"subtasks": GOOD}
    path = _write(tmp_path, json.dumps(data, indent=2))
    assert load_subtasks(path, WORKERS) == EXPECTED


@pytest.mark.parametrize("text", ["[]", '{"subtasks": []}'])
def test_no_subtasks_is_fine(text: str, tmp_path: Path) -> None:
    assert load_subtasks(_write(tmp_path, text), WORKERS) == ()


def test_dependencies_in_any_order_and_a_diamond_are_fine(tmp_path: Path) -> None:
    data = [
        {"id": "join", "worker": "build", "after": ["left", "right"]},
        {"id": "left", "worker": "test", "after": ["root"]},
        {"id": "right", "worker": "lint", "after": ["root"]},
        {"id": "root", "worker": "build"},
    ]
    loaded = load_subtasks(_write(tmp_path, json.dumps(data)), WORKERS)
    assert [(s.id, s.after) for s in loaded] == [
        ("join", ("left", "right")),
        ("left", ("root",)),
        ("right", ("root",)),
        ("root", ()),
    ]


def test_a_long_chain_loads(tmp_path: Path) -> None:
    data = [{"id": f"s{i}", "worker": "test", "after": [f"s{i + 1}"] if i < 999 else []} for i in range(1000)]
    assert len(load_subtasks(_write(tmp_path, json.dumps(data)), WORKERS)) == 1000


def test_a_long_cycle_is_found(tmp_path: Path) -> None:
    data = [{"id": f"s{i}", "worker": "test", "after": [f"s{(i + 1) % 1000}"]} for i in range(1000)]
    [problem] = _problems(_write(tmp_path, json.dumps(data)))
    chain = " → ".join([f"s{i}" for i in range(1000)] + ["s0"])
    assert problem == f'subtasks[0] (id "s0"): dependency cycle {chain}'


def test_missing_file_says_the_master_did_not_write_it(tmp_path: Path) -> None:
    path = tmp_path / "out" / "subtasks.json"
    assert _problems(path) == [f"{path}: no subtasks file: the master did not write it"]


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{tmp_path}: cannot read the subtasks file: ")


def test_invalid_utf8_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "subtasks.json"
    path.write_bytes(b'[{"id": "\xff"}]')
    [problem] = _problems(path)
    assert problem.startswith(f"{path}: cannot read the subtasks file: ")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            '[{"id": "a", "worker": "test"},\n {"id": "b" "worker": "lint"}]',
            "2:13: invalid JSON: Expecting ','",
        ),
        ("", "1:1: invalid JSON: Expecting value"),
        ('[{"id": "a", "worker": "test"}', "1:31: invalid JSON: Expecting ',' delimiter"),
        ("[1] [2]", "1:5: invalid JSON: Extra data"),
    ],
)
def test_invalid_json_has_line_and_column(text: str, where: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    [problem] = _problems(path)
    assert problem.startswith(f"{path}:{where}")


def test_nan_is_not_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '[{"id": "a", "worker": "test", "input": NaN}]')
    assert _problems(path) == [f"{path}: invalid JSON: NaN is not JSON (numbers must be finite)"]


def test_too_many_subtasks(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps([{"id": f"s{i}", "worker": "test"} for i in range(4)]))
    assert _problems(path, max_subtasks=3) == [f"{path}: 4 subtasks, more than the limit of 3"]
    assert len(load_subtasks(path, WORKERS, max_subtasks=4)) == 4


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        ("x", ['{path}: expected a list of subtasks or {{"subtasks": [...]}}, got a string']),
        (None, ['{path}: expected a list of subtasks or {{"subtasks": [...]}}, got null']),
        ({}, ['{path}: missing "subtasks": expected {{"subtasks": [...]}} or a list']),
        ({"subtasks": {"a": 1}}, ['{path}: "subtasks" must be a list, got an object']),
        (
            {"subtasks": [], "workers": 1, "note": "x"},
            [
                '{path}: unknown top-level key "workers" (only "subtasks")',
                '{path}: unknown top-level key "note" (only "subtasks")',
            ],
        ),
        (
            {"tasks": [], "x": 1},
            [
                '{path}: missing "subtasks": expected {{"subtasks": [...]}} or a list',
                '{path}: unknown top-level key "tasks" (only "subtasks")',
                '{path}: unknown top-level key "x" (only "subtasks")',
            ],
        ),
    ],
)
def test_bad_top_level(data: object, problems: list[str], tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(data))
    assert _problems(path) == [p.format(path=path) for p in problems]


BAD_SUBTASKS: list[tuple[str, list[object], list[str]]] = [
    (
        "unknown worker with a suggestion",
        [{"id": "a", "worker": "lint"}, {"id": "b", "worker": "lint"}, {"id": "tests", "worker": "tester"}],
        ['subtasks[2] (id "tests"): unknown worker "tester" — did you mean "test"?'],
    ),
    (
        "unknown worker without a suggestion",
        [{"id": "a", "worker": "deploy-to-prod"}],
        ['subtasks[0] (id "a"): unknown worker "deploy-to-prod" (workers: build, lint, test)'],
    ),
    (
        "not objects",
        [1, "a", [], None, True],
        [
            'subtasks[0]: expected an object {"id": ..., "worker": ...}, got a number',
            'subtasks[1]: expected an object {"id": ..., "worker": ...}, got a string',
            'subtasks[2]: expected an object {"id": ..., "worker": ...}, got a list',
            'subtasks[3]: expected an object {"id": ..., "worker": ...}, got null',
            'subtasks[4]: expected an object {"id": ..., "worker": ...}, got a boolean',
        ],
    ),
    (
        "missing id and worker",
        [{}, {"input": 1}],
        [
            'subtasks[0]: missing "id"',
            'subtasks[0]: missing "worker"',
            'subtasks[1]: missing "id"',
            'subtasks[1]: missing "worker"',
        ],
    ),
    (
        "id and worker of the wrong type",
        [{"id": 7, "worker": ["test"]}, {"id": None, "worker": None}],
        [
            'subtasks[0]: "id" must be a string, got a number',
            'subtasks[0]: "worker" must be a string, got a list',
            'subtasks[1]: "id" must be a string, got null',
            'subtasks[1]: "worker" must be a string, got null',
        ],
    ),
    (
        "invalid ids",
        [
            {"id": "", "worker": "test"},
            {"id": "-a", "worker": "test"},
            {"id": "a b", "worker": "test"},
            {"id": "a.b", "worker": "test"},
            {"id": "x" * 65, "worker": "test"},
            {"id": "ü", "worker": "test"},
            {"id": "x" * 64, "worker": "test"},
        ],
        [
            f"subtasks[{i}]: invalid id {json.dumps(bad)}: use 1-64 letters, digits, _ and -, "
            "starting with a letter or digit"
            for i, bad in enumerate(["", "-a", "a b", "a.b", "x" * 65, "ü"])
        ],
    ),
    (
        "duplicate ids",
        [{"id": "a", "worker": "test"}, {"id": "b", "worker": "test"}, {"id": "a", "worker": "lint"}],
        ['subtasks[2] (id "a"): duplicate id "a" (first at subtasks[0])'],
    ),
    (
        "unknown keys",
        [{"id": "a", "worker": "test", "inptu": 1, "after": [], "priority": 2}],
        [
            'subtasks[0] (id "a"): unknown key "inptu" — did you mean "input"?',
            'subtasks[0] (id "a"): unknown key "priority"',
        ],
    ),
    (
        "after of the wrong shape",
        [
            {"id": "a", "worker": "test", "after": "b"},
            {"id": "b", "worker": "test", "after": ["a", 3, None]},
            {"id": "c", "worker": "test", "after": {"a": 1}},
        ],
        [
            'subtasks[0] (id "a"): "after" must be a list of ids, got a string',
            'subtasks[1] (id "b"): after[1] must be an id (a string), got a number',
            'subtasks[1] (id "b"): after[2] must be an id (a string), got null',
            'subtasks[2] (id "c"): "after" must be a list of ids, got an object',
        ],
    ),
    (
        "after: unknown, self, twice",
        [
            {"id": "build", "worker": "build"},
            {"id": "unit", "worker": "test", "after": ["buld", "nothing-like-it", "unit", "build", "build"]},
        ],
        [
            'subtasks[1] (id "unit"): after[0]: unknown id "buld" — did you mean "build"?',
            'subtasks[1] (id "unit"): after[1]: unknown id "nothing-like-it"',
            'subtasks[1] (id "unit"): after[2]: subtask "unit" cannot run after itself',
            'subtasks[1] (id "unit"): after[4]: "build" is listed twice',
        ],
    ),
    (
        "two-cycle",
        [{"id": "a", "worker": "test", "after": ["b"]}, {"id": "b", "worker": "test", "after": ["a"]}],
        ['subtasks[0] (id "a"): dependency cycle a → b → a'],
    ),
    (
        "cycles, each reported once, from its first subtask, shortest way round",
        [
            {"id": "free", "worker": "test"},
            {"id": "x", "worker": "test", "after": ["free", "y"]},
            {"id": "p", "worker": "lint", "after": ["q"]},
            {"id": "y", "worker": "test", "after": ["z", "x"]},
            {"id": "z", "worker": "test", "after": ["x"]},
            {"id": "q", "worker": "lint", "after": ["r"]},
            {"id": "r", "worker": "lint", "after": ["p"]},
            {"id": "tail", "worker": "lint", "after": ["x"]},
        ],
        [
            'subtasks[1] (id "x"): dependency cycle x → y → x',
            'subtasks[2] (id "p"): dependency cycle p → q → r → p',
        ],
    ),
    (
        "the shortest way round",
        [
            {"id": "a", "worker": "test", "after": ["b", "c"]},
            {"id": "b", "worker": "test", "after": ["c"]},
            {"id": "c", "worker": "test", "after": ["a"]},
        ],
        ['subtasks[0] (id "a"): dependency cycle a → c → a'],
    ),
    (
        "self-dependency is no cycle of its own",
        [{"id": "a", "worker": "test", "after": ["a", "a"]}],
        [
            'subtasks[0] (id "a"): after[0]: subtask "a" cannot run after itself',
            'subtasks[0] (id "a"): after[1]: subtask "a" cannot run after itself',
        ],
    ),
    (
        "problems in file order, several kinds at once",
        [
            {"id": "a", "worker": "tst", "after": ["b"]},
            {"id": "b", "worker": "test", "after": ["a", "zz"], "extra": True},
            {"id": "a", "worker": "lint"},
            {"worker": "test"},
        ],
        [
            'subtasks[0] (id "a"): unknown worker "tst" — did you mean "test"?',
            'subtasks[0] (id "a"): dependency cycle a → b → a',
            'subtasks[1] (id "b"): unknown key "extra"',
            'subtasks[1] (id "b"): after[1]: unknown id "zz"',
            'subtasks[2] (id "a"): duplicate id "a" (first at subtasks[0])',
            'subtasks[3]: missing "id"',
        ],
    ),
]


@pytest.mark.parametrize(
    ("data", "problems"), [(d, p) for _, d, p in BAD_SUBTASKS], ids=[n for n, _, _ in BAD_SUBTASKS]
)
@pytest.mark.parametrize("spelling", ["list", "object"])
def test_bad_subtasks(data: list[object], problems: list[str], spelling: str, tmp_path: Path) -> None:
    text = json.dumps(data if spelling == "list" else {"subtasks": data})
    assert _problems(_write(tmp_path, text)) == problems


def test_no_workers_defined(tmp_path: Path) -> None:
    path = _write(tmp_path, '[{"id": "a", "worker": "test"}]')
    with pytest.raises(SubtaskError) as info:
        load_subtasks(path, ())
    assert info.value.problems == ('subtasks[0] (id "a"): unknown worker "test" (workers: none are defined)',)
