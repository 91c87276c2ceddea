"""Command lines of the side services the local environment runs (Redis, for now)."""

from __future__ import annotations

from pathlib import Path


def redis_server_argv(binary: str | Path, port: int, data_dir: Path) -> list[str]:
    """A throwaway redis-server on loopback: no snapshots, no append-only file."""
    return [
        str(binary),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
    ]
