"""Command lines of the side services the local environment and the tests run: Redis (the
demo's MemoryStore, error learning). Weaviate has a module of its own (hive.dev.weaviate)."""

from __future__ import annotations

from pathlib import Path


def redis_server_argv(
    binary: str | Path, port: int, data_dir: Path, *, password: str | None = None
) -> list[str]:
    """A redis-server on loopback that keeps its data in `data_dir` across restarts: no
    snapshots, an append-only file (every write logged, fsync'd each second, replayed on start;
    sessions of cross-session memory must survive a restart); with `password`, clients must
    AUTH with it (requirepass) before any other command."""
    argv = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--dir",
        str(data_dir),
    ]
    if password is not None:
        argv += ["--requirepass", password]
    return argv
