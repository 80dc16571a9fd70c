"""OpenAI's two shapes: chat completions (aider, through litellm) and the responses API (Codex)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from tests.llm.script import Conversation, Fail, Said, Text, ToolCall, Turn
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

# Tool calls a responses-API client replays from earlier assistant turns.
CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})


def error(fail: Fail) -> Reply:
    """OpenAI's error body (both APIs): {"error": {"message", "type", "param", "code"}}; a 429 is
    `rate_limit_exceeded` on request rate."""
    kind, code = ("requests", "rate_limit_exceeded") if fail.status == 429 else ("server_error", None)
    body = {"error": {"message": fail.message, "type": kind, "param": None, "code": code}}
    return json_reply(body, fail.status, retry_headers(fail))


def chat_conversation(body: Mapping[str, object]) -> Conversation:
    messages = [obj(m) for m in seq(body.get("messages"))]
    fmt = obj(body.get("response_format"))
    return Conversation(
        model=string(body.get("model")),
        stream=body.get("stream") is True,
        user_text="\n".join(texts(m.get("content")) for m in messages if m.get("role") == "user"),
        history=tuple(_chat_said(m) for m in messages if m.get("role") == "assistant"),
        wants_json=fmt.get("type") in ("json_object", "json_schema"),
        json_schema=obj(fmt.get("json_schema")).get("schema"),
    )


def _chat_said(message: Mapping[str, object]) -> Said:
    calls = tuple(string(obj(obj(c).get("function")).get("name")) for c in seq(message.get("tool_calls")))
    return Said(texts(message.get("content"), sep=""), calls)


def chat_reply(turn: Turn, conv: Conversation, call_id: str) -> Reply:
    created = int(time.time())
    head = {"id": f"chatcmpl-{call_id}", "created": created, "model": conv.model}
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
    finish = "tool_calls" if isinstance(turn, ToolCall) else "stop"
    if isinstance(turn, ToolCall):
        function = {"name": turn.name, "arguments": turn.arguments()}
        call = {"id": f"call_{call_id}", "type": "function", "function": function}
    if not conv.stream:
        message: dict[str, object] = {"role": "assistant", "content": None}
        if isinstance(turn, Text):
            message["content"] = turn.text
            usage["completion_tokens"] = tokens(turn.text)
        else:
            message["tool_calls"] = [call]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return json_reply({**head, "object": "chat.completion", "choices": [choice], "usage": usage})

    def chunk(delta: object, finish_reason: str | None = None) -> object:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**head, "object": "chat.completion.chunk", "choices": [choice]}

    events: list[tuple[str | None, object]] = [(None, chunk({"role": "assistant", "content": ""}))]
    if isinstance(turn, Text):
        events += [(None, chunk({"content": piece})) for piece in pieces(turn.text)]
    else:
        events.append((None, chunk({"tool_calls": [{"index": 0, **call}]})))
    events.append((None, chunk({}, finish)))
    events.append((None, {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return sse_reply(events)


def responses_conversation(body: Mapping[str, object]) -> Conversation:
    raw = body.get("input")
    items = [obj(i) for i in seq(raw)] if not isinstance(raw, str) else [{"role": "user", "content": raw}]
    fmt = obj(obj(body.get("text")).get("format"))
    return Conversation(
        model=string(body.get("model")),
        stream=body.get("stream") is True,
        user_text="\n".join(
            texts(i.get("content"))
            for i in items
            if i.get("role") == "user" and i.get("type", "message") == "message"
        ),
        history=tuple(
            _item_said(i) for i in items if i.get("role") == "assistant" or i.get("type") in CALL_ITEMS
        ),
        wants_json=fmt.get("type") in ("json_object", "json_schema"),
        json_schema=fmt.get("schema"),
    )


def _item_said(item: Mapping[str, object]) -> Said:
    if item.get("type") in CALL_ITEMS:
        return Said(calls=(string(item.get("name")),))
    return Said(texts(item.get("content"), sep=""))


def _tool_kind(body: Mapping[str, object], name: str) -> str:
    """Codex declares some tools (apply_patch) as "custom": their call carries raw `input`, not JSON args."""
    for tool in seq(body.get("tools")):
        if string(obj(tool).get("name")) == name:
            return string(obj(tool).get("type")) or "function"
    return "function"


def responses_reply(turn: Turn, conv: Conversation, call_id: str, body: Mapping[str, object]) -> Reply:
    if isinstance(turn, Text):
        item: dict[str, object] = {
            "type": "message",
            "id": f"msg_{call_id}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
        }
        out_tokens = tokens(turn.text)
    elif _tool_kind(body, turn.name) == "custom":
        raw = turn.args.get("input")
        item = {
            "type": "custom_tool_call",
            "id": f"ctc_{call_id}",
            "call_id": f"call_{call_id}",
            "name": turn.name,
            "input": raw if isinstance(raw, str) else json.dumps(turn.args),
            "status": "completed",
        }
        out_tokens = 10
    else:
        item = {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": f"call_{call_id}",
            "name": turn.name,
            "arguments": turn.arguments(),
            "status": "completed",
        }
        out_tokens = 10
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10 + out_tokens,
    }
    response: dict[str, object] = {
        "id": f"resp_{call_id}",
        "object": "response",
        "created_at": int(time.time()),
        "model": conv.model,
        "status": "completed",
        "output": [item],
        "usage": usage,
    }
    if not conv.stream:
        return json_reply(response)
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str | None, object]] = [("response.created", {"response": started})]
    if isinstance(turn, Text):
        events.append(("response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}))
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events += [("response.output_text.delta", {**where, "delta": p}) for p in pieces(turn.text)]
        events.append(("response.output_text.done", {**where, "text": turn.text}))
    else:
        events.append(("response.output_item.added", {"output_index": 0, "item": item}))
    events.append(("response.output_item.done", {"output_index": 0, "item": item}))
    events.append(("response.completed", {"response": response}))
    return sse_reply(
        [(name, {"type": name, "sequence_number": n, **obj(data)}) for n, (name, data) in enumerate(events)]
    )
