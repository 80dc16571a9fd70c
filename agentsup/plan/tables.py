"""Value types of tables whose keys the plan chooses: ``env``, ``[inputs]``, ``[pools]``, ``[agents]``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from agentsup.plan.locate import KeyPath
from agentsup.plan.types import (
    NAME,
    NAME_PATTERN,
    NAME_RULE,
    Integer,
    Report,
    Table,
    Values,
    ValueType,
    convert_table,
    outside_int64,
    quote,
    table_schema,
    wrong_type,
)

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_RULE = 'letters, digits and "_", not starting with a digit'


class StringTable(ValueType[Mapping[str, str]]):
    """Names → strings; numbers and booleans become strings as TOML writes them (``3``, ``0.5``, ``true``)."""

    def __init__(self, what: str, name_pattern: str, name_rule: str) -> None:
        self.what = what
        self.name_pattern = name_pattern
        self.name_rule = name_rule
        self._name = re.compile(name_pattern)
        self.expected = f"a table of {what}s"

    def convert(self, raw: object, at: KeyPath, report: Report) -> Mapping[str, str] | None:
        if not isinstance(raw, dict):
            report(at, wrong_type(self.expected, raw))
            return None
        out: dict[str, str] = {}  # the valid entries, so later checks still see them
        for name, value in raw.items():
            text = _scalar_text(value)
            if not self._name.fullmatch(name):
                report((*at, name), f"invalid {self.what} name {quote(name)}: use {self.name_rule}")
            elif outside_int64(value, (*at, name), report):
                continue
            elif text is None:
                report((*at, name), wrong_type("a string, number or boolean", value))
            elif "\0" in text:
                report((*at, name), "contains a NUL character")
            else:
                out[name] = text
        return MappingProxyType(out)

    def schema(self) -> dict[str, object]:
        return {
            "type": "object",
            "propertyNames": {"pattern": self.name_pattern},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        }


def _scalar_text(value: object) -> str | None:
    """The string a TOML scalar stands for, as TOML itself would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def env_table() -> StringTable:
    return StringTable("environment variable", ENV_NAME_PATTERN, ENV_NAME_RULE)


def inputs_table() -> StringTable:
    return StringTable("input", NAME_PATTERN, NAME_RULE)


class CountTable(ValueType[Mapping[str, int]]):
    """Names → positive integers (``[pools]``)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.expected = f"a table of {what}s"
        self._count = Integer(minimum=1)

    def convert(self, raw: object, at: KeyPath, report: Report) -> Mapping[str, int] | None:
        if not isinstance(raw, dict):
            report(at, wrong_type(self.expected, raw))
            return None
        out: dict[str, int] = {}
        for name, value in raw.items():
            if not NAME.fullmatch(name):
                report((*at, name), f"invalid {self.what} name {quote(name)}: use {NAME_RULE}")
            count = self._count.convert(value, (*at, name), report)
            if count is not None:
                out[name] = count
        return MappingProxyType(out)

    def schema(self) -> dict[str, object]:
        return {
            "type": "object",
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": self._count.schema(),
        }


class NamedTables(ValueType[Mapping[str, Values]]):
    """A table of named sub-tables (``[agents.NAME]``), in file order."""

    def __init__(self, table: Table, what: str, *, at_least_one: bool = True) -> None:
        self.table = table
        self.what = what
        self.at_least_one = at_least_one
        self.expected = f"a table of {what}s"

    def convert(self, raw: object, at: KeyPath, report: Report) -> Mapping[str, Values] | None:
        if not isinstance(raw, dict):
            report(at, wrong_type(self.expected, raw))
            return None
        if not raw and self.at_least_one:
            report(at, f"at least one {self.what} is required, e.g. [{'.'.join(map(str, at))}.NAME]")
            return None
        out: dict[str, Values] = {}
        for name, value in raw.items():
            if not NAME.fullmatch(name):
                report((*at, name), f"invalid {self.what} name {quote(name)}: use {NAME_RULE}")
            values = convert_table(value, self.table, (*at, name), report)
            if values is not None:
                out[name] = values
        return out

    def schema(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "object",
            "patternProperties": {NAME_PATTERN: table_schema(self.table)},
            "additionalProperties": False,
        }
        if self.at_least_one:
            out["minProperties"] = 1
        return out
