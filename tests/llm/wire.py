"""Bytes on the wire: JSON and server-sent-event replies, and typed access into parsed request bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.llm.script import Fail


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # beyond Content-Type and Content-Length


def json_reply(value: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(value).encode(), headers=dict(headers or {}))


def sse_reply(events: Sequence[tuple[str | None, object]]) -> Reply:
    """An SSE body of (event name, data) pairs; the whole stream is sent at once with a Content-Length,
    which every client here reads as a stream all the same."""
    lines: list[str] = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}\n")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return Reply(200, "".join(lines).encode(), "text/event-stream")


def error_reply(status: int, message: str, kind: str) -> Reply:
    """An error body that the OpenAI, Anthropic and Gemini clients each can read."""
    error = {"message": message, "type": kind, "code": status, "status": kind.upper()}
    return json_reply({"type": "error", "error": error}, status)


def retry_headers(fail: Fail) -> dict[str, str]:
    """A refusal's headers: Retry-After when it has one, then the script's own."""
    headers = {"retry-after": str(fail.retry_after)} if fail.retry_after is not None else {}
    return {**headers, **fail.headers}


def pieces(text: str) -> list[str]:
    """`text` cut at word boundaries into stream deltas (at least one, so empty text still streams)."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def tokens(text: str) -> int:
    return len(text) // 4 + 1


def obj(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def seq(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []


def string(value: object) -> str:
    return value if isinstance(value, str) else ""


def texts(content: object, *, sep: str = "\n") -> str:
    """The text of a message's content: a plain string, or the "text" fields of a list of parts."""
    if isinstance(content, str):
        return content
    return sep.join(string(obj(part).get("text")) for part in seq(content) if "text" in obj(part))
