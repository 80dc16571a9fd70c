"""Which preset launches an agent: the built-in presets by name, and third-party ones.

A package adds presets through the entry point group ``agentsup.presets``: the entry point's name is the
preset's name and its object is a class (or any callable) that takes no arguments and returns the preset,
either a ``Preset`` (argv and environment only) or a ``CLIPreset`` (an agent CLI). Built-in names win over
entry points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from agentsup.agents.aggregate import AggregatePreset
from agentsup.agents.aider import AiderPreset
from agentsup.agents.base import Preset
from agentsup.agents.claude import ClaudePreset
from agentsup.agents.cli import CLIPreset
from agentsup.agents.codex import CodexPreset
from agentsup.agents.gemini import GeminiPreset
from agentsup.agents.shell import ShellPreset
from agentsup.plan import AgentSpec

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "agentsup.presets"

AnyPreset = Preset | CLIPreset

BUILT_IN: dict[str, Callable[[], AnyPreset]] = {
    "shell": ShellPreset,
    "claude": ClaudePreset,
    "codex": CodexPreset,
    "gemini": GeminiPreset,
    "aider": AiderPreset,
}


class PresetError(Exception):
    """No such preset, or a third-party preset that cannot be loaded; the message says which and why."""


def preset_for(spec: AgentSpec) -> Preset:
    """The preset that launches ``spec``: the aggregate preset for an agent with ``aggregate`` set, else
    the shell preset."""
    if spec.aggregate is not None:
        return AggregatePreset()
    return ShellPreset()


def preset_names() -> list[str]:
    """Every preset name a plan may use: the built-in ones, then the entry points' in name order."""
    names = list(BUILT_IN)
    names += sorted({ep.name for ep in _entry_points()} - set(BUILT_IN))
    return names


def preset_named(name: str) -> AnyPreset:
    """The preset called ``name``, built in or from an installed package's entry point."""
    factory = BUILT_IN.get(name)
    if factory is not None:
        return factory()
    found = [ep for ep in _entry_points() if ep.name == name]
    if not found:
        known = ", ".join(f'"{n}"' for n in preset_names())
        raise PresetError(f'unknown preset "{name}" (known: {known})')
    if len({ep.value for ep in found}) > 1:
        sources = ", ".join(sorted({ep.value for ep in found}))
        raise PresetError(f'preset "{name}" is defined by more than one entry point: {sources}')
    return _load(found[0])


def cli_preset(name: str) -> CLIPreset:
    """The agent-CLI preset called ``name``; PresetError when it is missing or not an agent CLI."""
    preset = preset_named(name)
    if not isinstance(preset, CLIPreset):
        raise PresetError(f'preset "{name}" is not an agent CLI preset (it has no read_screen, judge, …)')
    return preset


def _entry_points() -> list[EntryPoint]:
    from importlib.metadata import entry_points  # noqa: PLC0415 -- 15 ms, and read only for a plugin's name

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _load(ep: EntryPoint) -> AnyPreset:
    where = f'preset "{ep.name}" ({ep.value}'
    if ep.dist is not None:
        where += f" from {ep.dist.name} {ep.dist.version}"
    where += ")"
    try:
        factory = ep.load()
    except (ImportError, AttributeError) as e:
        raise PresetError(f"{where} cannot be imported: {e}") from e
    if not callable(factory):
        raise PresetError(f"{where} is not a class or function")
    made: object = factory()
    if isinstance(made, CLIPreset):
        return made
    if not callable(getattr(made, "launch", None)) or not isinstance(getattr(made, "name", None), str):
        raise PresetError(f"{where} made {type(made).__name__}, which has no name and launch()")
    return cast(Preset, made)  # checked just above: a name and a launch method
