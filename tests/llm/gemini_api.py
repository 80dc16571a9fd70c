"""Google's Gemini API (Gemini CLI): generateContent, streamGenerateContent (SSE), countTokens."""

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

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def conversation(body: Mapping[str, object], model: str, *, stream: bool) -> Conversation:
    contents = [obj(c) for c in seq(body.get("contents"))]
    config = obj(body.get("generationConfig"))
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    return Conversation(
        model=model,
        stream=stream,
        user_text="\n".join(texts(c.get("parts")) for c in contents if c.get("role", "user") == "user"),
        history=tuple(_said(c.get("parts")) for c in contents if c.get("role") == "model"),
        wants_json=config.get("responseMimeType") == "application/json",
        json_schema=schema,
    )


def _said(parts: object) -> Said:
    spoken = [obj(p) for p in seq(parts) if not obj(p).get("thought")]
    calls = tuple(string(obj(p.get("functionCall")).get("name")) for p in spoken if "functionCall" in p)
    return Said(texts(spoken, sep=""), calls)


def error(fail: Fail) -> Reply:
    """Google's error body: {"error": {"code", "message", "status", "details"}}, a RetryInfo detail when
    the retry delay is known."""
    error: dict[str, object] = {
        "code": fail.status,
        "message": fail.message,
        "status": STATUSES.get(fail.status, "INTERNAL"),
    }
    if fail.retry_after is not None:
        info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fail.retry_after}s"}
        error["details"] = [info]
    return json_reply({"error": error}, fail.status, retry_headers(fail))


def count_tokens(body: Mapping[str, object]) -> Reply:
    return json_reply({"totalTokens": tokens(json.dumps(body))})


def reply(turn: Turn, conv: Conversation) -> Reply:
    if isinstance(turn, Text):
        parts: list[dict[str, object]] = [
            {"text": p} for p in (pieces(turn.text) if conv.stream else [turn.text])
        ]
        out_tokens = tokens(turn.text)
    else:
        parts = [{"functionCall": {"name": turn.name, "args": dict(turn.args)}}]
        out_tokens = 10
    usage = {"promptTokenCount": 10, "candidatesTokenCount": out_tokens, "totalTokenCount": 10 + out_tokens}

    def response(chunk: list[dict[str, object]], *, last: bool) -> dict[str, object]:
        candidate: dict[str, object] = {"content": {"role": "model", "parts": chunk}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        done: dict[str, object] = {"usageMetadata": usage} if last else {}
        return {"candidates": [candidate], "modelVersion": conv.model, **done}

    if not conv.stream:
        return json_reply(response(parts, last=True))
    return sse_reply([(None, response([p], last=i == len(parts) - 1)) for i, p in enumerate(parts)])
