"""Sentence embeddings for real: the all-MiniLM-L6-v2 ONNX model (make models) on onnxruntime in
this process, and `hive model serve --embeddings` started as a process on loopback, called with
Hive's HTTP client, with raw OpenAI-style JSON and with the openai package.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import pytest_asyncio

from hive.ports import free_port
from hive.runtime.memory.embeddings import (
    DIMENSIONS,
    MODEL_NAME,
    Embedder,
    EmbeddingDimensionMismatch,
    LocalOnnxEmbedder,
    OpenAIEmbeddings,
)
from tests.support import embeddings_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# sentence-transformers' published cosine similarities for all-MiniLM-L6-v2 (fp32, its README
# and quickstart); the int8 ONNX export stays within a few thousandths of them.
REFERENCE_PAIRS = [
    ("The cat sits outside", "The cat plays in the garden", 0.6788),
    ("I love pasta", "Do you like pizza?", 0.5096),
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("A man is playing guitar", "A woman watches TV", -0.0327),
    ("The weather is lovely today.", "It's so sunny outside!", 0.6660),
    ("The weather is lovely today.", "He drove to the stadium.", 0.1046),
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def local() -> LocalOnnxEmbedder:
    embedder = LocalOnnxEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """Base URL of a `hive model serve --embeddings` process on a free loopback port."""
    with embeddings_server() as url:
        yield url


@pytest_asyncio.fixture
async def remote(served: str) -> AsyncIterator[OpenAIEmbeddings]:
    async with OpenAIEmbeddings(served, model=MODEL_NAME, dimensions=DIMENSIONS) as embedder:
        yield embedder


async def test_local_model_matches_the_published_similarities(local: LocalOnnxEmbedder) -> None:
    for first, second, expected in REFERENCE_PAIRS:
        a, b = await local.embed([first, second])
        assert cosine(a, b) == pytest.approx(expected, abs=0.01), (first, second)


async def test_paraphrases_are_closer_than_unrelated_sentences(local: Embedder) -> None:
    query, paraphrase, unrelated = await local.embed(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The stock market fell sharply on Tuesday.",
        ]
    )
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


async def test_vectors_are_unit_length_and_independent_of_the_batch(
    local: LocalOnnxEmbedder,
) -> None:
    long_text = "memory " * 200
    alone = (await local.embed(["short note"]))[0]
    batched = await local.embed([long_text, "short note", "another one"])
    assert len(alone) == DIMENSIONS
    assert np.linalg.norm(alone) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(batched[1], alone, atol=1e-5)
    assert await local.embed([]) == []


async def test_long_texts_are_truncated_at_the_models_token_limit(
    local: LocalOnnxEmbedder,
) -> None:
    long_text = " ".join(f"word{i}" for i in range(2000))
    assert local.count_tokens([long_text, "two words"]) == [local.max_tokens, 4]
    (vector,) = await local.embed([long_text])
    assert np.all(np.isfinite(vector))


async def test_embedding_runs_off_the_event_loop(local: LocalOnnxEmbedder) -> None:
    ticks = 0
    texts = [f"sentence number {i} about something else entirely" for i in range(512)]
    job = asyncio.create_task(local.embed(texts))
    while not job.done():
        ticks += 1
        await asyncio.sleep(0.001)
    assert len(await job) == len(texts)
    assert ticks > 1  # the loop kept running while the model did


async def test_served_model_gives_the_local_vectors(
    local: LocalOnnxEmbedder, remote: OpenAIEmbeddings
) -> None:
    texts = [pair[0] for pair in REFERENCE_PAIRS] + ["x" * 3000]
    over_http = await remote.embed(texts)
    in_process = await local.embed(texts)
    np.testing.assert_allclose(over_http, in_process, atol=1e-5)
    assert remote.prompt_tokens == sum(local.count_tokens(texts))


async def test_a_declared_size_the_server_does_not_return_is_refused(served: str) -> None:
    async with OpenAIEmbeddings(served, model=MODEL_NAME, dimensions=768) as wrong:
        with pytest.raises(EmbeddingDimensionMismatch) as caught:
            await wrong.embed(["hello"])
    message = str(caught.value)
    assert MODEL_NAME in message
    assert "384" in message
    assert "768" in message


async def test_openai_style_json(served: str, local: LocalOnnxEmbedder) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=30) as client:
        one = (
            await client.post("/v1/embeddings", json={"model": MODEL_NAME, "input": "hi"})
        ).json()
        assert one["object"] == "list"
        assert one["model"] == MODEL_NAME
        assert [d["index"] for d in one["data"]] == [0]
        assert one["data"][0]["object"] == "embedding"
        assert len(one["data"][0]["embedding"]) == DIMENSIONS
        assert one["usage"] == {"prompt_tokens": 3, "total_tokens": 3}  # [CLS] hi [SEP]

        texts = ["first text", "second, longer text here"]
        floats = (await client.post("/v1/embeddings", json={"input": texts})).json()
        packed = (
            await client.post(
                "/v1/embeddings",
                json={"input": texts, "model": MODEL_NAME, "encoding_format": "base64"},
            )
        ).json()
        for as_float, as_base64 in zip(floats["data"], packed["data"], strict=True):
            decoded = np.frombuffer(base64.b64decode(as_base64["embedding"]), dtype="<f4")
            np.testing.assert_allclose(decoded, as_float["embedding"], atol=1e-7)
        assert floats["usage"]["prompt_tokens"] == sum(local.count_tokens(texts))

        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == [MODEL_NAME]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "text-embedding-3-small", "input": "x"}, 404, "model"),
        ({"model": MODEL_NAME, "input": []}, 400, "input"),
        ({"model": MODEL_NAME, "input": [[101, 102]]}, 400, "input"),
        ({"model": MODEL_NAME}, 400, "input"),
        ({"model": MODEL_NAME, "input": "x", "dimensions": 256}, 400, "dimensions"),
        ({"model": MODEL_NAME, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ],
)
async def test_bad_requests_get_openai_errors_naming_the_field(
    served: str, body: dict[str, object], status: int, param: str
) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=30) as client:
        response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"]


async def test_the_openai_package_talks_to_the_server(
    served: str, local: LocalOnnxEmbedder
) -> None:
    client = openai.AsyncOpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    try:
        # the package asks for base64 unless told otherwise
        answer = await client.embeddings.create(model=MODEL_NAME, input=["hello", "goodbye"])
        models = await client.models.list()
    finally:
        await client.close()
    expected = await local.embed(["hello", "goodbye"])
    np.testing.assert_allclose([d.embedding for d in answer.data], expected, atol=1e-5)
    assert answer.usage.prompt_tokens == 6
    assert [m.id for m in models.data] == [MODEL_NAME]


def test_serving_without_the_model_files_is_a_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, "HIVE_AGENT__EMBEDDINGS__MODEL_DIR": str(tmp_path)}
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "hive", "model", "serve", "--embeddings", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "agent.embeddings.model_dir" in result.stderr
    assert "Traceback" not in result.stderr
