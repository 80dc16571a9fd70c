"""A scripted LLM server on 127.0.0.1 that the real agent CLIs talk to in tests, offline.

It speaks OpenAI chat completions and responses, Anthropic messages and the Gemini API, streaming or not,
answers each conversation from a `Script`, and records every request (unknown paths too, answered 404)::

    with LLMServer(Script([ToolCall("Write", {...}), Text("done")])) as llm:
        run_the_cli(base_url=llm.url)
        assert llm.wait_for(lambda r: r.path == "/v1/messages").body
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.llm import anthropic_api, gemini_api, openai_api
from tests.llm.script import Conversation, Fail, Held, Script, Step, Text, Turn, example_for
from tests.llm.wire import Reply, error_reply, json_reply, obj

# What the CLIs installed by .ci/install-clis ask for by default, and the test models of tests/llm/clis.py.
MODELS = (
    "claude-opus-5-5",
    "claude-haiku-4-5",
    "gpt-5.5",
    "gemini-3.8-flash",
    "gemini-3.5-flash-lite",
    "test-model",
)
GEMINI_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?P<method>\w+)$")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it; `status` is what it answered."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: object  # parsed JSON, or None when there was no JSON body
    status: int = 200
    reply: bytes = field(default=b"", repr=False)
    conversation: Conversation | None = None  # set on model calls (chat, responses, messages, Gemini)

    def json(self) -> Mapping[str, object]:
        """The body as a JSON object ({} when it was none)."""
        return obj(self.body)

    def asks(self, text: str) -> bool:
        """Whether this is a model call whose user messages contain `text`."""
        return self.conversation is not None and text in self.conversation.user_text


class LLMServer:
    """The server; `url` is its base (no trailing slash). Use as a context manager or `start()`/`close()`."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        by_prompt: Mapping[str, Script] | None = None,
        models: Sequence[str] = MODELS,
    ) -> None:
        self.script = script if script is not None else Script()
        # A conversation whose user text contains a key is answered by that key's script instead.
        self.by_prompt = dict(by_prompt or {})
        self.models = tuple(models)
        self._requests: list[Request] = []
        self._holding = 0  # requests waiting on a Held turn
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._http = _HTTPServer(self)
        # serve_forever notices shutdown() only between polls: a short poll keeps close() quick.
        serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="llm-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def requests(self) -> list[Request]:
        with self._changed:
            return list(self._requests)

    def wait_for(self, match: Callable[[Request], bool], timeout: float = 10.0) -> Request:
        """The first recorded request that `match`es, waiting up to `timeout` seconds for it to come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((r for r in self._requests if match(r)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self._requests) or "none"
                    raise TimeoutError(f"no matching request to {self.url} within {timeout}s; saw: {seen}")
                self._changed.wait(left)

    def wait_holding(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until at least `count` requests are being held by a `Held` turn."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._holding < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._holding} of {count} requests held within {timeout}s")
                self._changed.wait(left)

    def record(self, request: Request) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def answer(self, method: str, path: str, body: Mapping[str, object]) -> tuple[Reply, Conversation | None]:
        """The reply to one request (and the conversation it carried, if it was a model call)."""
        if method == "GET":
            return self._models(path), None
        gemini = GEMINI_PATH.match(path)
        if method != "POST":
            return _not_found(method, path), None
        if path == "/v1/messages/count_tokens":
            return anthropic_api.count_tokens(body), None
        if gemini and gemini["method"] == "countTokens":
            return gemini_api.count_tokens(body), None
        api = _API.get(path)
        if gemini and gemini["method"] in ("generateContent", "streamGenerateContent"):
            api = _gemini_api(gemini["model"], stream=gemini["method"] == "streamGenerateContent")
        if api is None:
            return _not_found(method, path), None
        conv = api.parse(body)
        return self._reply(api, conv, body), conv

    def _reply(self, api: _Api, conv: Conversation, body: Mapping[str, object]) -> Reply:
        turn = self._turn(conv)
        if isinstance(turn, Fail):
            return api.fail(turn)
        return api.render(turn, conv, str(next(self._ids)), body)

    def _turn(self, conv: Conversation) -> Turn | Fail:
        """The conversation's next turn; a `Held` one blocks this request's thread until it is released."""
        if conv.wants_json:
            return Text(json.dumps(example_for(conv.json_schema)))
        script = next((s for key, s in self.by_prompt.items() if key in conv.user_text), self.script)
        step: Step = script.reply(conv.history)
        if isinstance(step, Held):
            with self._changed:
                self._holding += 1
                self._changed.notify_all()
            try:
                step.release.wait(step.timeout)
            finally:
                with self._changed:
                    self._holding -= 1
                    self._changed.notify_all()
            return step.turn
        return step

    def _models(self, path: str) -> Reply:
        # One list that reads as OpenAI's, Anthropic's ("data") and Gemini's ("models") all at once.
        def entry(name: str) -> dict[str, object]:
            return {
                "id": name,
                "object": "model",
                "type": "model",
                "display_name": name,
                "created": 0,
                "created_at": "2025-01-01T00:00:00Z",
                "owned_by": "agentsup-tests",
            }

        if path in ("/v1/models", "/v1beta/models"):
            gemini = [
                {
                    "name": f"models/{m}",
                    "displayName": m,
                    "inputTokenLimit": 1_000_000,
                    "outputTokenLimit": 65_536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for m in self.models
            ]
            data = [entry(m) for m in self.models]
            first, last = self.models[0], self.models[-1]
            return json_reply(
                {
                    "object": "list",
                    "data": data,
                    "models": gemini,
                    "has_more": False,
                    "first_id": first,
                    "last_id": last,
                }
            )
        prefix = "/v1/models/"
        if path.startswith(prefix) and path[len(prefix) :] in self.models:
            return json_reply(entry(path[len(prefix) :]))
        return _not_found("GET", path)


@dataclass(frozen=True)
class _Api:
    parse: Callable[[Mapping[str, object]], Conversation]
    render: Callable[[Turn, Conversation, str, Mapping[str, object]], Reply]  # turn, conv, call id, body
    fail: Callable[[Fail], Reply]


_API = {
    "/v1/chat/completions": _Api(
        openai_api.chat_conversation,
        lambda turn, conv, call_id, _: openai_api.chat_reply(turn, conv, call_id),
        openai_api.error,
    ),
    "/v1/responses": _Api(openai_api.responses_conversation, openai_api.responses_reply, openai_api.error),
    "/v1/messages": _Api(
        anthropic_api.conversation,
        lambda turn, conv, call_id, _: anthropic_api.reply(turn, conv, call_id),
        anthropic_api.error,
    ),
}


def _gemini_api(model: str, *, stream: bool) -> _Api:
    return _Api(
        lambda body: gemini_api.conversation(body, model, stream=stream),
        lambda turn, conv, _id, _body: gemini_api.reply(turn, conv),
        gemini_api.error,
    )


def _not_found(method: str, path: str) -> Reply:
    return error_reply(404, f"agentsup test LLM server: no route for {method} {path}", "not_found_error")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, llm: LLMServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.llm = llm

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """Quiet about clients that hang up (litellm drops connections between retries)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries a Content-Length

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the recorded requests are the log."""

    def _serve(self) -> None:
        assert isinstance(self.server, _HTTPServer)
        llm = self.server.llm
        url = urlsplit(self.path)
        raw = self._read_body()
        try:
            body: object = json.loads(raw) if raw else None
        except ValueError:
            body = None
        reply, conv = llm.answer(self.command, url.path, obj(body))
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = parse_qs(url.query)
        llm.record(Request(self.command, url.path, query, headers, body, reply.status, reply.body, conv))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b"".join(self._chunks())
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            return gzip.decompress(raw)
        return raw

    def _chunks(self) -> Iterator[bytes]:
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            yield self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers, up to the blank line
            pass
