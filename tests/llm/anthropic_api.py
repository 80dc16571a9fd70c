"""Anthropic's messages API (Claude Code): messages, streaming events, tool_use blocks, token counting."""

from __future__ import annotations

import json
from collections.abc import Mapping

from tests.llm.script import Conversation, Fail, Said, Text, Turn
from tests.llm.wire import (
    Reply,
    json_reply,
    obj,
    pieces,
    retry_headers,
    seq,
    sse_reply,
    string,
    texts,
    tokens,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def conversation(body: Mapping[str, object]) -> Conversation:
    messages = [obj(m) for m in seq(body.get("messages"))]
    fmt = obj(body.get("output_format"))
    return Conversation(
        model=string(body.get("model")),
        stream=body.get("stream") is True,
        user_text="\n".join(texts(m.get("content")) for m in messages if m.get("role") == "user"),
        history=tuple(_said(m.get("content")) for m in messages if m.get("role") == "assistant"),
        wants_json=fmt.get("type") == "json_schema",
        json_schema=fmt.get("schema"),
    )


def _said(content: object) -> Said:
    calls = tuple(string(obj(b).get("name")) for b in seq(content) if obj(b).get("type") == "tool_use")
    return Said(texts(content, sep=""), calls)


def error(fail: Fail) -> Reply:
    """Anthropic's error body: {"type": "error", "error": {"type": "rate_limit_error", ...}}."""
    kind = ERROR_TYPES.get(fail.status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": fail.message}}
    return json_reply(body, fail.status, retry_headers(fail))


def count_tokens(body: Mapping[str, object]) -> Reply:
    return json_reply({"input_tokens": tokens(json.dumps(body))})


def reply(turn: Turn, conv: Conversation, call_id: str) -> Reply:
    if isinstance(turn, Text):
        block: dict[str, object] = {"type": "text", "text": turn.text}
        stop, out_tokens = "end_turn", tokens(turn.text)
    else:
        block = {"type": "tool_use", "id": f"toolu_{call_id}", "name": turn.name, "input": dict(turn.args)}
        stop, out_tokens = "tool_use", 10
    usage = {"input_tokens": 10, "output_tokens": out_tokens}
    message: dict[str, object] = {
        "id": f"msg_{call_id}",
        "type": "message",
        "role": "assistant",
        "model": conv.model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not conv.stream:
        return json_reply(message)
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, object]] = [("message_start", {"message": start})]
    if isinstance(turn, Text):
        events.append(("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
        deltas = [{"type": "text_delta", "text": p} for p in pieces(turn.text)]
    else:
        events.append(("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}))
        deltas = [{"type": "input_json_delta", "partial_json": turn.arguments()}]
    events += [("content_block_delta", {"index": 0, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"index": 0}))
    events.append(("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}))
    events.append(("message_stop", {}))
    return sse_reply([(name, {"type": name, **obj(data)}) for name, data in events])
