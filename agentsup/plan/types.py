"""Value types of plan keys: each converts a raw TOML value (reporting what is wrong) and describes itself
as a JSON Schema fragment, so the validator and the schema come from one definition.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from agentsup.plan import templates
from agentsup.plan.durations import DURATION_PATTERN, parse_duration
from agentsup.plan.locate import KeyPath
from agentsup.plan.regexes import has_nested_repeat
from agentsup.plan.sizes import SIZE_PATTERN, parse_size

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

Report = Callable[[KeyPath, str], None]
"""Records one problem at a key path."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
NAME = re.compile(NAME_PATTERN)
NAME_RULE = '1 to 64 letters, digits, "_" or "-", starting with a letter or digit'
FILE_NAME_PATTERN = r"^(?!\.\.?$)[^/\\\x00]*[^/\\\x00\s][^/\\\x00]*$"


_KINDS: tuple[tuple[type, str], ...] = (
    (list, "an array"),
    (dict, "a table"),
    (dt.datetime, "a date-time"),  # before dt.date: a datetime is a date
    (dt.date, "a date"),
    (dt.time, "a time"),
)


def describe(value: object) -> str:
    """What a raw TOML value is, for "expected X, found Y" messages."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
        return f"{'an integer' if isinstance(value, int) else 'a float'} ({shown})"
    if isinstance(value, str):
        return f"a string ({quote(value)})"
    return next((noun for kind, noun in _KINDS if isinstance(value, kind)), f"a {type(value).__name__}")


def quote(text: str, limit: int = 40) -> str:
    """``text`` in double quotes, escaped and shortened for a one-line message."""
    if len(text) > limit:
        return json.dumps(text[: limit - 3], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` — did you mean "x"?`` when a candidate is close to ``word``, else empty."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" — did you mean {quote(close[0])}?" if close else ""


def unknown(what: str, name: str, known: Iterable[str], declare: str) -> str:
    """``unknown pool "gpu" — did you mean "gpus"?``, else ``unknown pool "gpu": declare it in [pools]``."""
    hint = did_you_mean(name, known)
    return f"unknown {what} {quote(name)}{hint or ': ' + declare}"


def wrong_type(expected: str, raw: object) -> str:
    return f"expected {expected}, found {describe(raw)}"


INT64 = range(-(2**63), 2**63)  # TOML integers; tomllib reads larger ones, which floats cannot hold


def outside_int64(raw: object, at: KeyPath, report: Report) -> bool:
    """Reports an integer TOML does not allow (and ``float()`` may not convert): over 64 bits."""
    if isinstance(raw, int) and raw not in INT64:
        report(at, f"{describe(raw)} is outside TOML's 64-bit integer range")
        return True
    return False


class ValueType(ABC, Generic[T]):
    """Converts a raw value to ``T``; on failure reports every problem and returns None."""

    expected: str  # what a valid value is, e.g. "a positive integer"

    @abstractmethod
    def convert(self, raw: object, at: KeyPath, report: Report) -> T | None: ...

    @abstractmethod
    def schema(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Key(Generic[T]):
    """One key of a table: the single description the validator, the schema and the docs share."""

    name: str
    type: ValueType[T]
    description: str
    default: object = None  # JSON value shown as the schema's default; None when computed or absent
    required: bool = False

    def schema(self) -> dict[str, object]:
        out = {"description": self.description, **self.type.schema()}
        if self.default is not None:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class Table:
    keys: tuple[Key[Any], ...]
    exclusive: tuple[tuple[str, str], ...] = ()  # pairs of keys a table may not both set
    noun: str = "key"  # what an unknown entry is called in messages
    misplaced: tuple[tuple[str, str], ...] = ()  # (key, why it is not allowed here): known elsewhere

    def key(self, name: str) -> Key[Any] | None:
        return next((k for k in self.keys if k.name == name), None)


class Values:
    """The converted values of one table; ``has`` is true for every key the table set, valid or not."""

    def __init__(self) -> None:
        self._present: set[str] = set()
        self._converted: dict[str, object] = {}

    def set(self, key: Key[T], value: T | None) -> None:
        self._present.add(key.name)
        if value is not None:
            self._converted[key.name] = value

    def has(self, key: Key[Any]) -> bool:
        return key.name in self._present

    def get(self, key: Key[T]) -> T | None:
        # Invariant: set() stored a value converted by key.type, hence a T.
        return cast("T | None", self._converted.get(key.name))


class Text(ValueType[str]):
    def __init__(self, *, nonempty: bool = False) -> None:
        self.nonempty = nonempty
        self.expected = "a non-empty string" if nonempty else "a string"

    def convert(self, raw: object, at: KeyPath, report: Report) -> str | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if "\0" in raw:
            report(at, "contains a NUL character")
            return None
        if self.nonempty and not raw.strip():
            report(at, "must not be empty")
            return None
        return raw

    def schema(self) -> dict[str, object]:
        return {"type": "string", "pattern": r"\S"} if self.nonempty else {"type": "string"}


class Name(ValueType[str]):
    expected = "a name"

    def convert(self, raw: object, at: KeyPath, report: Report) -> str | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if not NAME.fullmatch(raw):
            report(at, f"invalid name {quote(raw)}: use {NAME_RULE}")
            return None
        return raw

    def schema(self) -> dict[str, object]:
        return {"type": "string", "pattern": NAME_PATTERN}


class Integer(ValueType[int]):
    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum
        if minimum == 1 and maximum is None:
            self.expected = "a positive integer"
        elif minimum == 0 and maximum is None:
            self.expected = "a non-negative integer"
        elif minimum is not None and maximum is not None:
            self.expected = f"an integer from {minimum} to {maximum}"
        else:
            self.expected = "an integer"

    def convert(self, raw: object, at: KeyPath, report: Report) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int):
            report(at, wrong_type(self.expected, raw))
            return None
        if outside_int64(raw, at, report):
            return None
        if (self.minimum is not None and raw < self.minimum) or (
            self.maximum is not None and raw > self.maximum
        ):
            report(at, f"expected {self.expected}, found {raw}")
            return None
        return raw

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Number(ValueType[float]):
    def __init__(self, minimum: float, maximum: float | None = None, *, above: bool = False) -> None:
        """``above``: the minimum itself is excluded."""
        self.minimum = minimum
        self.maximum = maximum
        self.above = above
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        self.expected = f"a number {'greater than' if above else 'at least'} {minimum:g}{upper}"

    def convert(self, raw: object, at: KeyPath, report: Report) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            report(at, wrong_type(self.expected, raw))
            return None
        if outside_int64(raw, at, report):
            return None
        low = raw <= self.minimum if self.above else raw < self.minimum
        if not math.isfinite(raw) or low or (self.maximum is not None and raw > self.maximum):
            report(at, f"expected {self.expected}, found {raw}")
            return None
        return float(raw)

    def schema(self) -> dict[str, object]:
        bound = "exclusiveMinimum" if self.above else "minimum"
        out: dict[str, object] = {"type": "number", bound: self.minimum}
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Duration(ValueType[float]):
    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive
        self.expected = "a duration"

    def convert(self, raw: object, at: KeyPath, report: Report) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            report(at, wrong_type('a duration (e.g. "30s", "10m", "1h30m" or a number of seconds)', raw))
            return None
        if outside_int64(raw, at, report):
            return None
        try:
            seconds = parse_duration(raw)
        except ValueError as e:
            report(at, str(e))
            return None
        if self.positive and seconds <= 0:
            report(at, f"must be greater than 0, found {quote(raw) if isinstance(raw, str) else raw}")
            return None
        return seconds

    def schema(self) -> dict[str, object]:
        number: dict[str, object] = {"type": "number", "minimum": 0}
        if self.positive:
            number = {"type": "number", "exclusiveMinimum": 0}
        return {"anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, number]}


class Size(ValueType[int]):
    """Bytes: an integer, or a string with a unit; never 0."""

    expected = 'a size (a number of bytes or a string like "500MB", "2GiB", "512k")'

    def convert(self, raw: object, at: KeyPath, report: Report) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            report(at, wrong_type(self.expected, raw))
            return None
        if outside_int64(raw, at, report):
            return None
        try:
            size = parse_size(raw)
        except ValueError as e:
            report(at, str(e))
            return None
        if size <= 0:
            report(at, f"must be greater than 0, found {quote(raw) if isinstance(raw, str) else raw}")
            return None
        return size

    def schema(self) -> dict[str, object]:
        return {"anyOf": [{"type": "string", "pattern": SIZE_PATTERN}, {"type": "integer", "minimum": 1}]}


class Boolean(ValueType[bool]):
    expected = "true or false"

    def convert(self, raw: object, at: KeyPath, report: Report) -> bool | None:
        if not isinstance(raw, bool):
            report(at, wrong_type(self.expected, raw))
            return None
        return raw

    def schema(self) -> dict[str, object]:
        return {"type": "boolean"}


class Template(Text):
    """A string with ``{{ path }}`` placeholders; only its syntax is checked here, its references by
    ``references.check_references``, which knows where the template appears. A template ``for_shell``
    (``cmd``) may place placeholders only where a shell-quoted value stays one word."""

    def __init__(self, *, nonempty: bool = False, for_shell: bool = False) -> None:
        super().__init__(nonempty=nonempty)
        self.for_shell = for_shell

    def convert(self, raw: object, at: KeyPath, report: Report) -> str | None:
        text = super().convert(raw, at, report)
        if text is None:
            return None
        try:
            templates.parse(text)
            unsafe = templates.shell_problems(text) if self.for_shell else []
        except templates.TemplateError as e:
            report(at, f"invalid template: {e} (at position {e.position})")
            return None
        for _, problem in unsafe:
            report(at, problem)
        return None if unsafe else text


class FileName(ValueType[str]):
    """A plain file name: no directory part, so it stays inside the directory it is looked up in."""

    expected = 'a file name, e.g. "subtasks.json"'

    def convert(self, raw: object, at: KeyPath, report: Report) -> str | None:
        text = Text(nonempty=True).convert(raw, at, report)
        if text is None:
            return None
        if "/" in text or "\\" in text or text in (".", ".."):
            report(at, f"expected a plain file name (no directory), found {quote(text)}")
            return None
        return text

    def schema(self) -> dict[str, object]:
        return {"type": "string", "pattern": FILE_NAME_PATTERN}


class Choice(ValueType[E]):
    def __init__(self, enum: type[E]) -> None:
        self.enum = enum
        self.expected = "one of " + ", ".join(quote(m.value) for m in enum)

    def convert(self, raw: object, at: KeyPath, report: Report) -> E | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        for member in self.enum:
            if member.value == raw:
                return member
        values = [m.value for m in self.enum]
        report(at, f"invalid value {quote(raw)}: expected {self.expected}{did_you_mean(raw, values)}")
        return None

    def schema(self) -> dict[str, object]:
        return {"type": "string", "enum": [m.value for m in self.enum]}


class Regex(ValueType[re.Pattern[str]]):
    expected = "a regular expression"

    def convert(self, raw: object, at: KeyPath, report: Report) -> re.Pattern[str] | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        return compile_regex(raw, at, report)

    def schema(self) -> dict[str, object]:
        return {"type": "string", "format": "regex"}


def compile_regex(source: str, at: KeyPath, report: Report) -> re.Pattern[str] | None:
    if not source:
        report(at, "empty regex: it would match every line")
        return None
    try:
        pattern = re.compile(source)
        hazard = has_nested_repeat(source)
    except (re.error, OverflowError) as e:
        report(at, f"invalid regex {quote(source)}: {e}")
        return None
    except RecursionError:
        report(at, f"invalid regex {quote(source)}: nested too deeply")
        return None
    if hazard:
        report(
            at,
            f"regex {quote(source)} repeats a repeat, as in (a+)+: on some lines matching would take "
            "exponential time and stall the supervisor; make the inner repeat possessive (a++) or atomic "
            "((?>a+)), or drop one of the two",
        )
        return None
    return pattern


class ArrayOf(ValueType[tuple[T, ...]]):
    """An array whose every item is checked; the array is None if any item is invalid, unless ``partial``:
    then it holds the valid items (for checks that need the whole plan to run on them still)."""

    def __init__(
        self,
        item: ValueType[T],
        *,
        nonempty: bool = False,
        expected: str | None = None,
        partial: bool = False,
    ) -> None:
        self.item = item
        self.nonempty = nonempty
        self.partial = partial
        self.expected = expected or f"a{' non-empty' if nonempty else 'n'} array of {_plural(item.expected)}"

    def convert(self, raw: object, at: KeyPath, report: Report) -> tuple[T, ...] | None:
        if not isinstance(raw, list):
            report(at, wrong_type(self.expected, raw))
            return None
        if self.nonempty and not raw:
            report(at, "must not be empty")
            return None
        items = [self.item.convert(v, (*at, i), report) for i, v in enumerate(raw)]
        valid = [v for v in items if v is not None]
        return tuple(valid) if self.partial or len(valid) == len(items) else None

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "array", "items": self.item.schema()}
        if self.nonempty:
            out["minItems"] = 1
        return out


_NOUN = re.compile(r"\b(string|integer|table|name)\b")


def _plural(expected: str) -> str:
    """``a non-empty string`` → ``non-empty strings``; ``an integer from 0 to 255`` → ``integers from…``."""
    for article in ("an ", "a "):
        if expected.startswith(article):
            return _NOUN.sub(r"\1s", expected.removeprefix(article), count=1)
    return expected


class Record(ValueType[T]):
    """A table with known keys, built into ``T`` once every key converted."""

    def __init__(self, table: Table, build: Callable[[Values, KeyPath, Report], T | None]) -> None:
        self.table = table
        self.build = build
        self.expected = "a table"

    def convert(self, raw: object, at: KeyPath, report: Report) -> T | None:
        values = convert_table(raw, self.table, at, report)
        return None if values is None else self.build(values, at, report)

    def schema(self) -> dict[str, object]:
        return table_schema(self.table)


def convert_table(raw: object, table: Table, at: KeyPath, report: Report) -> Values | None:
    """Converts every key of ``raw`` (reporting unknown, missing and invalid ones); None if not a table."""
    if not isinstance(raw, dict):
        report(at, wrong_type("a table", raw))
        return None
    values = Values()
    names = [k.name for k in table.keys]
    for name, value in raw.items():
        key = table.key(name)
        why = next((why for other, why in table.misplaced if other == name), None)
        if key is None and why is not None:
            report((*at, name), why)
            continue
        if key is None:
            noun = table.noun if isinstance(value, dict) else "key"
            report((*at, name), f"unknown {noun} {quote(name)}{did_you_mean(name, names)}")
            continue
        values.set(key, key.type.convert(value, (*at, name), report))
    for key in table.keys:
        if key.required and not values.has(key):
            report(at, f"missing required {table.noun} {quote(key.name)}")
    for first, second in table.exclusive:
        if first in raw and second in raw:
            report(at, f"set only one of {quote(first)} and {quote(second)}, not both")
    return values


def table_schema(table: Table) -> dict[str, object]:
    out: dict[str, object] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {k.name: k.schema() for k in table.keys},
    }
    required = [k.name for k in table.keys if k.required]
    if required:
        out["required"] = required
    if table.exclusive:
        out["allOf"] = [{"not": {"required": list(pair)}} for pair in table.exclusive]
    return out


def same(values: Values, at: KeyPath, report: Report) -> Values:
    """The build step of a Record whose caller reads the Values itself."""
    del at, report
    return values
