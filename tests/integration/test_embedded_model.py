"""The embedded model for real: llama.cpp's server with SmolLM2-135M-Instruct on loopback.

Needs llama-cpp-python (make venv) and the model file (make models). One server serves the
whole module; the tests that start and stop servers of their own use short-lived ones.
Answers are asked for with temperature 0, so the small model's greedy answers are stable.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel, Field

from hive.errors import InvalidInput, NotInstalled, Unavailable
from hive.runtime import embedded
from hive.runtime.embedded import (
    MODEL_NAME,
    EmbeddedModelServer,
    embedded_model_client,
    schema_response_format,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
REVIEWER = "You review code. Reply with JSON: score between 0 and 1, and feedback."


class Review(BaseModel):
    score: float = Field(ge=0, le=1)
    feedback: str


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[EmbeddedModelServer]:
    async with EmbeddedModelServer(start_timeout_s=60) as started:
        yield started


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_server_lists_the_model_under_its_name(server: EmbeddedModelServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    async with httpx.AsyncClient(trust_env=False) as client:
        listed = (await client.get(f"{server.base_url}/models")).json()
    assert [m["id"] for m in listed["data"]] == [MODEL_NAME]


async def test_a_plain_completion_answers_and_counts_tokens(server: EmbeddedModelServer) -> None:
    model = embedded_model_client(server)
    reply = await model.complete(CAPITAL, max_tokens=32, temperature=0)
    assert reply.content is not None
    assert "Paris" in reply.content
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == []
    assert reply.prompt_tokens > 10
    assert 0 < reply.completion_tokens <= 32
    assert model.usage.requests == 1
    assert model.usage.prompt_tokens == reply.prompt_tokens
    assert model.usage.completion_tokens == reply.completion_tokens


async def test_a_reply_stops_at_max_tokens(server: EmbeddedModelServer) -> None:
    story = [{"role": "user", "content": "Write a long story about a robot."}]
    reply = await embedded_model_client(server).complete(story, max_tokens=8, temperature=0)
    assert reply.finish_reason == "length"
    assert reply.completion_tokens == 8


async def test_streaming_yields_the_same_answer_piece_by_piece(
    server: EmbeddedModelServer,
) -> None:
    model = embedded_model_client(server)
    whole = await model.complete(CAPITAL, max_tokens=32, temperature=0)
    pieces = [piece async for piece in model.stream(CAPITAL, max_tokens=32, temperature=0)]
    assert len(pieces) > 3
    assert all(pieces)
    assert "".join(pieces) == whole.content
    # llama-cpp-python 0.3.36 ignores stream_options.include_usage: a streamed answer is counted
    # as a request, but the server reports no tokens for it.
    assert model.usage.requests == 2


async def test_a_json_schema_constrains_the_answer(server: EmbeddedModelServer) -> None:
    model = embedded_model_client(server)
    for code in ("def add(a, b): return a + b", "x = 1/0", "while True: pass"):
        ask = [
            {"role": "system", "content": REVIEWER},
            {"role": "user", "content": f"Review this code: {code}"},
        ]
        reply = await model.complete(
            ask, max_tokens=120, temperature=0, response_format=schema_response_format(Review)
        )
        assert reply.finish_reason == "stop", reply.content
        assert set(json.loads(reply.content or "")) == {"score", "feedback"}
        review = Review.model_validate_json(reply.content or "")
        assert review.feedback.strip()


async def test_the_openai_json_schema_form_is_refused(server: EmbeddedModelServer) -> None:
    """0.3.36 accepts only {"type": "json_object", "schema": ...}; it answers the OpenAI form
    with HTTP 500. When an upgrade accepts it, this test says so."""
    body = {
        "model": MODEL_NAME,
        "messages": CAPITAL,
        "max_tokens": 8,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Review", "schema": Review.model_json_schema()},
        },
    }
    async with httpx.AsyncClient(trust_env=False, timeout=60) as client:
        response = await client.post(f"{server.base_url}/chat/completions", json=body)
    assert response.status_code == 500
    assert "json_object" in response.text


async def test_a_stream_is_not_cut_by_a_request_that_comes_meanwhile(
    server: EmbeddedModelServer,
) -> None:
    model = embedded_model_client(server)
    story = [{"role": "user", "content": "Write a long story about a robot."}]
    first_piece = asyncio.Event()

    async def read_stream() -> list[str]:
        pieces = []
        async for piece in model.stream(story, max_tokens=24, temperature=0):
            pieces.append(piece)
            first_piece.set()
        return pieces

    streaming = asyncio.create_task(read_stream())
    await asyncio.wait_for(first_piece.wait(), timeout=60)
    other = await model.complete(CAPITAL, max_tokens=16, temperature=0)
    pieces = await asyncio.wait_for(streaming, timeout=60)
    assert other.content
    assert len(pieces) == 24  # one piece per token, all of them


async def test_a_server_stops_and_frees_its_port() -> None:
    server = EmbeddedModelServer()
    async with server:
        port, pid = server.port, server.pid
        log = server.log_path
        assert pid is not None
        assert log is not None
        assert server.running
        assert not port_is_free(port)
        assert server.startup_s is not None
        assert server.startup_s < 60
    assert not server.running
    assert not pid_alive(pid)
    assert port_is_free(port)
    assert not log.exists()
    await server.stop()  # a second stop is harmless


async def test_a_missing_model_file_is_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    server = EmbeddedModelServer()
    with pytest.raises(NotInstalled) as info:
        await server.start()
    assert str(info.value) == (
        "the SmolLM2 model file is not installed; install it with: make models"
    )
    assert not server.running


async def test_a_model_path_that_does_not_exist_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^HIVE_EMBEDDED_MODEL: .*nope\.gguf is not a file"):
        await EmbeddedModelServer(env={"HIVE_EMBEDDED_MODEL": str(tmp_path / "nope.gguf")}).start()


async def test_a_server_that_dies_is_unavailable_with_its_last_words(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a GGUF file\n" * 100)
    server = EmbeddedModelServer(broken, log_path=tmp_path / "server.log")
    with pytest.raises(Unavailable) as info:
        await server.start()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the embedded model server exited with status 1 before it was ready")
    assert "last log lines:" in message
    assert f"(log: {tmp_path / 'server.log'})" in message
    assert "failed to load model" in message.lower() or "error" in message.lower()
    assert not server.running


async def test_a_port_someone_holds_is_reported(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        server = EmbeddedModelServer(port=port, log_path=tmp_path / "server.log")
        with pytest.raises(Unavailable, match=r"exited with status \d+ .*address already in use"):
            await server.start()
    assert not server.running


async def test_a_server_that_is_not_ready_in_time_is_stopped() -> None:
    server = EmbeddedModelServer(start_timeout_s=0.01)
    with pytest.raises(Unavailable, match=r"was not ready on http://127\.0\.0\.1:\d+/v1/models"):
        await server.start()
    assert not server.running
    assert server.pid is None
    log = server.log_path
    assert log is not None
    assert log.exists()  # kept for the person reading the error
    await server.stop()
    assert not log.exists()
