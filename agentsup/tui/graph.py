"""The run's dependency graph as text: agents in layers (an agent's layer is its longest path from a root),
each with its state mark and its upstreams (``← a, b``), dynamic workers indented under their master.

:func:`graph_lines` is a pure function of the plan and the records, so it is tested without a terminal;
it reads without colour and fits the width it is given (80 columns by default), cutting long lists of
upstreams to ``+N more``. :class:`GraphScreen` shows it in a scrollable screen.

Wiring it into the dashboard (the app owns the plan and the records):

* Load the plan once, off the UI thread, as the engine does: ``parse_plan(run.plan_copy.read_text(),
  file=meta.plan_file, base_dir=Path(meta.plan_file).parent, overrides=meta.inputs)``.
* Bind ``g`` to an action that creates a ``GraphScreen()``, keeps it, calls ``screen.refresh_view(plan,
  records)`` with the current records (``self._records.values()``) and ``push_screen``\\ s it, with a
  callback that forgets it (escape or ``g`` dismisses it).
* In each redraw, while the screen is kept, call ``screen.refresh_view(plan, view.agents)`` again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from agentsup.plan.model import WORKERS_SUFFIX, AgentSpec, Dependency, Plan, When
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import AgentState
from agentsup.tui.present import state_cell

WIDTH = 80
STATE_WIDTH = 13  # "? needs_input", the longest state cell
ARROW = "  ← "
_WHEN_ORDER = (When.SUCCEEDED, When.FINISHED, When.FAILED, When.STARTED)


@dataclass(frozen=True)
class _Node:
    name: str
    state: AgentState
    after: tuple[Dependency, ...]
    parent: str | None  # the agent it is indented under: its master, or the agent it recovers
    note: str  # what kind of agent it is, when that is not plain; "" otherwise
    spawned: bool  # not in the plan file: a worker, a recovery or a handler's spawn, or unknown


def graph_lines(plan: Plan, records: Iterable[AgentRecord], width: int = WIDTH) -> list[Text]:
    """The graph of ``plan``'s agents and of the dynamic ones among ``records``, one Text per line.

    Agents without a record are pending. A record the plan does not list is placed by its name: a
    ``MASTER/ID`` (a worker, or ``AGENT/fix``, a recovery agent) under the agent named before its last
    ``/``, a ``TEMPLATE-SEQ`` as spawned by a handler from that ``[workers]`` template; those and any other
    unknown agent are listed after the layers.
    """
    nodes = _nodes(plan, {r.name: r for r in records})
    if not nodes:
        return [Text("no agents")]
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node.name)
    top = [n for n, node in nodes.items() if node.parent is None and not node.spawned]
    layers = _layers(nodes, top)
    lines: list[Text] = []

    def subtree(name: str, depth: int, seen: frozenset[str] = frozenset()) -> None:
        lines.append(_line(nodes[name], depth, width))
        for child in children.get(name, ()):
            if child not in seen:
                subtree(child, depth + 1, seen | {name})

    for layer in range(max(layers.values(), default=-1) + 1):
        lines.append(Text(f"layer {layer}", style="bold"))
        for name in top:
            if layers[name] == layer:
                subtree(name, 0)
    spawned = [n for n, node in nodes.items() if node.spawned and node.parent is None]
    if spawned:
        lines.append(Text("added during the run", style="bold"))
        for name in spawned:
            subtree(name, 0)
    return lines


# -- which agents, under which parent -----------------------------------------------------------------


def _nodes(plan: Plan, records: Mapping[str, AgentRecord]) -> dict[str, _Node]:
    names = list(plan.agents) + [n for n in records if n not in plan.agents]
    known = set(names)
    nodes: dict[str, _Node] = {}
    for name in names:
        rec = records.get(name)
        state = AgentState.PENDING if rec is None else rec.state
        spec = plan.agents.get(name)
        if spec is not None and spec.worker is None:  # a static agent of the plan file
            nodes[name] = _Node(name, state, spec.after, None, _static_note(spec), spawned=False)
            continue
        # A dynamic agent: its spec when the plan holds one (the engine's does), else what its name says.
        parent = spec.parent if spec is not None else _master_of(name, known)
        after = spec.after if spec is not None else ()
        if parent is not None:
            note = "recovery" if _recovers(plan, name, parent) else ""
            nodes[name] = _Node(name, state, after, parent, note, spawned=True)
            continue
        template = spec.worker if spec is not None else _template_of(name, plan.workers)
        note = "" if template is None else f"{template}, spawned by a handler"
        nodes[name] = _Node(name, state, after, None, note, spawned=True)
    return nodes


def _static_note(spec: AgentSpec) -> str:
    if spec.aggregate is not None:
        return f"aggregate {spec.aggregate.strategy.value}"
    return "spawns workers" if spec.spawns is not None else ""


def _master_of(name: str, known: set[str]) -> str | None:
    master, sep, _ = name.rpartition("/")
    return master if sep and master in known else None


def _recovers(plan: Plan, name: str, parent: str) -> bool:
    spec = plan.agents.get(parent)
    return name == f"{parent}/fix" and spec is not None and spec.recovery is not None


def _template_of(name: str, templates: Iterable[str]) -> str | None:
    """The ``[workers]`` template a handler spawned ``name`` from (``T-SEQ`` or ``T-SEQ-onINDEX``)."""
    matches = [t for t in templates if re.fullmatch(rf"{re.escape(t)}-\d+(-on\d+)?", name)]
    return max(matches, key=len, default=None)


def _top_of(name: str, nodes: Mapping[str, _Node]) -> str:
    seen = {name}
    while (parent := nodes[name].parent) is not None and parent in nodes and parent not in seen:
        name = parent
        seen.add(name)
    return name


def _layers(nodes: Mapping[str, _Node], top: Sequence[str]) -> dict[str, int]:
    """Each top-level agent's longest path from a root, over the edges between top-level agents (an edge
    to a worker counts as one to its master). A cycle, which the loader rejects, is cut where it closes."""
    members = set(top)
    layers: dict[str, int] = {}
    visiting: set[str] = set()

    def layer(name: str) -> int:
        if name in layers:
            return layers[name]
        visiting.add(name)
        ups = {_top_of(d.agent, nodes) for d in nodes[name].after if d.agent in nodes}
        ups = {u for u in ups if u in members and u != name and u not in visiting}
        layers[name] = 1 + max((layer(u) for u in sorted(ups)), default=-1)
        visiting.discard(name)
        return layers[name]

    for name in top:
        layer(name)
    return layers


# -- lines ---------------------------------------------------------------------------------------------


def _line(node: _Node, depth: int, width: int) -> Text:
    indent = "  " if depth == 0 else "  " + "    " * (depth - 1) + "  └ "
    cell = state_cell(node.state)
    cell.pad_right(max(0, STATE_WIDTH - cell.cell_len))
    label = node.name
    if node.parent is not None and label.startswith(node.parent + "/"):
        label = label[len(node.parent) + 1 :]
    line = Text.assemble(indent, cell, " ", (label, "bold"))
    if node.note:
        line.append(f" [{node.note}]", style="dim")
    if node.after:
        sibling = None if node.parent is None else node.parent + "/"
        room = width - line.cell_len - cell_len(ARROW)
        line.append(ARROW + _fit(_edge_pieces(node.after, sibling), room))
    line.truncate(width, overflow="ellipsis")
    return line


def _edge_pieces(after: Sequence[Dependency], sibling: str | None) -> list[str]:
    """``a``, ``, b``, ``; finished: c``…: the upstreams grouped by when they release the agent, each
    piece carrying its separator, so that a prefix of them is a readable list."""
    pieces: list[str] = []
    for when in _WHEN_ORDER:
        group = [d for d in after if d.when is when]
        for i, dep in enumerate(group):
            name = dep.agent
            if sibling is not None and name.startswith(sibling):
                name = name[len(sibling) :]
            name += WORKERS_SUFFIX if dep.workers else ""
            head = "" if when is When.SUCCEEDED else f"{when.value}: "
            sep = ("; " if pieces else "") + head if i == 0 else ", "
            pieces.append(sep + name)
    return pieces


def _fit(pieces: Sequence[str], room: int) -> str:
    """As many leading pieces as fit in ``room`` cells, the rest counted as ``+N more``."""
    n = len(pieces)
    for k in range(n, -1, -1):
        shown = "".join(pieces[:k])
        text = shown if k == n else f"{shown}{', ' if k else ''}+{n - k} more"
        if cell_len(text) <= room or k == 0:
            return text
    return ""  # unreachable: k == 0 always returns


# -- the screen ----------------------------------------------------------------------------------------


class GraphScreen(Screen[None]):
    """The dependency graph of the run, scrollable; escape or g closes it. The app gives it the plan and
    the records with :meth:`refresh_view`, before pushing it and whenever its view changes."""

    DEFAULT_CSS = """
    GraphScreen #graph-scroll { height: 1fr; scrollbar-gutter: stable; }
    GraphScreen #graph { width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,g", "close", "Close graph")]

    def __init__(self) -> None:
        super().__init__()
        self._plan: Plan | None = None
        self._records: tuple[AgentRecord, ...] = ()
        self._scroll = VerticalScroll(id="graph-scroll")
        self._graph = Static(Text("loading the plan…"), id="graph")

    def compose(self) -> ComposeResult:
        with self._scroll:
            yield self._graph
        yield Footer()

    def on_mount(self) -> None:
        self._scroll.focus()
        self._render_graph()

    def on_resize(self, _: Resize) -> None:
        self._render_graph()

    def refresh_view(self, plan: Plan, records: Iterable[AgentRecord]) -> None:
        """Show ``plan`` with the agents' states in ``records`` (redrawn only when the text changes)."""
        self._plan, self._records = plan, tuple(records)
        self._render_graph()

    def shown_text(self) -> str:
        """What the screen shows, without styles (for tests and for copying)."""
        content = self._graph.content
        return content.plain if isinstance(content, Text) else str(content)

    def _render_graph(self) -> None:
        if self._plan is None or not self.is_mounted:
            return
        width = self._scroll.scrollable_content_region.width or WIDTH
        text = Text("\n").join(graph_lines(self._plan, self._records, width))
        if text != self._graph.content:
            self._graph.update(text)

    def action_close(self) -> None:
        self.dismiss(None)
