"""Sentence embeddings without the model: pooling and normalisation on small arrays, the HTTP
client's requests and checks against a scripted transport, settings and model lookup.

The same paths run for real, on the all-MiniLM-L6-v2 ONNX model and a `hive model serve
--embeddings` process, in tests/integration/test_embeddings.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.memory.embeddings import (
    Embedder,
    EmbeddingDimensionMismatch,
    LocalOnnxEmbedder,
    OpenAIEmbeddings,
    embedder_from_settings,
    find_embedding_model,
    l2_normalize,
    mean_pool,
)
from hive.settings import EmbeddingsSettings, Settings


def test_mean_pool_averages_real_tokens_and_ignores_padding() -> None:
    hidden = np.array(
        [
            [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],  # the last token is padding
            [[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]],
        ],
        dtype=np.float32,
    )
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    np.testing.assert_allclose(pooled, [[2.0, 3.0], [4.0, 0.0]])


def test_mean_pool_of_an_all_padding_row_is_zero_not_nan() -> None:
    pooled = mean_pool(np.ones((1, 2, 3), dtype=np.float32), np.zeros((1, 2)))
    assert np.all(np.isfinite(pooled))
    np.testing.assert_allclose(pooled, 0.0)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0]], dtype=np.float32)
    normalized = l2_normalize(vectors)
    np.testing.assert_allclose(normalized, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
    # unit rows: a dot product is the cosine
    assert float(normalized[0] @ normalized[2]) == pytest.approx(-0.6)


def test_dimension_mismatch_names_the_model_and_both_sizes() -> None:
    error = EmbeddingDimensionMismatch("all-MiniLM-L6-v2", 384, 768, "http://e:1/v1/embeddings")
    assert isinstance(error, ExternalFailure)
    assert "all-MiniLM-L6-v2" in str(error)
    assert "768" in str(error)
    assert "384" in str(error)


def scripted_endpoint(
    vectors_for: dict[str, list[float]], seen: list[dict[str, object]], status: int = 200
) -> httpx.AsyncClient:
    """An httpx client whose transport answers like an OpenAI embeddings server, with the given
    vector for each text (and the data in reverse order, as a server may)."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"url": str(request.url), **body})
        if status != 200:
            return httpx.Response(status, text="no")
        data = [
            {"object": "embedding", "index": i, "embedding": vectors_for[text]}
            for i, text in enumerate(body["input"])
        ]
        usage = {"prompt_tokens": 2 * len(data), "total_tokens": 2 * len(data)}
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "usage": usage})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_http_embedder_batches_posts_to_v1_embeddings_and_keeps_order() -> None:
    seen: list[dict[str, object]] = []
    vectors = {t: [float(i), 1.0, 0.0] for i, t in enumerate("abcde")}
    embedder = OpenAIEmbeddings(
        "http://emb:9/",
        model="m",
        dimensions=3,
        batch_size=2,
        client=scripted_endpoint(vectors, seen),
    )
    got = await embedder.embed(list("abcde"))
    assert got == [vectors[t] for t in "abcde"]
    assert [s["input"] for s in seen] == [["a", "b"], ["c", "d"], ["e"]]
    assert {s["url"] for s in seen} == {"http://emb:9/v1/embeddings"}
    assert all(s["model"] == "m" for s in seen)
    assert embedder.prompt_tokens == 10
    assert isinstance(embedder, Embedder)


async def test_http_embedder_takes_a_base_url_that_already_ends_in_v1() -> None:
    seen: list[dict[str, object]] = []
    embedder = OpenAIEmbeddings(
        "https://api.example/v1",
        model="m",
        dimensions=2,
        client=scripted_endpoint({"x": [1.0, 0.0]}, seen),
    )
    await embedder.embed(["x"])
    assert seen[0]["url"] == "https://api.example/v1/embeddings"


async def test_http_embedder_refuses_vectors_of_another_size() -> None:
    embedder = OpenAIEmbeddings(
        "http://emb:9",
        model="text-embedding-3-small",
        dimensions=384,
        client=scripted_endpoint({"x": [0.5] * 1536}, []),
    )
    with pytest.raises(EmbeddingDimensionMismatch) as caught:
        await embedder.embed(["x"])
    message = str(caught.value)
    assert "text-embedding-3-small" in message
    assert "1536" in message
    assert "384" in message


@pytest.mark.parametrize(
    ("status", "error"), [(503, Unavailable), (401, InvalidInput), (400, ExternalFailure)]
)
async def test_http_embedder_errors_say_whether_trying_again_helps(
    status: int, error: type[Exception]
) -> None:
    embedder = OpenAIEmbeddings(
        "http://emb:9", model="m", dimensions=2, client=scripted_endpoint({}, [], status=status)
    )
    with pytest.raises(error, match="embedding model 'm'"):
        await embedder.embed(["x"])


async def test_http_embedder_refuses_a_single_string_and_non_strings() -> None:
    embedder = OpenAIEmbeddings("http://emb:9", client=scripted_endpoint({}, []))
    with pytest.raises(InvalidInput, match="texts"):
        await embedder.embed("one string")
    with pytest.raises(InvalidInput, match=r"texts\[1\]"):
        await embedder.embed(["ok", 3])  # type: ignore[list-item]


def test_http_embedder_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(InvalidInput, match=r"agent\.embeddings\.endpoint"):
        OpenAIEmbeddings("emb:9")


def test_settings_choose_the_endpoint_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HIVE_AGENT__EMBEDDINGS__ENDPOINT", "http://embeddings.hive.svc:8080")
    monkeypatch.setenv("HIVE_AGENT__EMBEDDINGS__DIMENSIONS", "768")
    monkeypatch.setenv("HIVE_AGENT__EMBEDDINGS__API_KEY", "k")
    settings = Settings().agent.embeddings
    embedder = embedder_from_settings(settings)
    assert isinstance(embedder, OpenAIEmbeddings)
    assert embedder.url == "http://embeddings.hive.svc:8080/v1/embeddings"
    assert embedder.dimensions == 768
    assert embedder.model == "all-MiniLM-L6-v2"


def test_a_model_dir_without_the_model_files_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"agent\.embeddings\.model_dir.*tokenizer\.json"):
        find_embedding_model(tmp_path)
    with pytest.raises(InvalidInput, match="model_dir"):
        embedder_from_settings(EmbeddingsSettings(model_dir=tmp_path))


def test_local_embedder_refuses_a_token_limit_that_leaves_no_room(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="max_tokens"):
        LocalOnnxEmbedder(tmp_path, max_tokens=1)
