"""The gateway in front of the embedded models that run here: SmolLM2-135M (llama.cpp) for
chat and the translate/summarize presets, all-MiniLM-L6-v2 (`hive model serve --embeddings`)
for embeddings. Neither serves images or speech: a vision request finds no route."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from hive.runtime.embedded import MODEL_NAME, EmbeddedModelServer
from tests.gateway_models import ROOT
from tests.support import free_port, wait_until_answers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest_asyncio.fixture(scope="module")
async def chat_model() -> AsyncIterator[str]:
    async with EmbeddedModelServer(start_timeout_s=120) as started:
        yield started.base_url


@pytest.fixture(scope="module")
def embeddings_model() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hive", "model", "serve", "--embeddings", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_answers(process, f"http://127.0.0.1:{port}/health", "embeddings", 120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(scope="module")
def gateway(
    chat_model: str, embeddings_model: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    routes = [
        {"name": "smollm2", "endpoint": chat_model, "model": MODEL_NAME, "services": ["chat"]},
        {
            "name": "minilm",
            "endpoint": embeddings_model,
            "model": "all-MiniLM-L6-v2",
            "services": ["embeddings"],
        },
    ]
    config = tmp_path_factory.mktemp("gateway") / "gateway.json"
    config.write_text(
        json.dumps({"teams": {"local": {"model": "m", "gateway": {"routes": routes}}}})
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "hive", "gateway", "serve", str(config), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def ask(gateway: str, model: str, text: str) -> httpx.Response:
    body = {
        "model": model,
        "temperature": 0,
        "max_tokens": 40,
        "messages": [{"role": "user", "content": text}],
    }
    return httpx.post(f"{gateway}/chat/completions", json=body, timeout=120)


def test_chat_and_the_presets_take_the_embedded_chat_model(gateway: str) -> None:
    for model in ("m", "summarize", "translate:French"):
        answer = ask(gateway, model, "The cat sat on the mat all afternoon, watching birds.")
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Hive-Route"] == "smollm2"
        assert answer.json()["choices"][0]["message"]["content"]
        assert answer.json()["usage"]["prompt_tokens"] > 0


def test_embeddings_take_the_embedded_embeddings_model(gateway: str) -> None:
    body = {"model": "m", "input": ["a cat on a mat", "a dog in the yard"]}
    answer = httpx.post(f"{gateway}/embeddings", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Hive-Route"] == "minilm"
    assert [len(d["embedding"]) for d in answer.json()["data"]] == [384, 384]


def test_images_find_no_route_here(gateway: str) -> None:
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    body = {"model": "m", "messages": [{"role": "user", "content": image}]}
    answer = httpx.post(f"{gateway}/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400
    assert "no route that serves vision" in answer.json()["error"]["message"]
