"""The `llm` fixture: a scripted LLM server of the test's own (set `llm.script` before the client calls)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm.server import LLMServer


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server
