"""Fixtures shared by the integration tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hive.runtime.memory.embeddings import LocalOnnxEmbedder


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A port on the host's loopback that accepts connections: what a sandbox must not reach."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture(scope="session")
def embedder() -> LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 (the packaged ONNX model), loaded once for every test that embeds."""
    model = LocalOnnxEmbedder()
    model.load()
    return model
