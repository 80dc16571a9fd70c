"""What the scripted LLM says: a list of turns, each plain text or one tool call, in conversation order.

A script may also hold a turn back (`Held`, to see a client mid-turn) or refuse a request with an HTTP error
(`Fail`, e.g. a rate limit).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    """An assistant turn that only says `text` and ends the turn."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """An assistant turn that calls the client's tool `name` with `args` (the client runs it and replies)."""

    name: str
    args: Mapping[str, object] = field(default_factory=dict)

    def arguments(self) -> str:
        return json.dumps(self.args)


Turn = Text | ToolCall


@dataclass(frozen=True)
class Fail:
    """A request refused with HTTP `status`, in the calling API's own error shape (a 429 is each provider's
    rate-limit error). It never enters a conversation's history, so the conversation stays at it: a client's
    retries, and its next prompt, get it again."""

    status: int = 429
    message: str = "Rate limit reached for requests. Please try again later."
    retry_after: int | None = None  # seconds, sent as Retry-After
    headers: Mapping[str, str] = field(default_factory=dict)  # provider-specific extras


@dataclass(frozen=True, eq=False)
class Held:
    """`turn`, answered only once `release` is set (or after `timeout` seconds): holds a client mid-turn."""

    turn: Turn | Fail
    release: threading.Event = field(default_factory=threading.Event)
    timeout: float = 120.0


Step = Turn | Fail | Held  # what a script's position may hold

DEFAULT_REPLY = Text("ok")


@dataclass(frozen=True)
class Said:
    """One assistant message from a request's history: its text and the names of the tools it called."""

    text: str = ""
    calls: tuple[str, ...] = ()


def _words(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Script:
    """The turns of a conversation. A request whose history already holds n of this script's turns (known
    by their text or tool name) gets turn n; past the end it gets `default`.

    Counting only the script's own turns keeps it in step whatever else a client sends: aider's few-shot
    assistant messages ("Ok."), side requests (titles, routers) and retries of the same request.
    """

    turns: Sequence[Step] = ()
    default: Step = DEFAULT_REPLY

    def turn(self, index: int) -> Step:
        return self.turns[index] if 0 <= index < len(self.turns) else self.default

    def wrote(self, said: Said) -> bool:
        """Whether `said` is one of this script's turns, played back by the client."""
        for step in (*self.turns, self.default):
            turn = step.turn if isinstance(step, Held) else step
            if isinstance(turn, ToolCall) and turn.name in said.calls:
                return True
            if isinstance(turn, Text) and said.text and _words(said.text) == _words(turn.text):
                return True
        return False

    def reply(self, history: Sequence[Said]) -> Step:
        return self.turn(sum(1 for said in history if self.wrote(said)))


@dataclass(frozen=True)
class Conversation:
    """What the server needs from a request, whichever API shape it came in."""

    model: str
    stream: bool
    user_text: str
    history: tuple[Said, ...]  # the assistant messages, in order
    wants_json: bool = False
    json_schema: object = None


def example_for(schema: object) -> object:
    """The smallest value that fits a JSON schema (OpenAPI-style upper-case types too): first enum member,
    required properties only, numbers at their minimum or 1, empty arrays. Clients that ask for JSON
    (Gemini's model router) then parse what they get."""
    if not isinstance(schema, Mapping):
        return {}
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_for(options[0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower() if kind is not None else ("object" if "properties" in schema else "")
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        names = [str(n) for n in required] if isinstance(required, list) else list(props)
        return {name: example_for(props.get(name)) for name in names}
    if kind in ("integer", "number"):
        least = schema.get("minimum")
        return least if isinstance(least, int | float) else 1  # Gemini's router wants a score >= 1
    simple: dict[str, object] = {"string": "ok", "boolean": False, "array": []}
    return simple.get(kind, {} if kind == "" else None)
