"""Fixtures shared by the integration tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A port on the host's loopback that accepts connections: what a sandbox must not reach."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]
