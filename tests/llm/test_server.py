"""The scripted LLM server, spoken to over real HTTP with the stdlib, in each API shape it serves."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

import pytest

from tests.llm.script import Fail, Held, Script, Text, ToolCall, example_for
from tests.llm.server import LLMServer
from tests.llm.wire import obj, seq, string

Event = tuple[str | None, object]
WRITE = ToolCall("write_file", {"file_path": "hello.txt", "content": "hi there\n"})


def call(
    llm: LLMServer, path: str, body: object = None, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(llm.url + path, data=data, headers=headers)  # noqa: S310 - our http URL
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the test server's own http URL
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def call_json(llm: LLMServer, path: str, body: object = None) -> Mapping[str, object]:
    status, raw = call(llm, path, body)
    assert status == 200, raw
    return obj(json.loads(raw))


def events(llm: LLMServer, path: str, body: object) -> list[Event]:
    """The server-sent events of a streamed reply, parsed as a client would: blank-line separated."""
    status, raw = call(llm, path, body)
    assert status == 200, raw
    parsed: list[Event] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        data = fields["data"]
        parsed.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return parsed


def chat(*messages: Mapping[str, object], stream: bool = False) -> dict[str, object]:
    return {"model": "test-model", "stream": stream, "messages": list(messages)}


USER = {"role": "user", "content": "write hello.txt"}


def test_chat_completion_answers_the_first_turn(llm: LLMServer) -> None:
    llm.script = Script([Text("hello there")])
    reply = call_json(llm, "/v1/chat/completions", chat(USER))
    choice = obj(seq(reply["choices"])[0])
    assert obj(choice["message"])["content"] == "hello there"
    assert choice["finish_reason"] == "stop"
    assert reply["model"] == "test-model"


def test_chat_completion_streams_text_in_pieces(llm: LLMServer) -> None:
    llm.script = Script([Text("hello there, streaming world")])
    stream = events(llm, "/v1/chat/completions", chat(USER, stream=True))
    assert stream[-1] == (None, "[DONE]")
    choices = [obj(seq(obj(data)["choices"])[0]) for _, data in stream[:-1] if seq(obj(data)["choices"])]
    deltas = [string(obj(c["delta"]).get("content")) for c in choices]
    assert len([d for d in deltas if d]) > 1
    assert "".join(deltas) == "hello there, streaming world"
    assert choices[-1]["finish_reason"] == "stop"


def test_chat_completion_streams_a_tool_call(llm: LLMServer) -> None:
    llm.script = Script([WRITE])
    stream = events(llm, "/v1/chat/completions", chat(USER, stream=True))
    choices = [obj(seq(obj(data)["choices"])[0]) for _, data in stream[:-1] if seq(obj(data)["choices"])]
    calls = [obj(c) for choice in choices for c in seq(obj(choice["delta"]).get("tool_calls"))]
    assert [obj(c["function"])["name"] for c in calls] == ["write_file"]
    assert json.loads(string(obj(calls[0]["function"])["arguments"])) == WRITE.args
    assert choices[-1]["finish_reason"] == "tool_calls"


def test_chat_completion_non_stream_tool_call(llm: LLMServer) -> None:
    llm.script = Script([WRITE])
    reply = call_json(llm, "/v1/chat/completions", chat(USER))
    message = obj(obj(seq(reply["choices"])[0])["message"])
    function = obj(obj(seq(message["tool_calls"])[0])["function"])
    assert function["name"] == "write_file"
    assert json.loads(string(function["arguments"])) == WRITE.args


def test_the_script_moves_on_with_the_history_and_then_says_ok(llm: LLMServer) -> None:
    llm.script = Script([WRITE, Text("done")])
    calls = [{"id": "call_1", "type": "function", "function": {"name": "write_file", "arguments": "{}"}}]
    after_call = {"role": "assistant", "content": None, "tool_calls": calls}
    result = {"role": "tool", "tool_call_id": "call_1", "content": "written"}
    done = {"role": "assistant", "content": "done"}
    contents = []
    for history in ([USER], [USER, after_call, result], [USER, after_call, result, done, USER]):
        message = obj(
            obj(seq(call_json(llm, "/v1/chat/completions", chat(*history))["choices"])[0])["message"]
        )
        contents.append(message.get("content") or obj(obj(seq(message["tool_calls"])[0])["function"])["name"])
    assert contents == ["write_file", "done", "ok"]


def test_assistant_messages_the_script_did_not_write_do_not_move_it_on(llm: LLMServer) -> None:
    # aider's prompt carries few-shot assistant messages ("Ok.") before the user's request.
    llm.script = Script([Text("first"), Text("second")])
    fake = [{"role": "user", "content": "I switched code bases."}, {"role": "assistant", "content": "Ok."}]
    message = obj(
        obj(seq(call_json(llm, "/v1/chat/completions", chat(*fake, USER))["choices"])[0])["message"]
    )
    assert message["content"] == "first"


def test_a_prompt_can_have_a_script_of_its_own(llm: LLMServer) -> None:
    llm.script = Script([Text("for everyone")])
    llm.by_prompt = {"review": Script([Text("for the reviewer")])}
    review = {"role": "user", "content": "please review the diff"}
    answers = [
        obj(obj(seq(call_json(llm, "/v1/chat/completions", chat(m))["choices"])[0])["message"])["content"]
        for m in (review, USER)
    ]
    assert answers == ["for the reviewer", "for everyone"]


def responses(*items: object, stream: bool = True, tools: Sequence[object] = ()) -> dict[str, object]:
    return {"model": "gpt-5.5", "stream": stream, "input": list(items), "tools": list(tools)}


CODEX_USER = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "write hello.txt"}],
}


def test_responses_stream_has_the_events_codex_reads(llm: LLMServer) -> None:
    llm.script = Script([Text("hello from codex land")])
    stream = events(llm, "/v1/responses", responses(CODEX_USER))
    names = [name for name, _ in stream]
    deltas = names.count("response.output_text.delta")
    assert names == [
        "response.created",
        "response.output_item.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert deltas > 1
    assert all(obj(data)["type"] == name for name, data in stream)
    text = "".join(
        string(obj(data)["delta"]) for name, data in stream if name == "response.output_text.delta"
    )
    assert text == "hello from codex land"
    done = obj(obj(stream[-1][1])["response"])
    assert done["status"] == "completed"
    item = obj(seq(done["output"])[0])
    assert obj(seq(item["content"])[0])["text"] == "hello from codex land"


def test_responses_stream_a_function_call_then_text(llm: LLMServer) -> None:
    llm.script = Script([ToolCall("exec_command", {"cmd": "true"}), Text("done")])
    stream = events(llm, "/v1/responses", responses(CODEX_USER))
    item = obj(obj(next(data for name, data in stream if name == "response.output_item.done"))["item"])
    assert (item["type"], item["name"], json.loads(string(item["arguments"]))) == (
        "function_call",
        "exec_command",
        {"cmd": "true"},
    )
    output = {"type": "function_call_output", "call_id": item["call_id"], "output": "ok"}
    reply = call_json(llm, "/v1/responses", responses(CODEX_USER, item, output, stream=False))
    assert obj(seq(obj(seq(reply["output"])[0])["content"])[0])["text"] == "done"


def test_responses_custom_tool_gets_raw_input(llm: LLMServer) -> None:
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"
    llm.script = Script([ToolCall("apply_patch", {"input": patch})])
    tools = [{"type": "custom", "name": "apply_patch"}, {"type": "function", "name": "exec_command"}]
    reply = call_json(llm, "/v1/responses", responses(CODEX_USER, stream=False, tools=tools))
    item = obj(seq(reply["output"])[0])
    assert (item["type"], item["name"], item["input"]) == ("custom_tool_call", "apply_patch", patch)


def test_responses_json_format_gets_json(llm: LLMServer) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    body = {
        **responses(CODEX_USER, stream=False),
        "text": {"format": {"type": "json_schema", "schema": schema}},
    }
    reply = call_json(llm, "/v1/responses", body)
    text = string(obj(seq(obj(seq(reply["output"])[0])["content"])[0])["text"])
    assert json.loads(text) == {"title": "ok"}


def messages(*history: object, stream: bool = True) -> dict[str, object]:
    return {"model": "claude-opus-5-5", "max_tokens": 1024, "stream": stream, "messages": list(history)}


CLAUDE_USER = {"role": "user", "content": [{"type": "text", "text": "write hello.txt"}]}


def test_messages_stream_has_the_events_claude_code_reads(llm: LLMServer) -> None:
    llm.script = Script([Text("hello from claude land")])
    stream = events(llm, "/v1/messages", messages(CLAUDE_USER))
    names = [name for name, _ in stream]
    deltas = names.count("content_block_delta")
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert deltas > 1
    assert all(obj(data)["type"] == name for name, data in stream)
    text = "".join(string(obj(obj(d)["delta"])["text"]) for n, d in stream if n == "content_block_delta")
    assert text == "hello from claude land"
    assert obj(obj(stream[-2][1])["delta"])["stop_reason"] == "end_turn"


def test_messages_stream_a_tool_use_block(llm: LLMServer) -> None:
    llm.script = Script([ToolCall("Write", {"file_path": "/w/hello.txt", "content": "hi"}), Text("done")])
    stream = events(llm, "/v1/messages", messages(CLAUDE_USER))
    block = obj(obj(stream[1][1])["content_block"])
    assert (block["type"], block["name"]) == ("tool_use", "Write")
    partial = "".join(
        string(obj(obj(d)["delta"])["partial_json"]) for n, d in stream if n == "content_block_delta"
    )
    assert json.loads(partial) == {"file_path": "/w/hello.txt", "content": "hi"}
    assert obj(obj(stream[-2][1])["delta"])["stop_reason"] == "tool_use"
    use = {"type": "tool_use", "id": block["id"], "name": "Write", "input": {}}
    result = {"type": "tool_result", "tool_use_id": block["id"], "content": "written"}
    history = [CLAUDE_USER, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    reply = call_json(llm, "/v1/messages", messages(*history, stream=False))
    assert reply["content"] == [{"type": "text", "text": "done"}]
    assert reply["stop_reason"] == "end_turn"


def test_messages_count_tokens(llm: LLMServer) -> None:
    counted = call_json(llm, "/v1/messages/count_tokens", messages(CLAUDE_USER, stream=False))
    assert isinstance(counted["input_tokens"], int)
    assert counted["input_tokens"] > 0


GEMINI = "/v1beta/models/gemini-3.8-flash"
GEMINI_USER = {"role": "user", "parts": [{"text": "write hello.txt"}]}


def test_gemini_generate_content(llm: LLMServer) -> None:
    llm.script = Script([Text("hello from gemini land")])
    reply = call_json(llm, f"{GEMINI}:generateContent", {"contents": [GEMINI_USER]})
    candidate = obj(seq(reply["candidates"])[0])
    assert obj(candidate["content"])["parts"] == [{"text": "hello from gemini land"}]
    assert candidate["finishReason"] == "STOP"
    assert reply["modelVersion"] == "gemini-3.8-flash"


def test_gemini_stream_generate_content_is_sse(llm: LLMServer) -> None:
    llm.script = Script([Text("hello from gemini land")])
    stream = events(llm, f"{GEMINI}:streamGenerateContent?alt=sse", {"contents": [GEMINI_USER]})
    candidates = [obj(seq(obj(data)["candidates"])[0]) for _, data in stream]
    parts = [obj(p) for c in candidates for p in seq(obj(c["content"])["parts"])]
    assert len(stream) > 1
    assert "".join(string(p["text"]) for p in parts) == "hello from gemini land"
    assert candidates[-1]["finishReason"] == "STOP"
    assert "usageMetadata" in obj(stream[-1][1])
    assert llm.requests[-1].query == {"alt": ["sse"]}


def test_gemini_function_call_then_text(llm: LLMServer) -> None:
    llm.script = Script([WRITE, Text("done")])
    stream = events(llm, f"{GEMINI}:streamGenerateContent?alt=sse", {"contents": [GEMINI_USER]})
    part = obj(seq(obj(obj(seq(obj(stream[0][1])["candidates"])[0])["content"])["parts"])[0])
    assert part["functionCall"] == {"name": "write_file", "args": WRITE.args}
    model = {"role": "model", "parts": [part]}
    response = {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {}}}]}
    reply = call_json(llm, f"{GEMINI}:generateContent", {"contents": [GEMINI_USER, model, response]})
    assert obj(obj(seq(reply["candidates"])[0])["content"])["parts"] == [{"text": "done"}]


def test_gemini_json_mode_gets_json_that_fits_the_schema(llm: LLMServer) -> None:
    # The shape of Gemini CLI's model router request: upper-case types, a score it checks is >= 1.
    schema = {
        "type": "OBJECT",
        "properties": {"complexity_reasoning": {"type": "STRING"}, "complexity_score": {"type": "INTEGER"}},
        "required": ["complexity_reasoning", "complexity_score"],
    }
    llm.script = Script([WRITE])
    config = {"responseMimeType": "application/json", "responseJsonSchema": schema}
    reply = call_json(
        llm, f"{GEMINI}:generateContent", {"contents": [GEMINI_USER], "generationConfig": config}
    )
    text = string(obj(seq(obj(obj(seq(reply["candidates"])[0])["content"])["parts"])[0])["text"])
    assert json.loads(text) == {"complexity_reasoning": "ok", "complexity_score": 1}


def test_gemini_count_tokens(llm: LLMServer) -> None:
    counted = call_json(llm, f"{GEMINI}:countTokens", {"contents": [GEMINI_USER]})
    assert isinstance(counted["totalTokens"], int)


def test_example_for_a_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "next_speaker": {"type": "string", "enum": ["user", "model"]},
            "n": {"type": "number", "minimum": 3},
            "tags": {"type": "array"},
            "maybe": {"type": ["null", "boolean"]},
            "optional": {"type": "string"},
        },
        "required": ["next_speaker", "n", "tags", "maybe"],
    }
    assert example_for(schema) == {"next_speaker": "user", "n": 3, "tags": [], "maybe": False}


def test_model_lists(llm: LLMServer) -> None:
    openai = call_json(llm, "/v1/models")
    assert "test-model" in [obj(m)["id"] for m in seq(openai["data"])]
    gemini = call_json(llm, "/v1beta/models")
    assert "models/gemini-3.8-flash" in [obj(m)["name"] for m in seq(gemini["models"])]
    assert call_json(llm, "/v1/models/claude-opus-5-5")["id"] == "claude-opus-5-5"


def test_unknown_paths_get_a_json_404_and_are_recorded(llm: LLMServer) -> None:
    status, raw = call(llm, "/api/oauth/profile?x=1", {"probe": True})
    assert status == 404
    assert "no route for POST /api/oauth/profile" in string(obj(obj(json.loads(raw))["error"])["message"])
    seen = llm.wait_for(lambda r: r.path == "/api/oauth/profile")
    assert (seen.status, seen.query, seen.body, seen.conversation) == (
        404,
        {"x": ["1"]},
        {"probe": True},
        None,
    )


def test_every_request_is_recorded_with_headers_and_body(llm: LLMServer) -> None:
    call(llm, "/v1/messages", messages(CLAUDE_USER, stream=False), {"x-api-key": "sk-test"})
    seen = llm.wait_for(lambda r: r.asks("write hello.txt"))
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-test"
    assert seen.json()["model"] == "claude-opus-5-5"
    assert seen.status == 200
    assert json.loads(seen.reply)["content"] == [{"type": "text", "text": "ok"}]


def test_wait_for_says_what_it_saw_when_nothing_matches(llm: LLMServer) -> None:
    call(llm, "/v1/models")
    with pytest.raises(TimeoutError, match=r"saw: GET /v1/models -> 200"):
        llm.wait_for(lambda r: r.method == "POST", timeout=0.2)


def test_chunked_and_gzipped_bodies_and_keep_alive(llm: LLMServer) -> None:
    host, port = llm.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        body = json.dumps(chat(USER)).encode()
        conn.request("POST", "/v1/chat/completions", iter([body[:10], body[10:]]), encode_chunked=True)
        first = conn.getresponse()
        assert first.status == 200, first.read()
        first.read()
        sock = conn.sock
        assert sock is not None, "the server closed the connection after one reply"
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        conn.request("POST", "/v1/chat/completions", gzip.compress(body), headers)  # the same connection
        second = conn.getresponse()
        assert second.status == 200
        assert json.loads(second.read())["object"] == "chat.completion"
        assert conn.sock is sock
    finally:
        conn.close()
    assert [r.json()["model"] for r in llm.requests] == ["test-model", "test-model"]


GEMINI_PATH = "/v1beta/models/gemini-3.8-flash:generateContent"
MESSAGES = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def _error(llm: LLMServer, path: str, body: object) -> tuple[int, Mapping[str, object], str | None]:
    req = urllib.request.Request(  # noqa: S310 - our http URL
        llm.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)  # noqa: S310 - the test server's own http URL
    err = caught.value
    return err.code, obj(json.loads(err.read())), err.headers.get("Retry-After")


def test_a_refusal_is_each_providers_rate_limit_error(llm: LLMServer) -> None:
    llm.script = Script([Fail(429, "slow down", retry_after=7)])
    status, body, retry = _error(llm, "/v1/messages", MESSAGES)
    assert (status, retry) == (429, "7")
    assert body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    status, body, _ = _error(llm, "/v1/responses", RESPONSES)
    assert obj(body["error"])["code"] == "rate_limit_exceeded"
    status, body, _ = _error(llm, "/v1/chat/completions", chat(USER))
    assert obj(body["error"])["message"] == "slow down"
    status, body, _ = _error(llm, GEMINI_PATH, GEMINI_BODY)
    error = obj(body["error"])
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert seq(error["details"]) == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
    ]


def test_a_refusal_stays_for_retries_and_the_next_prompt(llm: LLMServer) -> None:
    llm.script = Script([Fail(500, "down")])
    for _ in range(3):
        assert _error(llm, "/v1/messages", MESSAGES)[0] == 500


def test_a_held_turn_answers_only_once_released(llm: LLMServer) -> None:
    release = threading.Event()
    llm.script = Script([Held(Text("at last"), release)])
    answers: list[Mapping[str, object]] = []
    caller = threading.Thread(
        target=lambda: answers.append(call_json(llm, "/v1/chat/completions", chat(USER)))
    )
    caller.start()
    llm.wait_holding()
    assert not answers
    assert not llm.requests  # a request is recorded once it is answered
    release.set()
    caller.join(timeout=10)
    message = obj(obj(seq(answers[0]["choices"])[0])["message"])
    assert message["content"] == "at last"
    with pytest.raises(TimeoutError, match="0 of 1 requests held"):
        llm.wait_holding(timeout=0.1)
